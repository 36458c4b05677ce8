"""bioplastic.nn.functional.lif_sequence: a whole LIF sequence as one autograd node.

The reference is a Python loop of ``lif_step`` (the step function, differentiated by
autograd): the fused forward must equal it bit for bit and its hand-written backward must give
the same gradients in float64 (to summation round-off: the tolerance 1e-12 is what float64
chains of a few hundred multiply-adds keep; a wrong term changes the gradient at O(1)).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bioplastic as bp  # noqa: E402
from bioplastic.nn import LIF  # noqa: E402
from bioplastic.nn import functional as F  # noqa: E402
from bioplastic.nn.surrogate import SURROGATES  # noqa: E402

from .torch_loops import step_loop  # noqa: E402

TOL = dict(rtol=1e-12, atol=1e-12)


def loop(x, state, params, **options):
    """The reference: T calls of lif_step under autograd."""
    return step_loop(lambda x_t, st: F.lif_step(x_t, st, params, **options), x, state)


def heterogeneous_params(rng, n):
    # per-neuron tau, rest, reset and threshold; no refractory period, no adaptation
    return bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), v_rest_mv=rng.uniform(-70, -60, n),
                        v_reset_mv=rng.uniform(-75, -65, n), v_th_mv=-52 + rng.normal(0, 1, n),
                        t_ref_ms=0.0, theta_plus_mv=0.0, dt_ms=0.5)


def make_case(rng, n=6, batch=3, n_steps=150):
    params = F.lif_prepare(heterogeneous_params(rng, n))
    shape = (n_steps, batch, n)
    x = torch.tensor(rng.uniform(14, 40, shape) + rng.normal(0, 4, shape))
    state = F.lif_initial_state((batch, n), params)
    return x, state, params


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("detach_reset", [False, True])
def test_forward_bit_identical_and_gradients_equal_the_step_loop(rng, surrogate, detach_reset):
    x, state, params = make_case(rng)
    options = dict(surrogate=surrogate, surrogate_scale=2.0, detach_reset=detach_reset)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    v0a = (state.v + torch.rand_like(state.v)).requires_grad_(True)
    v0b = v0a.detach().clone().requires_grad_(True)
    ref_s, ref_state = loop(xa, state._replace(v=v0a), params, **options)
    got_s, got_state = F.lif_sequence(xb, state._replace(v=v0b), params, **options)
    assert 0.02 < float(ref_s.detach().mean()) < 0.6          # resets happen, not saturated
    torch.testing.assert_close(got_s, ref_s, rtol=0, atol=0)
    torch.testing.assert_close(got_state.v, ref_state.v, rtol=0, atol=0)
    # a loss through the spikes and through the final voltage
    weights = torch.tensor(rng.normal(0, 1, x.shape))
    loss_ref = (ref_s * weights).sum() + (ref_state.v ** 2).sum() * 1e-3
    loss_got = (got_s * weights).sum() + (got_state.v ** 2).sum() * 1e-3
    loss_ref.backward()
    loss_got.backward()
    assert xa.grad.abs().max() > 0.1
    torch.testing.assert_close(xb.grad, xa.grad, **TOL)
    torch.testing.assert_close(v0b.grad, v0a.grad, **TOL)


def test_learned_decay_gradient_equals_the_step_loop(rng):
    x, state, params = make_case(rng)
    grads = []
    for run in (loop, F.lif_sequence):
        log_tau = torch.tensor(np.log(12.0), dtype=torch.float64, requires_grad=True)
        decay = torch.exp(-0.5 / torch.exp(log_tau))
        spikes, final = run(x, state, params._replace(decay_m=decay))
        (spikes.sum() + final.v.sum() * 1e-2).backward()
        grads.append(log_tau.grad)
    assert grads[0].abs() > 1e-3
    torch.testing.assert_close(grads[1], grads[0], **TOL)


def test_per_neuron_learned_decay_and_broadcast_initial_state(rng):
    # decay (n,) and a v0 of shape (n,) broadcast over the batch: gradients reduced alike
    x, state, params = make_case(rng)
    results = []
    for run in (loop, F.lif_sequence):
        decay = params.decay_m.clone().requires_grad_(True)
        v0 = params.v_rest.clone().requires_grad_(True)
        spikes, _ = run(x, F.LIFTensorState(v0, None, None), params._replace(decay_m=decay))
        spikes.sum().backward()
        results.append((spikes, decay.grad, v0.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    assert results[1][1].shape == (6,) and results[1][2].shape == (6,)
    torch.testing.assert_close(results[1][1], results[0][1], **TOL)
    torch.testing.assert_close(results[1][2], results[0][2], **TOL)


def test_module_uses_the_sequence_and_keeps_the_step_contract():
    # LIF.from_beta is the lean case: run ≡ loop of step (forward bit for bit, gradients to
    # round-off), in float64 and float32.
    for dtype, tol in ((torch.float64, TOL), (torch.float32, dict(rtol=1e-5, atol=1e-6))):
        layer = LIF.from_beta(0.9, dtype=dtype)
        g = torch.Generator().manual_seed(4)
        x = (torch.rand(60, 4, 16, generator=g, dtype=dtype) * 2.5)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        spikes, final = layer(xa)
        steps, state = step_loop(layer.step, xb)
        torch.testing.assert_close(spikes, steps, rtol=0, atol=0)
        torch.testing.assert_close(final.v, state.v, rtol=0, atol=0)
        spikes.sum().backward()
        steps.sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, **tol)


def test_inference_path_equals_training_path():
    layer = LIF.from_beta(0.8, dtype=torch.float64)
    x = torch.rand(40, 2, 8, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64) * 3
    with torch.no_grad():
        a, sa = layer(x)
    b, sb = layer(x.clone().requires_grad_(True))
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    torch.testing.assert_close(sa.v, sb.v.detach(), rtol=0, atol=0)


def test_refused_where_it_does_not_apply():
    params = F.lif_prepare(bp.LIFParams())              # t_ref = 2 ms by default
    state = F.lif_initial_state((2,), params)
    with pytest.raises(ValueError, match="refractory"):
        F.lif_sequence(torch.zeros(3, 2, dtype=torch.float64), state, params)


@pytest.mark.parametrize("layer_dtype, x_dtype", [(torch.float64, torch.float32),
                                                   (torch.float32, torch.float64)])
def test_mixed_dtypes_promote_like_the_step(layer_dtype, x_dtype):
    # lif_step's arithmetic follows torch's promotion (0-dim parameters do not promote the
    # state); the sequence must give the same dtypes and numbers
    layer = LIF.from_beta(0.9, dtype=layer_dtype)
    x = torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(2), dtype=x_dtype) * 2.5
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    spikes, final = layer(xa)
    steps, state = step_loop(layer.step, xb)
    assert spikes.dtype == steps.dtype and final.v.dtype == state.v.dtype
    torch.testing.assert_close(spikes, steps, rtol=0, atol=0)
    torch.testing.assert_close(final.v, state.v, rtol=0, atol=0)
    spikes.sum().backward()
    steps.sum().backward()
    assert xa.grad.dtype == x_dtype
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-6, atol=1e-7)
