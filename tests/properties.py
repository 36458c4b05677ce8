"""Machinery of the property-based bad-input suite (``tests/test_properties.py``).

A :class:`Target` is a public function with a builder of *valid* keyword arguments. A test
draws one argument (or one field of a parameter ``NamedTuple``) and replaces it with a bad
value drawn by :func:`bad_value`: NaN, ±inf, values near 1e308, wrong types, wrong shapes,
wrong dtypes, out-of-range indices, empty arrays. :func:`check_call` then asserts the contract
of issue 14:

* a clear exception — ``TypeError`` or ``ValueError`` whose message names the argument or
  field (any argument's name for a shape change, which is a mismatch between two arguments),
  or a :class:`~bioplastic.rules.DivergenceError` (the library's "overflowed" convention);
* or a documented result: the call returns and every float in what it returns is finite
  (the perturbation was within the documented range: an int array for a float array, a
  Fortran-ordered copy, a large but representable value);
* a ``MemoryError`` for a size that does not fit (counted apart);
* never another exception (a Numba typing error, a bare ``IndexError``), never a non-finite
  result, never a changed input. A crash ends the process, which the ``NUMBA_BOUNDSCHECK=1``
  subprocess of ``tests/test_boundscheck.py`` reports as a failure.

Each outcome is tallied; ``BIOPLASTIC_SAFETY_REPORT=path.json`` writes the tally at exit.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from bioplastic.rules import DivergenceError
from bioplastic.simulate import Trace

TALLY: Counter = Counter()


def _write_tally() -> None:
    path = os.environ.get("BIOPLASTIC_SAFETY_REPORT")
    if path and TALLY:
        previous = {}
        if os.path.exists(path):
            with open(path) as f:
                previous = json.load(f)
        merged = Counter(previous) + TALLY
        with open(path, "w") as f:
            json.dump(dict(sorted(merged.items())), f, indent=1)


atexit.register(_write_tally)


@dataclass(frozen=True)
class Target:
    """A public function and a builder of valid keyword arguments for it.

    ``fixed``: arguments never perturbed (sizes that other arguments are built from, flags).
    ``index``: arguments holding indices (perturbed with out-of-range values too).
    ``spikes``: boolean spike arrays (perturbed to other dtypes).
    """

    name: str
    fn: Callable
    valid: Callable[[], dict]
    fixed: tuple[str, ...] = ()
    index: tuple[str, ...] = ()
    aliases: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- bad values

_BAD_SCALARS = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e200, -1e200, 1e20, -1e20, -1.0, 0.0,
                0, -1, 2.5, True, False, None, "0.1", "nope", 1j, (), [1.0, 2.0],
                np.float32(np.nan), np.int64(-5), 2**70, -(2**70)]


def bad_scalar() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(_BAD_SCALARS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**66), max_value=2**66),
    )


_ARRAY_KINDS = ["nan", "inf", "huge", "negative", "drop_axis", "add_axis", "resize", "empty",
                "complex", "object", "str", "bool", "int", "list", "scalar", "none",
                "fortran", "strided"]
_INDEX_KINDS = ["minus_one", "too_big", "float_index"]


@st.composite
def bad_array(draw, valid: np.ndarray, *, index: bool = False):
    """A malformed variant of the valid array ``valid`` (never ``valid`` itself, never a view
    of it)."""
    kinds = _ARRAY_KINDS + (_INDEX_KINDS if index else [])
    kind = draw(st.sampled_from(kinds))
    a = np.array(valid, copy=True)
    pos = draw(st.integers(0, max(a.size - 1, 0)))
    if kind in ("nan", "inf", "huge", "negative"):
        if a.size == 0:
            return np.full((1,) * max(a.ndim, 1), np.nan)
        a = a.astype(np.float64)
        value = {"nan": np.nan, "inf": draw(st.sampled_from([np.inf, -np.inf])),
                 "huge": draw(st.sampled_from([1e308, -1e308, 1e200, -1e200])),
                 "negative": -draw(st.floats(1e-3, 1e6))}[kind]
        a.flat[pos] = value
        return a
    if kind == "drop_axis":
        return a[0] if a.ndim and a.shape[0] else a.reshape(-1)[:0]
    if kind == "add_axis":
        return a[None]
    if kind == "resize":
        if a.ndim == 0:
            return np.zeros(draw(st.integers(0, 3)))
        axis = draw(st.integers(0, a.ndim - 1))
        size = draw(st.integers(0, a.shape[axis] + 3).filter(lambda s: s != a.shape[axis]))
        shape = list(a.shape)
        shape[axis] = size
        return np.resize(a, shape) if size else np.zeros(shape, a.dtype)
    if kind == "empty":
        return np.zeros((0,) * max(a.ndim, 1), dtype=a.dtype)
    if kind == "complex":
        return a.astype(np.complex128) + 1j
    if kind == "object":
        return a.astype(object)
    if kind == "str":
        return a.astype(str)
    if kind == "bool":
        return a.astype(bool)
    if kind == "int":
        return np.round(np.asarray(a, dtype=np.float64)).astype(np.int64)
    if kind == "list":
        return a.tolist()
    if kind == "scalar":
        return draw(bad_scalar())
    if kind == "none":
        return None
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        if a.ndim == 0:
            return a
        return np.repeat(a, 2, axis=-1)[..., ::2]     # same values, non-contiguous
    if kind == "minus_one":
        if a.size == 0:
            return np.array([-1])
        a = a.astype(np.int64)
        a.flat[pos] = -1
        return a
    if kind == "too_big":
        if a.size == 0:
            return np.array([2**40])
        a = a.astype(np.int64)
        a.flat[pos] = draw(st.sampled_from([int(a.max()) + 1, 10**6, 2**40, 2**62]))
        return a
    a = a.astype(np.float64)       # float_index
    if a.size:
        a.flat[pos] += 0.5
    return a


def bad_value(draw, valid, *, index: bool = False):
    if isinstance(valid, np.ndarray):
        return draw(bad_array(valid, index=index))
    if isinstance(valid, str):
        return draw(st.one_of(st.text(max_size=8), st.sampled_from([None, 1, b"x"])))
    return draw(bad_scalar())


# ----------------------------------------------------------------------------- checking


def _arrays(value):
    """Every ndarray inside ``value`` (tuples, NamedTuples, dicts, lists)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _arrays(v)


