"""Competition activations (bioplastic.rules.inhibition): naive references and invariants."""

import numpy as np
import pytest

from bioplastic.rules import anti_hebbian_signs, hard_wta, k_wta, ranked_wta, soft_wta, triangle

from .naive import naive_ranked, naive_signs, naive_soft_wta


@pytest.fixture
def u(rng):
    return rng.normal(size=(7, 5))


@pytest.mark.parametrize("temperature", [0.1, 1.0, 3.0])
def test_soft_wta_equals_naive_and_sums_to_one(u, temperature):
    y = soft_wta(u, temperature)
    np.testing.assert_allclose(y, naive_soft_wta(u, temperature), rtol=1e-14, atol=0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)


def test_soft_wta_low_temperature_is_hard_wta(u):
    # Gaps between normal draws are >> 1e-6 * τ, so exp(-gap/τ) underflows to exactly 0.
    np.testing.assert_array_equal(soft_wta(u, 1e-6), hard_wta(u))


def test_soft_wta_shift_and_scale(u):
    np.testing.assert_allclose(soft_wta(u + 3.7, 0.5), soft_wta(u, 0.5), rtol=1e-13)
    # Multiplying u by c is the same as dividing the temperature by c.
    np.testing.assert_allclose(soft_wta(2.5 * u, 1.0), soft_wta(u, 1.0 / 2.5), rtol=1e-13)


def test_soft_wta_overflow_safe():
    y = soft_wta(np.array([[1000.0, 0.0]]), 1.0)
    np.testing.assert_array_equal(y, [[1.0, 0.0]])  # exp(-1000) underflows to 0


def test_hard_wta_ties_go_to_lowest_index():
    np.testing.assert_array_equal(hard_wta([[1.0, 3.0, 3.0]]), [[0.0, 1.0, 0.0]])


def test_anti_hebbian_signs(u):
    s = soft_wta(u, 0.5)
    y = anti_hebbian_signs(u, s)
    np.testing.assert_array_equal(y, naive_signs(u, s))
    assert np.all((y > 0).sum(axis=1) == 1)                      # exactly one positive...
    np.testing.assert_array_equal(np.argmax(y, axis=1), np.argmax(u, axis=1))   # ...the winner
    assert np.all(np.sort(y, axis=1)[:, :-1] <= 0)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_ranked_wta_equals_naive(u, k):
    np.testing.assert_array_equal(ranked_wta(u, k, 0.4), naive_ranked(u, k, 0.4))


def test_ranked_wta_ties_stable():
    # Units 1 and 2 tie for second place: the lower index is ranked 2nd.
    np.testing.assert_array_equal(ranked_wta([[3.0, 1.0, 1.0]], 2, 0.5), [[1.0, -0.5, 0.0]])


@pytest.mark.parametrize("k", [1, 2, 5])
def test_k_wta(u, k):
    y = k_wta(u, k)
    top = np.argsort(-u, axis=1, kind="stable")[:, :k]
    expected = np.zeros_like(u)
    np.put_along_axis(expected, top, np.take_along_axis(u, top, axis=1), axis=1)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(k_wta(u, k, binary=True), (expected != 0).astype(float))


def test_k_wta_one_is_hard_wta(u):
    np.testing.assert_array_equal(k_wta(u, 1, binary=True), hard_wta(u))


def test_triangle():
    u = np.array([[1.0, 2.0, 6.0]])                   # mean 3
    np.testing.assert_array_equal(triangle(u), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(triangle(u, 0.7), [[0.0, 0.0, 3.0 ** 0.7]])
    conv = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    expected = np.maximum(conv - conv.mean(axis=1, keepdims=True), 0)
    np.testing.assert_array_equal(triangle(conv, axis=1), expected)


def test_inputs_not_mutated(u):
    before = u.copy()
    for f in (lambda: soft_wta(u, 0.3), lambda: hard_wta(u), lambda: k_wta(u, 2),
              lambda: ranked_wta(u), lambda: anti_hebbian_signs(u, u), lambda: triangle(u)):
        f()
        np.testing.assert_array_equal(u, before)


@pytest.mark.parametrize("call, match", [
    (lambda: soft_wta(np.zeros((0, 3)), 1.0), "empty batch"),
    (lambda: soft_wta(np.zeros((2, 3)), 0.0), "temperature"),
    (lambda: soft_wta(np.zeros((2, 3)), -1.0), "temperature"),
    (lambda: soft_wta([[np.nan, 1.0]], 1.0), "finite"),
    (lambda: soft_wta(np.zeros(3), 1.0), "2-dimensional"),
    (lambda: k_wta(np.zeros((2, 3)), 0), "k must lie in 1..n_units=3"),
    (lambda: k_wta(np.zeros((2, 3)), 4), "k must lie"),
    (lambda: ranked_wta(np.zeros((2, 3)), 1), "k must lie in 2..n_units"),
    (lambda: anti_hebbian_signs(np.zeros((2, 3)), np.zeros((2, 4))), "shape"),
    (lambda: triangle(np.zeros((0, 3))), "non-empty"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_k_must_be_integer():
    with pytest.raises(TypeError, match="k must be an integer"):
        k_wta(np.zeros((2, 3)), 1.5)
