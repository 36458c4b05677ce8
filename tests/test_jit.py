"""The numba policy of bioplastic/_jit.py."""

import pytest

from bioplastic import _jit


def test_cache_directory_changes_with_any_source_file(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(_jit, "_PACKAGE_ROOT", tmp_path)
    before = _jit._source_digest()
    assert _jit._source_digest() == before  # deterministic
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")  # a helper in another file changes
    assert _jit._source_digest() != before


def test_fastmath_and_parallel_are_refused():
    with pytest.raises(ValueError, match="fastmath"):
        _jit.njit(fastmath=True)
    with pytest.raises(ValueError, match="parallel"):
        _jit.njit(parallel=True)


def test_py_func_returns_the_python_function():
    @_jit.njit
    def add(a, b):
        return a + b

    assert _jit.py_func(add)(2, 3) == 5
    assert _jit.py_func(add) is not add
