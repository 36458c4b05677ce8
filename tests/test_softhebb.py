"""SoftHebb (bioplastic.rules.softhebb): naive references, fixed points, conv form, bad input."""

import numpy as np
import pytest

from bioplastic._jit import py_func
from bioplastic.rules import (
    SoftHebbParams,
    UpdateParams,
    apply_update,
    soft_hebb_bias_db,
    soft_hebb_bias_init,
    soft_hebb_conv_dw,
    soft_hebb_dw,
    soft_hebb_post,
    soft_wta,
    unfold_patches,
)
from bioplastic.rules.softhebb import soft_hebb_dw_kernel

from .naive import naive_conv_soft_hebb_dw, naive_soft_hebb_dw


@pytest.mark.parametrize("temperature", [0.2, 1.0])
@pytest.mark.parametrize("anti_hebbian", [False, True])
@pytest.mark.parametrize("batch", [1, 9])
def test_dense_equals_naive(rng, temperature, anti_hebbian, batch):
    x = rng.normal(size=(batch, 6))
    w = rng.normal(size=(4, 6))
    u = x @ w.T + rng.normal(size=4)                  # pre-activations with a bias
    dw = soft_hebb_dw(x, u, w, SoftHebbParams(temperature, anti_hebbian))
    np.testing.assert_allclose(dw, naive_soft_hebb_dw(x, u, w, temperature, anti_hebbian),
                               rtol=1e-12, atol=1e-14)


def test_single_unit_hand_derived():
    # One unit: the softmax is 1, so dw = x - u w. x = 2, w = 0.5, u = 1: 2 - 0.5 = 1.5.
    dw = soft_hebb_dw([[2.0]], [[1.0]], [[0.5]])
    assert dw[0, 0] == 1.5


def test_batch_is_summed(rng):
    x = rng.normal(size=(4, 3))
    w = rng.normal(size=(2, 3))
    u = x @ w.T
    parts = sum(soft_hebb_dw(x[b:b + 1], u[b:b + 1], w) for b in range(4))
    np.testing.assert_allclose(soft_hebb_dw(x, u, w), parts, rtol=1e-13, atol=1e-15)


def test_post_factor(rng):
    u = rng.normal(size=(5, 4))
    np.testing.assert_array_equal(soft_hebb_post(u, SoftHebbParams(0.5, anti_hebbian=False)),
                                  soft_wta(u, 0.5))
    y = soft_hebb_post(u, SoftHebbParams(0.5, anti_hebbian=True))
    np.testing.assert_array_equal(np.abs(y), soft_wta(u, 0.5))
    assert np.all((y > 0).sum(axis=1) == 1)


def test_jit_on_equals_off(rng):
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    u = x @ w.T
    # one-ulp exp differences between libm and NumPy (see test_inhibition) allow a few eps.
    np.testing.assert_allclose(soft_hebb_dw_kernel(x, u, w, 0.5, True),
                               py_func(soft_hebb_dw_kernel)(x, u, w, 0.5, True),
                               rtol=1e-14, atol=1e-15)


def test_inputs_not_mutated(rng):
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    u = x @ w.T
    copies = [a.copy() for a in (x, u, w)]
    soft_hebb_dw(x, u, w, SoftHebbParams(0.3, True))
    for a, b in zip((x, u, w), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_single_unit_fixed_point_is_unit_mean_direction(rng):
    # With one unit y = 1 and E[dw] = m - (w·m) w, whose fixed point is w = m/‖m‖ (‖w‖ = 1).
    mean = np.array([1.0, -2.0, 0.5])
    x = mean + 0.3 * rng.normal(size=(3000, 3))
    w = rng.normal(size=(1, 3)) * 0.1
    for b in range(0, len(x), 10):
        xb = x[b:b + 10]
        w = apply_update(w, soft_hebb_dw(xb, xb @ w.T, w), UpdateParams(0.002))
    np.testing.assert_allclose(w[0], mean / np.linalg.norm(mean), atol=0.03)


def test_norms_converge_to_one_on_clusters(rng):
    # Four well separated clusters on the unit sphere; ICLR recipe (max-normalised dw,
    # norm-dependent rate) from a radius-10 start (spec §3.4, §7 convergence test).
    centres = np.linalg.qr(rng.normal(size=(8, 4)))[0].T           # (4, 8) orthonormal
    x = centres[rng.integers(4, size=4000)] + 0.05 * rng.normal(size=(4000, 8))
    w = rng.normal(size=(4, 8)) * 10 / np.sqrt(8)
    # τ = 1 keeps every unit's softmax share non-negligible; at τ = 0.2 units that never win
    # keep their initial norm (dead units), which the digits experiment reports instead.
    params, update = SoftHebbParams(1.0, True), UpdateParams(0.05, True, 0.5)
    for _ in range(2):
        for b in range(0, len(x), 10):
            xb = x[b:b + 10]
            w = apply_update(w, soft_hebb_dw(xb, xb @ w.T, w, params), update)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.01)


