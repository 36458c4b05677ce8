"""The one place where Numba flags live.

* ``fastmath`` is **off**: reassociation and FMA contraction would break bit-exact agreement
  with the Brian2 twins (see ``docs/twins.md``).
* No ``parallel=True`` in :func:`njit`: parallel reductions change the summation order (tier
  T1, not T0). **The one exception** is :func:`njit_parallel`, for the opt-in multi-core kernels
  (``threads=``, :mod:`bioplastic.neurons.parallel`). It keeps every other flag and the cache
  policy below, and turns on only Numba's *explicit* ``prange`` loops: no NumPy call, array
  expression, slice assignment or ``reduce`` becomes parallel code behind our back. Those kernels
  are still exact because every ``prange`` loop runs over *parts* that own disjoint, contiguous
  ranges of neurons, each iteration writes only its own part's elements and no loop has a
  reduction variable: every sum is still computed by one thread, in the single-core order (a
  test checks the compiled loops for reductions). See ``docs/performance.md``.
* Cache policy: compiled kernels are cached on disk in a directory keyed by a hash of the whole
  package's source. Numba's own cache index only checks the file that defines a function, so a
  change in a helper imported from another file could serve stale machine code; keying the
  directory on every source file makes that impossible. ``NUMBA_BOUNDSCHECK=1`` (used by the
  test suite to prove that no kernel reads out of bounds) gets a directory of its own, since
  Numba's index does not record it either. Set ``BIOPLASTIC_NUMBA_CACHE=0`` to turn
  caching off, or ``NUMBA_CACHE_DIR`` to choose the directory yourself (then staleness is yours).
  Numba's global configuration is never changed: only functions compiled through :func:`njit`
  use this cache.
* A broken cache never breaks a run. Reading a truncated or corrupt cache file, writing into a
  read-only directory, or racing another process that compiles the same kernels all fall back
  to compiling in memory, with one :class:`CacheWarning` per process at most. Writes are
  serialised by a lock file (POSIX), and a loaded entry whose signature is not the one asked for
  is discarded, so a lost race can never serve machine code for other argument types.
* ``BIOPLASTIC_DISABLE_JIT=1`` runs every kernel as plain Python; the test suite runs its
  equivalence tests a second time that way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

import numba
import numpy as np
from numba.core import caching
from numba.core.cpu import ParallelOptions

__all__ = ["njit", "njit_parallel", "py_func", "check_threads", "using_threads",
           "CACHE_ENABLED", "JIT_DISABLED", "CacheWarning", "cache_dir"]

_PACKAGE_ROOT = Path(__file__).resolve().parent
CACHE_ENABLED = os.environ.get("BIOPLASTIC_NUMBA_CACHE", "1") != "0"
JIT_DISABLED = os.environ.get("BIOPLASTIC_DISABLE_JIT", "0") == "1"


class CacheWarning(RuntimeWarning):
    """The on-disk kernel cache could not be used; kernels are compiled in memory instead."""


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
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
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


def _prepare_cache_dir() -> str:
    path = cache_dir()
    if os.environ.get("NUMBA_CACHE_DIR"):
        return path
    try:
        os.makedirs(path, exist_ok=True)
        _prune_old_caches(path)
    except OSError:  # read-only home: loading what exists still works, saving warns once
        pass
    return path


_CACHE_DIR = _prepare_cache_dir() if CACHE_ENABLED else ""
_warned = False


def _warn_once(action: str, exc: BaseException) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"bioplastic could not {action} the kernel cache in {_CACHE_DIR!r} "
                      f"({type(exc).__name__}: {exc}); compiling in memory instead. "
                      "Set BIOPLASTIC_NUMBA_CACHE=0 to silence this.", CacheWarning,
                      stacklevel=3)


class _Locator(caching.UserProvidedCacheLocator):
    """Numba's user-directory locator, pointed at our directory, that does not require the
    directory to be writable (a read-only cache can still be read)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(_CACHE_DIR, self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        return cls(py_func, py_file) if os.path.exists(py_file) else None


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_Locator]


