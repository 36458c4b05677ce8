import os
from pathlib import Path

# The multi-core tests (tests/test_threads.py) run on Numba's OpenMP layer. With OpenMP's
# default wait policy its threads spin while the thread they wait for has no core, so on a
# loaded CI machine every parallel loop waits for a scheduler slice (seconds per test; see
# docs/performance.md). Read once, when the OpenMP runtime starts: set before any import.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

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


def experiment_fixture(name: str):
    """A module-scoped fixture loading ``experiments/<name>.py`` once per test module."""
    return pytest.fixture(scope="module", name="experiment")(lambda: load_experiment(name))


# Every experiment writes these through ``bioplastic.results``, whatever else it plots.
RESULT_FILES = ("config.json", "versions.json", "metrics.json")


def assert_results_written(out: Path, *extra: str) -> dict:
    """Assert the standard result files and ``extra`` exist in ``out``; return metrics.json."""
    import json

    for name in RESULT_FILES + extra:
        assert (out / name).exists(), name
    return json.loads((out / "metrics.json").read_text())


# Hypothesis profiles for the property-based suites (tests/test_properties.py):
# ``dev`` (the default, for ``make test``), ``ci`` and ``thorough`` (more examples), chosen by
# the HYPOTHESIS_PROFILE environment variable. No deadline: a first call compiles kernels.
try:
    import os

    from hypothesis import HealthCheck, settings

    _COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow,
                                                           HealthCheck.data_too_large]}
    # dev (make test) replays the same examples every run, so CI cannot find new ones by chance
    settings.register_profile("dev", max_examples=25, derandomize=True, **_COMMON)
    settings.register_profile("ci", max_examples=150, **_COMMON)
    settings.register_profile("thorough", max_examples=1000, **_COMMON)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
except ImportError:   # hypothesis is in the dev extra; without it those suites are skipped
    pass
