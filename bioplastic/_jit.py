"""The one place where Numba flags live.

* ``fastmath`` is **off**: reassociation and FMA contraction would break bit-exact agreement
  with the Brian2 twins (shared/spec/brian2_twins.md §3).
* No ``parallel=True``: parallel reductions change the summation order (tier T1, not T0).
* Cache policy: compiled kernels are cached on disk in a directory keyed by a hash of the whole
  package's source. Numba's own cache index only checks the file that defines a function, so a
  change in a helper imported from another file could serve stale machine code; keying the
  directory on every source file makes that impossible. ``NUMBA_BOUNDSCHECK=1`` (used by the
  test suite to prove that no kernel reads out of bounds) gets a directory of its own, since
  Numba's index does not record it either. Set ``BIOPLASTIC_NUMBA_CACHE=0`` to turn
  caching off, or ``NUMBA_CACHE_DIR`` to choose the directory yourself (then staleness is yours).
* ``BIOPLASTIC_DISABLE_JIT=1`` runs every kernel as plain Python (the "JIT off" equivalence tests
  use :func:`py_func` instead, which needs no environment variable).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

__all__ = ["njit", "py_func", "CACHE_ENABLED", "cache_dir"]

_PACKAGE_ROOT = Path(__file__).resolve().parent
CACHE_ENABLED = os.environ.get("BIOPLASTIC_NUMBA_CACHE", "1") != "0"
_JIT_DISABLED = os.environ.get("BIOPLASTIC_DISABLE_JIT", "0") == "1"


def _source_digest() -> str:
    digest = hashlib.sha256(numba.__version__.encode())
    if numba.config.BOUNDSCHECK:
        # Numba's cache index ignores NUMBA_BOUNDSCHECK: without this, a bounds-checked process
        # would be served unchecked machine code from the cache (and a normal one checked code).
        digest.update(b"boundscheck")
    for path in sorted(_PACKAGE_ROOT.rglob("*.py")):
        digest.update(path.relative_to(_PACKAGE_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> str:
    """Directory holding this source version's compiled kernels."""
    base = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(base, "bioplastic", "numba", _source_digest())


_KEEP_CACHES = 8


def _prune_old_caches(current: str) -> None:
    """Keep the newest few source versions' caches; older ones can never be used again."""
    import shutil

    parent = Path(current).parent
    others = sorted((p for p in parent.iterdir() if p.is_dir() and str(p) != current),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in others[_KEEP_CACHES - 1:]:
        shutil.rmtree(stale, ignore_errors=True)


def _configure_cache() -> bool:
    if not CACHE_ENABLED:
        return False
    if not os.environ.get("NUMBA_CACHE_DIR"):
        try:
            path = cache_dir()
            os.makedirs(path, exist_ok=True)
            _prune_old_caches(path)
        except OSError:  # read-only home: compile every time rather than fail
            return False
        numba.config.CACHE_DIR = path
    return True


_USE_CACHE = _configure_cache()


def njit(*args, **kwargs):
    """``numba.njit`` with the library's flags: fastmath off, no parallel, cache as above.

    Used bare (``@njit``) or with extra options (``@njit(inline="always")``).
    """
    options = {"fastmath": False, "cache": _USE_CACHE, "nogil": True}
    options.update(kwargs)
    if options.get("fastmath") or options.get("parallel"):
        raise ValueError("bioplastic kernels must keep fastmath and parallel off (see _jit.py)")
    if _JIT_DISABLED:
        return args[0] if args and callable(args[0]) else (lambda f: f)
    if args and callable(args[0]):
        return numba.njit(**options)(args[0])
    return numba.njit(**options)


def py_func(kernel):
    """The plain-Python function behind a jitted kernel (itself when the JIT is disabled)."""
    return getattr(kernel, "py_func", kernel)
