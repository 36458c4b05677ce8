"""bioplastic.nn.LIF: equal to the Numba kernel in float64, differentiable, trainable."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bioplastic as bp  # noqa: E402
from bioplastic.nn import LIF, spike  # noqa: E402


def heterogeneous(rng, n):
    return bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), v_th_mv=-50 + rng.normal(0, 1, n),
                        t_ref_ms=rng.integers(0, 20, n) * 0.1, theta_plus_mv=rng.uniform(0, 1, n),
                        tau_theta_ms=rng.uniform(20, 100, n))


def test_forward_is_bit_identical_to_kernel_without_recurrence(rng):
    n, n_steps = 40, 400
    params = heterogeneous(rng, n)
    drive = rng.uniform(18, 26, n) + rng.normal(0, 2, (n_steps, n))
    kernel = bp.run_lif(drive, params, record=("v", "theta"))
    module = LIF(**params._asdict(), dtype=torch.float64)
    with torch.no_grad():
        spikes, records, state = module.run(torch.tensor(drive), record=("v",))
    v = records["v"]
    assert kernel.spikes.sum() > 50
    np.testing.assert_array_equal(spikes.numpy().astype(bool), kernel.spikes)
    np.testing.assert_array_equal(v.numpy(), kernel["v"])
    np.testing.assert_array_equal(state.theta.numpy(), kernel.state.theta)


def test_forward_with_recurrence_matches_kernel_to_round_off(rng):
    n, n_steps = 40, 400
    params = heterogeneous(rng, n)
    weight = (rng.random((n, n)) < 0.2) * rng.normal(0, 1, (n, n))
    drive = rng.uniform(18, 26, n) + rng.normal(0, 2, (n_steps, n))
    kernel = bp.run_lif(drive, params, weight=weight, record=("v",))
    module = LIF(**params._asdict(), n_recurrent=n, dtype=torch.float64)
    with torch.no_grad():
        module.recurrent_weight.copy_(torch.tensor(weight))
        trace = module.run(torch.tensor(drive), record=("v",))
    spikes, v = trace.spikes, trace["v"]
    np.testing.assert_array_equal(spikes.numpy().astype(bool), kernel.spikes)
    # A matrix product sums in another order than sequential delivery: round-off only.
    np.testing.assert_allclose(v.numpy(), kernel["v"], rtol=0, atol=1e-12)


def test_batch_axis_equals_separate_runs(rng):
    module = LIF(dtype=torch.float64)
    drive = torch.tensor(rng.uniform(10, 30, (200, 3, 5)))
    with torch.no_grad():
        together, _ = module(drive)
        for b in range(3):
            torch.testing.assert_close(together[:, b], module(drive[:, b])[0], rtol=0, atol=0)


def test_gradient_matches_finite_differences_below_threshold():
    # Below threshold and with the reset detached, v(x) is smooth: autograd must agree with
    # finite differences (the surrogate plays no role there).
    module = LIF(v_th_mv=1e9, detach_reset=True, learn_tau_m=True, dtype=torch.float64)
    drive = torch.rand(30, 4, dtype=torch.float64, requires_grad=True)

    def final_v(x):
        return module.run(x, record=("v",))["v"][-1]

    assert torch.autograd.gradcheck(final_v, (drive,))


def test_surrogate_gradient_is_the_fast_sigmoid():
    x = torch.tensor([-0.3, 0.0, 0.2], dtype=torch.float64, requires_grad=True)
    spike(x, surrogate="fast_sigmoid", scale=10.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 / (10 * np.abs(x.detach().numpy()) + 1) ** 2)
    assert spike(x.detach()).tolist() == [0.0, 0.0, 1.0]  # strict >, like the kernels


def test_tiny_learning_problem_reduces_the_loss():
    # Learn input weights so that neuron k fires ~k*5 spikes in 100 steps (rate coding).
    torch.manual_seed(0)
    n_in, n_out, n_steps = 20, 4, 100
    inputs = (torch.rand(n_steps, 8, n_in) < 0.2).float()
    readout = torch.nn.Linear(n_in, n_out)
    neuron = LIF(v_rest_mv=0.0, v_reset_mv=0.0, v_th_mv=1.0, tau_m_ms=5.0, dt_ms=1.0,
                 t_ref_ms=0.0)
    target = torch.arange(1, n_out + 1, dtype=torch.float32) * 5.0
    optimizer = torch.optim.Adam(readout.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        counts = neuron(readout(inputs) * 5.0)[0].sum(0)
        loss = ((counts - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_state_dict_round_trip():
    module = LIF(n_recurrent=5, learn_tau_m=True, tau_m_ms=np.linspace(5, 20, 5))
    with torch.no_grad():
        module.recurrent_weight.normal_()
    clone = LIF(n_recurrent=5, learn_tau_m=True, tau_m_ms=np.ones(5))
    clone.load_state_dict(module.state_dict())
    x = torch.rand(20, 2, 5) * 30
    torch.testing.assert_close(clone(x)[0], module(x)[0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="tau_m_ms"):
        LIF(tau_m_ms=0.0)
    with pytest.raises(ValueError, match="t_ref_ms"):
        LIF(t_ref_ms=0.05)
    with pytest.raises(ValueError, match="x"):
        LIF()(torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="surrogate"):
        spike(torch.zeros(2), surrogate="nope")
