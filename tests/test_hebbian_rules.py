"""Classic Hebbian rules and apply_update: naive references, hand-derived values, fixed points."""

import numpy as np
import pytest

from bioplastic.rules import (
    DivergenceError,
    KrotovParams,
    UpdateParams,
    apply_update,
    hard_wta,
    hebb_dw,
    instar_dw,
    krotov_hopfield_dw,
    norm_dependent_rate,
    oja_dw,
    row_norms,
    sanger_dw,
)
from bioplastic.rules.apply import max_normalise

from .naive import naive_apply_update, naive_decay_rule, naive_krotov_dw, naive_sanger_dw


@pytest.fixture
def batch(rng):
    x = rng.normal(size=(6, 4))
    w = rng.normal(size=(3, 4))
    return x, x @ w.T, w


def test_rules_equal_naive(batch):
    x, y, w = batch
    zeros, ones = np.zeros_like(y), np.ones_like(y)
    np.testing.assert_allclose(hebb_dw(x, y, w), naive_decay_rule(x, y, zeros, w), rtol=1e-13)
    np.testing.assert_allclose(instar_dw(x, y, w), naive_decay_rule(x, y, ones, w), rtol=1e-13)
    np.testing.assert_allclose(oja_dw(x, y, w), naive_decay_rule(x, y, y, w), rtol=1e-13)
    g = hard_wta(y)
    np.testing.assert_allclose(oja_dw(x, g, w, u=y), naive_decay_rule(x, g, y, w), rtol=1e-13)
    np.testing.assert_allclose(sanger_dw(x, y, w), naive_sanger_dw(x, y, w), rtol=1e-12)


@pytest.mark.parametrize("p, k, delta", [(2.0, 2, 0.4), (3.0, 3, 0.1)])
def test_krotov_equals_naive(batch, p, k, delta):
    x, _, w = batch
    np.testing.assert_allclose(krotov_hopfield_dw(x, w, KrotovParams(p, k, delta)),
                               naive_krotov_dw(x, w, p, k, delta), rtol=1e-12, atol=1e-14)


def test_one_by_one_hand_derived():
    # x = 2, w = 0.5, y = u = 1: Hebb 2; instar 1*(2 - 0.5) = 1.5; Oja 1*(2 - 1*0.5) = 1.5;
    # Sanger (one unit) = Oja.
    x, y, w = np.array([[2.0]]), np.array([[1.0]]), np.array([[0.5]])
    assert hebb_dw(x, y, w)[0, 0] == 2.0
    assert instar_dw(x, y, w)[0, 0] == 1.5
    assert oja_dw(x, y, w)[0, 0] == 1.5
    assert sanger_dw(x, y, w)[0, 0] == 1.5
    # Oja with y = 3 but decay u = 1: 3*(2 - 1*0.5) = 4.5
    assert oja_dw(x, 3 * y, w, u=y)[0, 0] == 4.5


def test_zero_post_factor_gives_zero_dw(batch):
    x, y, w = batch
    zero = np.zeros_like(y)
    for rule in (hebb_dw, instar_dw, oja_dw, sanger_dw):
        assert np.all(rule(x, zero, w) == 0.0)


def test_surrogate_loss_gradients(batch):
    """Hebb, instar and Oja are minus the gradient of surrogate losses (post factors detached):
    Hebb  L = -Σ y (w·x);  instar L = ½ Σ y ‖x − w‖²;  Oja L = Σ [-y (w·x) + ½ (y u) ‖w‖²]."""
    torch = pytest.importorskip("torch")
    x, y, w = batch
    xt, yt = torch.tensor(x), torch.tensor(y)
    losses = {
        hebb_dw: lambda wt: -(yt * (xt @ wt.T)).sum(),
        instar_dw: lambda wt: 0.5 * (yt[:, :, None] * (xt[:, None] - wt[None]) ** 2).sum(),
        oja_dw: lambda wt: (-(yt * (xt @ wt.T)) + 0.5 * yt * yt * (wt ** 2).sum(1)).sum(),
    }
    for rule, loss in losses.items():
        wt = torch.tensor(w, requires_grad=True)
        loss(wt).backward()
        np.testing.assert_allclose(rule(x, y, w), -wt.grad.numpy(), rtol=1e-12, atol=1e-13)


