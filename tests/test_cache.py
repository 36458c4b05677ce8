"""The on-disk kernel cache, exercised the way users meet it: many fresh processes.

Each test runs a small LIF network in subprocesses that share a private cache directory
(``XDG_CACHE_HOME``) and reports, as JSON, the time loop's cache hits and misses, the
``CacheWarning``s it saw and a digest of the spikes. Cold compiles are the slow part, so one
warm cache is built per module and copied into each test that needs one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import hashlib, json, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import bioplastic as bp
        CacheWarning = getattr(bp._jit, "CacheWarning", RuntimeWarning)
        from bioplastic.neurons.lif import lif_advance
        import importlib
        simulate = importlib.import_module("bioplastic.simulate")
        rng = np.random.default_rng(0)
        n, steps = 40, 60
        params = bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), t_ref_ms=2.0, theta_plus_mv=0.5)
        weight = (rng.random((n, n)) < 0.2) * rng.normal(0, 2, (n, n))
        drive = rng.uniform(14, 18, n) + rng.normal(0, 2, (steps, n))
        trace = bp.run_lif(drive, params, weight=weight, delay_ms=0.2, record=("v",))
    # (before the cache fix the loop was one dispatcher named _time_loop)
    loop = getattr(simulate, "_time_loop", None) or simulate._time_loop_for(lif_advance)
    print(json.dumps({
        "hits": sum(loop.stats.cache_hits.values()),
        "misses": sum(loop.stats.cache_misses.values()),
        "cache_warnings": sum(issubclass(w.category, CacheWarning) for w in caught),
        "spikes": int(trace.spikes.sum()),
        "digest": hashlib.sha256(trace.spikes.tobytes() + trace["v"].tobytes()).hexdigest(),
    }))
""")


def _env(cache_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",
                                                              "BIOPLASTIC_NUMBA_CACHE")}
    env["XDG_CACHE_HOME"] = str(cache_home)
    return env


def _start(cache_home: Path, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, "-c", CHILD], env=_env(cache_home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out.strip().splitlines()[-1])


def _run(cache_home: Path, prefix: tuple[str, ...] = ()) -> dict:
    return _finish(_start(cache_home, prefix))


def _loop_files(cache_home: Path) -> dict[str, int]:
    """Every cache file of the time loop, with its size (the index grows with each entry)."""
    return {p.name: p.stat().st_size for p in cache_home.rglob("*_time_loop*")}


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache warmed by one cold process, and that process's report."""
    home = tmp_path_factory.mktemp("warm")
    return home, _run(home)


def _copy(warm, tmp_path) -> Path:
    home = tmp_path / "cache"
    shutil.copytree(warm[0], home)
    return home


def test_repeated_processes_hit_the_cache_and_do_not_grow_it(warm, tmp_path):
    home = _copy(warm, tmp_path)
    cold = warm[1]
    files = _loop_files(home)
    assert cold["misses"] == 1 and files  # the first process compiled and saved the loop
    for _ in range(3):
        report = _run(home)
        assert report["hits"] == 1 and report["misses"] == 0  # loaded, not recompiled
        assert report["digest"] == cold["digest"]
        assert report["cache_warnings"] == 0
        assert _loop_files(home) == files  # same files, same index size: no new entries


def test_concurrent_first_compiles_agree(tmp_path):
    home = tmp_path / "cache"
    first, second = _start(home), _start(home)
    reports = [_finish(first), _finish(second)]
    assert reports[0]["digest"] == reports[1]["digest"]
    assert all(r["cache_warnings"] <= 1 for r in reports)
    after = _run(home)  # whatever the race left behind is usable
    assert after["digest"] == reports[0]["digest"]
    assert after["hits"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_cache_file_falls_back_to_compiling(warm, tmp_path, damage):
    home = _copy(warm, tmp_path)
    for path in home.rglob("*_time_loop*"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\x80junk" * 50)
    report = _run(home)
    assert report["digest"] == warm[1]["digest"]
    assert report["cache_warnings"] <= 1


def _read_only_prefix(directory: Path) -> tuple[str, ...] | None:
    """A command prefix that runs a child with ``directory`` mounted read-only (a private
    mount namespace, since root ignores file permissions), or None where that is impossible."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = (f"mount --bind {directory} {directory} && "
              f"mount -o remount,bind,ro {directory} && exec \"$@\"")
    probe = subprocess.run([unshare, "-rm", "sh", "-c", script + "", "sh", "true"],
                           capture_output=True)
    return (unshare, "-rm", "sh", "-c", script, "sh") if probe.returncode == 0 else None


def test_a_read_only_cache_is_still_read(warm, tmp_path):
    home = _copy(warm, tmp_path)
    prefix = _read_only_prefix(home)
    if prefix is None:
        if os.geteuid() == 0:
            pytest.skip("needs unshare (mount namespaces) to make a directory read-only for root")
        for path in home.rglob("*"):
            path.chmod(path.stat().st_mode & ~0o222)
        prefix = ()
    report = _run(home, prefix)
    assert report["hits"] == 1 and report["misses"] == 0
    assert report["digest"] == warm[1]["digest"]
    # a source edit would need a new directory, which cannot be made: compile, warn at most once
    shutil.rmtree(next(home.rglob("*_time_loop*")).parent)
    report = _run(home, prefix) if prefix else _run(home)
    assert report["digest"] == warm[1]["digest"]
    assert report["cache_warnings"] <= 1


def test_an_uncreatable_cache_directory_still_runs(tmp_path):
    # /proc cannot hold new directories, whoever runs the test.
    report = _run(Path("/proc/self/bioplastic-cache"))
    assert report["digest"]
    assert report["cache_warnings"] <= 1


QUICK_START = textwrap.dedent("""
    import json, time
    start = time.perf_counter()
    import numpy as np
    import bioplastic as bp
    from bioplastic.neurons.lif import lif_advance
    from bioplastic.simulate import _time_loop_for
    rng = np.random.default_rng(0)
    n, steps = 50, 20  # the README quick start, smaller: same types, so the same kernels
    params = bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), t_ref_ms=2.0, theta_plus_mv=0.5)
    weight = (rng.random((n, n)) < 0.02) * rng.normal(0, 1, (n, n))
    drive = rng.uniform(12, 18, n) + rng.normal(0, 2, (steps, n))
    trace = bp.run_lif(drive, params, weight=weight, delay_ms=0.1, record=("v", "theta"))
    loop = _time_loop_for(lif_advance)
    print(json.dumps({"hits": sum(loop.stats.cache_hits.values()),
                      "misses": sum(loop.stats.cache_misses.values())}))
""")


def test_warmup_leaves_the_readme_quick_start_warm(tmp_path):
    env = _env(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-m", "bioplastic.cli", "warmup", "--only", "lif"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "time loop for lif_advance" in done.stdout  # it says what it compiled
    run = subprocess.run([sys.executable, "-c", QUICK_START], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"hits": 1, "misses": 0}


def test_warmup_rejects_an_unknown_workload():
    from bioplastic.warmup import warmup

    with pytest.raises(ValueError, match="choose from"):
        warmup(["nope"])
