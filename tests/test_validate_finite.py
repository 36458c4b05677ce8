"""``_validate.check_finite``: its fast path (a finite sum) never lets a non-finite value by."""

import numpy as np
import pytest

from bioplastic._validate import _float_sum_is_finite, check_finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_value_is_named_and_counted(bad):
    array = np.ones(1000)
    array[517] = bad
    assert not _float_sum_is_finite(array)
    with pytest.raises(ValueError, match=r"weights must contain only finite values, found 1"):
        check_finite("weights", array)


def test_opposite_infinities_do_not_cancel():
    array = np.array([1.0, np.inf, -np.inf, 2.0])
    with pytest.raises(ValueError, match="found 2 non-finite"):
        check_finite("x", array)


def test_finite_values_whose_sum_overflows_pass():
    # 1e308 + 1e308 overflows float64 (max ~1.8e308): the fast path says "look closer",
    # the element-wise check then accepts the finite array.
    array = np.array([1e308, 1e308, -1.0])
    assert not _float_sum_is_finite(array)
    check_finite("x", array)


def test_non_contiguous_and_float32_arrays():
    array = np.ones((6, 8), dtype=np.float32)[:, ::2]
    check_finite("x", array)
    array[2, 1] = np.nan
    with pytest.raises(ValueError, match="found 1 non-finite"):
        check_finite("x", array)