def _covariance_data(rng, n=4000):
    # Anisotropic Gaussian with known principal axes (the rows of a random rotation).
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    scales = np.array([3.0, 2.0, 1.0, 0.5])
    return (rng.normal(size=(n, 4)) * scales) @ rotation, rotation


def test_oja_converges_to_first_principal_component(rng):
    x, rotation = _covariance_data(rng)
    w = rng.normal(size=(1, 4)) * 0.1
    for epoch in range(3):
        for b in range(0, len(x), 10):
            xb = x[b:b + 10]
            w = apply_update(w, oja_dw(xb, xb @ w.T, w), UpdateParams(0.002 / (1 + epoch)))
    assert abs(np.linalg.norm(w) - 1) < 0.02                       # ‖w‖ -> 1
    assert abs(abs(w[0] @ rotation[0]) - 1) < 0.01                 # w -> ± first PC


def test_sanger_orders_principal_components(rng):
    x, rotation = _covariance_data(rng)
    w = rng.normal(size=(2, 4)) * 0.1
    for epoch in range(4):
        for b in range(0, len(x), 10):
            xb = x[b:b + 10]
            w = apply_update(w, sanger_dw(xb, xb @ w.T, w), UpdateParams(0.002 / (1 + epoch)))
    alignment = np.abs(w @ rotation.T)       # (2 units, 4 axes)
    assert alignment[0, 0] > 0.98 and alignment[1, 1] > 0.95
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.05)


def test_krotov_norms_converge_to_one(rng):
    x = rng.normal(size=(2000, 8))
    w = rng.normal(size=(6, 8))                       # Krotov's W ~ N(0, 1) initialisation
    for epoch in range(20):
        eps = 0.02 * (1 - epoch / 20)                  # Krotov's linear annealing of ε0 = 2e-2
        for b in range(0, len(x), 100):
            dw = krotov_hopfield_dw(x[b:b + 100], w, KrotovParams(2.0, 2, 0.4))
            w = apply_update(w, dw, UpdateParams(eps, max_normalise=True))
    # Units that ever won settle on the unit sphere (spec §7 convergence test).
    assert abs(np.mean(np.linalg.norm(w, axis=1)) - 1) < 0.1


# ------------------------------------------------------------------------- apply_update
def test_apply_update_equals_naive(batch, rng):
    _, _, w = batch
    dw = rng.normal(size=w.shape)
    for max_norm, power, lo, hi in [(False, 0.0, -np.inf, np.inf), (True, 0.5, -0.8, 0.9)]:
        params = UpdateParams(0.1, max_norm, power, 2.0, lo, hi)
        np.testing.assert_allclose(apply_update(w, dw, params),
                                   naive_apply_update(w, dw, 0.1, max_norm, power, lo, hi),
                                   rtol=1e-14)


def test_max_normalisation_is_exactly_one(rng):
    dw = rng.normal(size=(5, 7)) * 1e-3
    assert np.max(np.abs(max_normalise(dw))) == 1.0
    assert np.all(max_normalise(np.zeros((2, 2))) == 0.0)


def test_norm_dependent_rate_on_sphere():
    # At ‖w_k‖ = 1 the rate is η0 (1e-10)^power_lr = η0 * 1e-5 for power_lr 0.5 (spec §7).
    w = np.array([[0.6, 0.8], [3.0, 4.0]])
    expected = [0.08e-5, 0.08 * (4.0 + 1e-10) ** 0.5]
    np.testing.assert_allclose(norm_dependent_rate(w, 0.08, 0.5), expected, rtol=1e-12)