def test_bias_rule_fixed_point(rng):
    # Iterating b <- b + η db drives e^{b/τ} to the mean soft-WTA output (spec §2, §7).
    params = SoftHebbParams(0.5, anti_hebbian=False)
    u0 = rng.normal(size=(50, 3))
    b = soft_hebb_bias_init(3, params)
    np.testing.assert_allclose(np.exp(b / 0.5), 1 / 3, rtol=1e-15)        # uniform prior
    for _ in range(2000):
        b = b + 0.002 * soft_hebb_bias_db(u0 + b, b, params)
    s = soft_wta(u0 + b, 0.5)
    np.testing.assert_allclose(np.exp(b / 0.5), s.mean(axis=0), rtol=1e-8)
    np.testing.assert_allclose(soft_hebb_bias_db(u0 + b, b, params), 0.0, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_conv_equals_naive_direct_conv(rng, stride, dilation, mode):
    x = rng.normal(size=(2, 3, 7, 7))
    w = rng.normal(size=(4, 3, 3, 3))
    dw = soft_hebb_conv_dw(x, w, SoftHebbParams(0.7, True), stride=stride, padding=1,
                           dilation=dilation, padding_mode=mode)
    expected = naive_conv_soft_hebb_dw(x, w, 0.7, True, stride, 1, dilation, mode)
    np.testing.assert_allclose(dw, expected, rtol=1e-11, atol=1e-12)


def test_unfold_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(2, 3, 6, 5))
    patches, (ho, wo) = unfold_patches(x, (3, 2), stride=(2, 1), padding=(1, 0), dilation=1)
    ref = torch.nn.functional.unfold(torch.tensor(x), (3, 2), stride=(2, 1), padding=(1, 0))
    # torch: (B, C*kh*kw, L) -> rows (B*L, C*kh*kw)
    np.testing.assert_array_equal(patches, ref.permute(0, 2, 1).reshape(-1, 18).numpy())
    assert ho * wo == ref.shape[2]


def test_conv_bias_shifts_pre_activation(rng):
    x, w = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(3, 2, 2, 2))
    bias = rng.normal(size=3)
    patches, _ = unfold_patches(x, 2)
    u = patches @ w.reshape(3, -1).T + bias
    np.testing.assert_allclose(soft_hebb_conv_dw(x, w, bias=bias),
                               soft_hebb_dw(patches, u, w.reshape(3, -1)).reshape(w.shape),
                               rtol=1e-14)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: soft_hebb_dw(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros((2, 3))),
     ValueError, "empty batch"),
    (lambda: soft_hebb_dw(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((2, 5))),
     ValueError, "mismatched"),
    (lambda: soft_hebb_dw(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((2, 3)),
                          SoftHebbParams(0.0)), ValueError, "temperature"),
    (lambda: soft_hebb_dw(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((2, 3)),
                          SoftHebbParams(-2.0)), ValueError, "temperature"),
    (lambda: soft_hebb_dw([[np.nan, 0, 0]], np.zeros((1, 2)), np.zeros((2, 3))),
     ValueError, "finite"),
    (lambda: soft_hebb_dw(np.zeros((1, 3)), np.zeros((1, 2)), np.zeros((2, 3)), (1.0, False)),
     TypeError, "SoftHebbParams"),
    (lambda: soft_hebb_conv_dw(np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 2, 2))),
     ValueError, "channels"),
    (lambda: soft_hebb_conv_dw(np.zeros((1, 1, 2, 2)), np.zeros((3, 1, 3, 3))),
     ValueError, "does not fit"),
    (lambda: soft_hebb_conv_dw(np.zeros((1, 1, 4, 4)), np.zeros((3, 1, 3, 3)),
                               padding_mode="circular"), ValueError, "padding_mode"),
    (lambda: soft_hebb_bias_db(np.zeros((2, 3)), np.zeros(2)), ValueError, "b must"),
    (lambda: soft_hebb_bias_init(0), ValueError, "n_units"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_defaults_match_the_estimator_and_the_guide():
    """SoftHebbParams() is the ICLR 2023 rule, as sklearn.SoftHebb() and docs/softhebb.md."""
    from bioplastic.sklearn import SoftHebb

    estimator = SoftHebb()
    assert SoftHebbParams() == SoftHebbParams(1.0, anti_hebbian=True)
    assert SoftHebbParams() == SoftHebbParams(estimator.temperature, estimator.anti_hebbian)
