from pathlib import Path

import numpy as np
import pytest

GOLDEN_DIR = Path(__file__).parent / "data" / "twins"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def golden_dir():
    return GOLDEN_DIR