def _snapshot(kwargs: dict):
    return [(a, a.copy()) for a in _arrays(kwargs)]


def _unchanged(snapshot) -> bool:
    for array, before in snapshot:
        if array.shape != before.shape or array.dtype != before.dtype:
            return False
        if array.dtype.kind in "fc":
            if not np.array_equal(array, before, equal_nan=True):
                return False
        elif not np.array_equal(array, before):
            return False
    return True


def _all_finite(result) -> bool:
    if isinstance(result, Trace):
        result = (result.spikes, result.records, result.state)
    for array in _arrays(result):
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            return False
    return True


def perturb(draw, target: Target) -> tuple[dict, set[str], str]:
    """Valid kwargs with one argument or one params field replaced by a bad value.

    Returns ``(kwargs, names a clear message may use, label of what was perturbed)``.
    """
    kwargs = target.valid()
    choices = []
    for name, value in kwargs.items():
        if name in target.fixed:
            continue
        choices.append((name, None))
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            choices.extend((name, f) for f in value._fields)
    name, field_name = draw(st.sampled_from(choices))
    valid = kwargs[name]
    if field_name is None:
        kwargs[name] = bad_value(draw, valid, index=name in target.index)
        expected = {name}
        if isinstance(valid, np.ndarray):    # a shape change is a mismatch with the others
            expected |= {n for n, v in kwargs.items() if isinstance(v, np.ndarray)}
            expected |= {n for n, v in target.valid().items() if isinstance(v, np.ndarray)}
        label = name
    else:
        old = getattr(valid, field_name)
        kwargs[name] = valid._replace(**{field_name: bad_value(draw, old,
                                                               index=field_name in target.index)})
        expected = {field_name, name}
        label = f"{name}.{field_name}"
    expected |= set(target.aliases.get(field_name or name, ()))
    return kwargs, expected, label