@contextlib.contextmanager
def _write_lock(directory: str):
    """Serialise writers of one cache directory, so that two processes compiling different
    signatures of one kernel cannot both claim the same data file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: numba's atomic renames are all we have
        yield
        return
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _SafeFunctionCache(caching.FunctionCache):
    """numba's ``FunctionCache``; any failure to read or write becomes a cache miss."""

    _impl_class = _CacheImpl

    def load_overload(self, sig, target_context):
        try:
            cres = super().load_overload(sig, target_context)
        except Exception as exc:  # truncated, corrupt or unreadable: compile instead
            _warn_once("read", exc)
            return None
        if cres is not None and tuple(cres.signature.args) != tuple(sig):
            _warn_once("read", ValueError("an entry holds another signature"))
            return None
        return cres

    def save_overload(self, sig, data):
        try:
            with _write_lock(self._cache_path):
                super().save_overload(sig, data)
        except Exception as exc:  # read-only or full disk: the compiled code is still used
            _warn_once("write", exc)


def _jit(function, options: dict):
    cache = options.pop("cache")
    dispatcher = numba.njit(**options)(function)
    if cache:
        try:
            dispatcher._cache = _SafeFunctionCache(function)
        except RuntimeError:  # no source file (exec, REPL): compile in memory only
            pass
    return dispatcher


def njit(*args, **kwargs):
    """``numba.njit`` with the library's flags: fastmath off, no parallel, cache as above.

    Used bare (``@njit``) or with extra options (``@njit(inline="always")``).
    """
    options = {"fastmath": False, "cache": CACHE_ENABLED, "nogil": True}
    options.update(kwargs)
    if options.get("fastmath") or options.get("parallel"):
        raise ValueError("bioplastic kernels must keep fastmath and parallel off (see _jit.py)")
    if JIT_DISABLED:
        return args[0] if args and callable(args[0]) else (lambda f: f)
    if args and callable(args[0]):
        return _jit(args[0], options)
    return lambda function: _jit(function, dict(options))


#: Numba's parallel options for :func:`njit_parallel`: explicit ``prange`` loops only.
PARALLEL_OPTIONS = {"prange": True, "comprehension": False, "reduction": False,
                    "inplace_binop": False, "setitem": False, "numpy": False, "stencil": False,
                    "fusion": False}


def njit_parallel(*args, **kwargs):
    """:func:`njit` with Numba's parallel mode limited to explicit ``prange`` loops.

    For the multi-core kernels only (see the module docstring: why they stay exact). Same
    flags (fastmath off, ``nogil``) and the same cache; ``BIOPLASTIC_DISABLE_JIT=1`` returns the
    plain function, where ``prange`` is ``range``. A ``prange`` body must write only elements
    owned by its own iteration and must not accumulate into a variable defined outside it.
    """
    options = {"fastmath": False, "cache": CACHE_ENABLED, "nogil": True}
    options.update(kwargs)
    if options.get("fastmath") or "parallel" in kwargs:
        raise ValueError("njit_parallel fixes the parallel options and keeps fastmath off "
                         "(see _jit.py)")
    # An options object, not a dict: numba's ParallelOptions *pops* a dict's keys, so a
    # dict would be empty (all options on) from the second compiled signature on.
    options["parallel"] = ParallelOptions(dict(PARALLEL_OPTIONS))
    if JIT_DISABLED:
        return args[0] if args and callable(args[0]) else (lambda f: f)
    if args and callable(args[0]):
        return _jit(args[0], options)
    return lambda function: _jit(function, dict(options))


def check_threads(threads) -> int:
    """Validate a ``threads=`` argument: ``None`` (or 1) is the single-core path; otherwise a
    positive int no larger than ``numba.config.NUMBA_NUM_THREADS``. Returns the count (1 for
    ``None``)."""
    if threads is None:
        return 1
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer):
        raise TypeError(f"threads must be None or a positive int, got {threads!r} "
                        f"({type(threads).__name__})")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= limit:
        raise ValueError(f"threads must be between 1 and numba.config.NUMBA_NUM_THREADS = "
                         f"{limit} (set NUMBA_NUM_THREADS before importing numba for more), "
                         f"got {threads}")
    return int(threads)


@contextlib.contextmanager
def using_threads(threads):
    """Run the block with Numba's thread count set to ``threads`` (validated by
    :func:`check_threads`; ``None`` leaves it alone), restoring the previous count after it.
    Numba's count is per calling thread, so other Python threads are not affected."""
    threads = None if threads is None else check_threads(threads)
    if threads is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def py_func(kernel):
    """The plain-Python function behind a jitted kernel (itself when the JIT is disabled)."""
    return getattr(kernel, "py_func", kernel)
