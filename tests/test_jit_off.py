"""JIT on ≡ JIT off: the naive-reference and equivalence tests again, every kernel plain Python.

``py_func`` of a jitted wrapper still calls its jitted helpers, so a test built on it cannot
see a bug in a helper. Here a subprocess sets ``BIOPLASTIC_DISABLE_JIT=1`` before anything is
imported, so every kernel and every helper runs as Python, and re-runs the tests that compare
the kernels with the slow NumPy transcriptions (``tests/naive.py``) and the loop/step
equivalences. A result that depends on how Numba compiles (or a Python-only code path that is
wrong) fails here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["test_lif.py", "test_pcnn.py", "test_wta.py", "test_stdp.py", "test_hebbian_rules.py",
         "test_softhebb.py", "test_inhibition.py", "test_connectivity.py", "test_rsnn.py",
         "test_delay_learning.py", "test_threads.py"]
SELECT = ("naive or python_loop or equals_one_run or advance or step_is or in_flight "
          "or same_delays or block_step or separate_rules or same_bits")


@pytest.mark.slow
def test_naive_and_equivalence_tests_pass_with_the_jit_disabled():
    env = {**os.environ, "BIOPLASTIC_DISABLE_JIT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not brian2",
         "-k", SELECT, *(str(ROOT / "tests" / f) for f in FILES)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 40, result.stdout[-2000:]  # 51 when written