def check_call(target: Target, kwargs: dict, expected: set[str], label: str) -> str:
    """Call ``target`` and assert the contract; returns the outcome ("clear", "accepted")."""
    snapshot = _snapshot(kwargs)
    # deep copies of non-array values (lists, NamedTuples of lists) for the mutation check
    others = copy.deepcopy({k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)})
    TALLY["inputs"] += 1
    try:
        with np.errstate(all="ignore"):
            result = target.fn(**kwargs)
    except DivergenceError:
        outcome = "clear"
    except MemoryError:
        # A size the caller asked for (n = 2**40 neurons) that does not fit: NumPy's message
        # says how much; refusing every such size up front would need a memory model.
        outcome = "memory_error"
    except (TypeError, ValueError) as err:
        message = str(err)
        if "array is too big" in message or "Maximum allowed dimension" in message:
            # NumPy's refusals of sizes past its limits: memory errors too
            outcome = "memory_error"
        elif not any(n in message for n in expected):
            TALLY["unclear"] += 1
            raise AssertionError(f"{target.name}: bad {label} gave a {type(err).__name__} that "
                                 f"names none of {sorted(expected)}: {message!r}") from err
        else:
            outcome = "clear"
    except Exception as err:
        TALLY["unclear"] += 1
        raise AssertionError(f"{target.name}: bad {label} gave an unclear "
                             f"{type(err).__name__}: {err}") from err
    else:
        if not _all_finite(result):
            TALLY["non_finite"] += 1
            raise AssertionError(f"{target.name}: bad {label} was accepted and returned "
                                 "non-finite values without a word")
        outcome = "accepted"
    if not _unchanged(snapshot) or not _same(others, kwargs):
        TALLY["mutated"] += 1
        raise AssertionError(f"{target.name}: bad {label} — an input was modified")
    TALLY[outcome] += 1
    TALLY[f"target:{target.name}"] += 1
    return outcome


def _same(others: dict, kwargs: dict) -> bool:
    for key, before in others.items():
        after = kwargs[key]
        if type(before) is not type(after):
            return False
        before_arrays, after_arrays = list(_arrays(before)), list(_arrays(after))
        if len(before_arrays) != len(after_arrays):
            return False
        for b, a in zip(before_arrays, after_arrays, strict=True):
            if not (b.shape == a.shape and np.array_equal(b, a, equal_nan=b.dtype.kind in "fc")):
                return False
    return True


def target_tests(targets: list[Target]) -> tuple[Callable, Callable]:
    """The two tests of a target list, for a suite module to bind at its top level:

    ``test_bad_input_gives_a_clear_error_or_a_finite_result, test_valid_input_runs =
    target_tests(TARGETS)`` — one perturbed call per drawn example (the contract above), and
    the unperturbed call, which must be accepted (the suite perturbs working calls, not
    broken ones).
    """
    import pytest
    from hypothesis import given

    @pytest.mark.parametrize("target", targets, ids=lambda t: t.name)
    @given(data=st.data())
    def test_bad_input_gives_a_clear_error_or_a_finite_result(target, data):
        kwargs, expected, label = perturb(data.draw, target)
        check_call(target, kwargs, expected, label)

    @pytest.mark.parametrize("target", targets, ids=lambda t: t.name)
    def test_valid_input_runs(target):
        kwargs = target.valid()
        assert check_call(target, kwargs, set(kwargs), "nothing") == "accepted"

    return test_bad_input_gives_a_clear_error_or_a_finite_result, test_valid_input_runs