def test_per_unit_rate_row_norm_and_bounds(batch):
    _, _, w = batch
    dw = np.ones_like(w)
    out = apply_update(w, dw, UpdateParams(np.array([0.0, 1.0, 2.0])))
    np.testing.assert_array_equal(out, w + np.array([[0.0], [1.0], [2.0]]))
    out = apply_update(w, dw, UpdateParams(0.1, row_norm=2.0))
    np.testing.assert_allclose(row_norms(out), 2.0, rtol=1e-14)
    out = apply_update(w, dw, UpdateParams(10.0, w_min=-1.0, w_max=1.0))
    assert out.max() == 1.0


def test_apply_update_does_not_mutate(batch):
    _, _, w = batch
    before = w.copy()
    apply_update(w, np.ones_like(w), UpdateParams(0.5, True, 0.5))
    np.testing.assert_array_equal(w, before)


def test_diverging_run_raises():
    # Oja with a rate far above 2/λ_max oscillates with growing amplitude: within a few dozen
    # steps the weights overflow, and the run stops with DivergenceError (a ValueError).
    x, w = np.array([[3.0, 4.0]]), np.array([[0.1, 0.1]])
    with pytest.raises(DivergenceError, match="diverged"), np.errstate(over="ignore"):
        for _ in range(200):
            w = apply_update(w, oja_dw(x, x @ w.T, w), UpdateParams(1.0))
    with pytest.raises(DivergenceError, match="non-finite weights"):
        apply_update(np.full((1, 2), 1e308), np.full((1, 2), 1e308), UpdateParams(1.0))
    with pytest.raises(DivergenceError, match="dw contains"):
        apply_update(np.ones((1, 2)), np.array([[np.nan, 0.0]]))


@pytest.mark.parametrize("call, match", [
    (lambda: hebb_dw(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros((2, 3))), "empty batch"),
    (lambda: oja_dw(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((2, 5))), "mismatched"),
    (lambda: oja_dw(np.zeros((4, 3)), np.zeros((5, 2)), np.zeros((2, 3))), "one row per"),
    (lambda: instar_dw(np.full((1, 1), np.inf), np.ones((1, 1)), np.ones((1, 1))), "finite"),
    (lambda: krotov_hopfield_dw(np.zeros((2, 3)), np.zeros((4, 3)), KrotovParams(k=5)),
     "k must lie in 2..n_units=4"),
    (lambda: krotov_hopfield_dw(np.zeros((2, 3)), np.zeros((4, 2))), "columns"),
    (lambda: apply_update(np.zeros((2, 2)), np.zeros((2, 3))), "shape"),
    (lambda: apply_update(np.zeros((2, 2)), np.zeros((2, 2)), UpdateParams(-1.0)),
     "learning_rate"),
    (lambda: apply_update(np.zeros((2, 2)), np.zeros((2, 2)), UpdateParams(np.ones(3))),
     "learning_rate"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_krotov_is_ranked_competition_composed_with_oja(batch):
    """The composition the Brian2 twin checks (reference/rate_rules.py) is Krotov–Hopfield."""
    from bioplastic.rules import ranked_wta

    x, _, w = batch
    current = x @ w.T
    np.testing.assert_allclose(krotov_hopfield_dw(x, w, KrotovParams(2.0, 2, 0.4)),
                               oja_dw(x, ranked_wta(current, 2, 0.4), w, u=current),
                               rtol=1e-13, atol=1e-14)


def test_rules_do_not_mutate_inputs(batch):
    x, y, w = batch
    copies = [a.copy() for a in (x, y, w)]
    for call in (lambda: hebb_dw(x, y, w), lambda: instar_dw(x, y, w), lambda: oja_dw(x, y, w),
                 lambda: sanger_dw(x, y, w), lambda: krotov_hopfield_dw(x, w)):
        call()
        for a, b in zip((x, y, w), copies, strict=True):
            np.testing.assert_array_equal(a, b)
