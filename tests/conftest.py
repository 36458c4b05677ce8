from pathlib import Path

import numpy as np
import pytest

from bioplastic.reference.golden import GOLDEN_PACKAGE_DIR as GOLDEN_DIR  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def golden_dir():
    return GOLDEN_DIR


EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(name: str):
    """Import ``experiments/<name>.py`` as module ``name`` (scripts are not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
