import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future
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


# Slow subprocess tests start early. Two tests spend most of the suite's time waiting on
# subprocesses: the bounds-checked property suites (about 6 min on a 2-core machine) and the
# wheel install (about 3 min). Their subprocess work starts in a background thread right after
# collection and runs beside the rest of the suite, on the second core; the tests themselves are
# moved to the end of the run, wait for the result and make their assertions on it, so nothing
# is asserted less.

_EARLY_PROCESSES: list[subprocess.Popen] = []
_EARLY_DIRS: list[Path] = []


def run_tracked(args, *, check: bool = False, timeout: float | None = None,
                **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)``; killed if the session ends."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **kwargs) as proc:
        _EARLY_PROCESSES.append(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    result = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def starts_early(job):
    """Decorate a test whose slow part is ``job(workdir) -> result``; read it with ``early``.

    ``job`` runs in a background thread from the end of collection (only when the test is
    selected); ``workdir`` is a fresh temporary folder removed at the end of the session.
    """
    def mark(test):
        test.early_job = job
        return test
    return mark


def _start_in_background(job) -> Future:
    future: Future = Future()
    workdir = Path(tempfile.mkdtemp(prefix="bioplastic-early-"))
    _EARLY_DIRS.append(workdir)

    def target():
        try:
            future.set_result(job(workdir))
        except BaseException as exc:   # noqa: BLE001 - handed to the test, which re-raises it
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True, name=f"early-{job.__name__}").start()
    return future


def _early_job(item):
    return getattr(getattr(item, "function", None), "early_job", None)


def pytest_collection_modifyitems(items):
    # The tests that wait for a background job run last, so the suite works meanwhile.
    items[:] = [i for i in items if _early_job(i) is None] + [i for i in items if _early_job(i)]


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for item in session.items:
        if _early_job(item) is not None:
            item.early_future = _start_in_background(_early_job(item))


def pytest_sessionfinish(session, exitstatus):
    for proc in _EARLY_PROCESSES:       # a run stopped early (-x, Ctrl-C) leaves no orphans
        if proc.poll() is None:
            proc.kill()
    for workdir in _EARLY_DIRS:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def early(request, tmp_path):
    """The result of the test's ``starts_early`` job (run now if it was not started early)."""
    future = getattr(request.node, "early_future", None)
    if future is None:
        return request.node.function.early_job(tmp_path)
    return future.result()
