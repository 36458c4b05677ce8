"""Run the kernel-facing bad-input suites in a subprocess with ``NUMBA_BOUNDSCHECK=1``.

Numba does not check bounds, so an out-of-bounds read inside a kernel passes silently (or
segfaults) in a normal process. With ``NUMBA_BOUNDSCHECK=1`` every kernel is compiled with
checks and the same access raises ``IndexError``, which the suites count as a failure. The
bounds-checked kernels are cached apart from the normal ones (``bioplastic._jit`` keys its cache
directory on the flag; Numba's own cache index ignores it), so a warm cache never serves
unchecked code to this subprocess. A crash (SIGSEGV) of the subprocess fails the test too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .conftest import run_tracked, starts_early

pytest.importorskip("hypothesis")

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["tests/test_properties.py", "tests/test_properties_rsnn.py"]


def _run(args, tmp_path, timeout=1500):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1",
           "BIOPLASTIC_SAFETY_REPORT": str(tmp_path / "tally.json")}
    return run_tracked([sys.executable, *args], cwd=ROOT, env=env, timeout=timeout)


def _property_suites(workdir):
    """The suites in the bounds-checked subprocess: (its outcome, the input tally it wrote)."""
    out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUITES], workdir)
    tally_file = workdir / "tally.json"
    return out, (json.loads(tally_file.read_text()) if tally_file.exists() else None)


def test_bounds_checking_is_live_in_the_subprocess(tmp_path):
    # A malformed delay table (one column where a block needs two) read by a cached kernel:
    # bounds-checked code raises IndexError; unchecked code would read past the row.
    code = (
        "import numpy as np\n"
        "from bioplastic.neurons.connectivity import due_blocks, no_connectivity\n"
        "conn = no_connectivity(2)._replace(delay_ptr=np.zeros((2, 1), np.int64))\n"
        "try:\n"
        "    due_blocks(np.ones((1, 2), np.bool_), 0, conn)\n"
        "except IndexError:\n"
        "    print('bounds checked')\n"
    )
    out = _run(["-c", code], tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bounds checked" in out.stdout


@starts_early(_property_suites)        # ~6 min: runs beside the rest of the suite
def test_property_suites_under_boundscheck(early):
    out, tally = early
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode == 0, f"exit status {out.returncode} (negative: killed by a signal)" \
                                f"\n{tail}"
    assert tally is not None, "the subprocess wrote no tally"
    if os.environ.get("BIOPLASTIC_SAFETY_REPORT"):      # keep the counts for a report
        Path(os.environ["BIOPLASTIC_SAFETY_REPORT"]).write_text(json.dumps(tally, indent=1))
    assert tally.get("mutated", 0) == 0 and tally.get("unclear", 0) == 0
    assert tally.get("non_finite", 0) == 0
    assert tally["inputs"] > 0 and tally["clear"] > 0
