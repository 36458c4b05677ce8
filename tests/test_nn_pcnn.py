"""bioplastic.nn.PCNN: forward equal to the Numba kernel in float64, surrogate gradient,
parameterisations, norms, bad input."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bioplastic.nn.functional.pcnn as functional_pcnn  # noqa: E402
import bioplastic.nn.pcnn as nn_pcnn  # noqa: E402
from bioplastic.neurons.pcnn import PCNNParams, run_pcnn  # noqa: E402
from bioplastic.nn import PCNN, PCNNConv2d, spike  # noqa: E402

PARAMS = dict(decay_f=0.7, decay_l=0.4, decay_e=0.8, v_l=0.6, v_e=3.0, beta=0.7, e0=0.5)


def _kernel_run(drive, kernel, coupling):
    """The Numba kernel with the layer's equations: no feeding coupling, classic U."""
    p = PARAMS
    params = PCNNParams(decay_f=p["decay_f"], decay_l=p["decay_l"], decay_e=p["decay_e"],
                        v_f=0.0, v_l=p["v_l"], v_e=p["v_e"], beta=p["beta"], e0=p["e0"],
                        linking_kernel=None if coupling == "none" else kernel,
                        coupling=coupling)
    return run_pcnn(drive, params, record=("f", "l", "e"), allow_negative=True)


@pytest.mark.parametrize("coupling", ["none", "intra", "inter"])
def test_forward_equals_numba_kernel_float64(coupling):
    rng = np.random.default_rng(31)
    n_maps, k = 3, 3
    shape = {"intra": (n_maps, 1, k, k), "inter": (n_maps, n_maps, k, k)}.get(coupling)
    kernel = None if shape is None else rng.uniform(-0.3, 1.0, shape)
    layer = PCNN(n_maps, coupling=coupling, kernel_size=k, learnable=(), dtype=torch.float64,
                 link_kernel=None if kernel is None else torch.tensor(kernel), **PARAMS)
    drive = rng.normal(0.3, 0.5, (40, 2, n_maps, 8, 9))           # signed trained-style drive
    with torch.no_grad():
        pulses, state = layer(torch.tensor(drive))
    for b in range(2):                                            # batch ≡ separate runs
        trace = _kernel_run(drive[:, b], kernel, coupling)
        np.testing.assert_array_equal(pulses[:, b].numpy().astype(bool), trace.spikes)
        np.testing.assert_allclose(state.f[b].numpy(), trace.state.f, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state.l[b].numpy(), trace.state.l, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state.e[b].numpy(), trace.state.e, rtol=1e-12, atol=1e-12)
        assert trace.spikes.sum() > 100


def test_surrogate_backward_is_the_sigmoid_derivative():
    """Spec §4.11: the spike's backward equals d/dx sigmoid(alpha x), alpha = 4."""
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    spike(x, surrogate="sigmoid", scale=4.0).sum().backward()
    y = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(4.0 * y).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-14, atol=0)


def test_gradcheck_on_smooth_variant(monkeypatch):
    """With the Heaviside replaced by sigmoid(4x) the layer is smooth: autograd must match
    finite differences through time, linking conv and the parameterisations."""
    # the maths (and its spike) lives in bioplastic.nn.functional.pcnn
    monkeypatch.setattr(functional_pcnn, "spike", lambda x, **kw: torch.sigmoid(4.0 * x))
    # the smooth stand-in exists only in pcnn_step: the module must take its step loop (the
    # fused sequence, whose own gradients tests/test_nn_pcnn_sequence.py checks, has none)
    monkeypatch.setattr(nn_pcnn, "pcnn_sequence_applies", lambda *args: False)
    layer = PCNN(2, coupling="inter", learnable=nn_pcnn.LEARNABLE, dtype=torch.float64)
    x = torch.randn(3, 1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp)[0], (x,))
    names = [name for name, _ in layer.named_parameters()]

    def pulses_of(*values):
        return torch.func.functional_call(layer, dict(zip(names, values, strict=True)),
                                          (x.detach(),))[0]

    values = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    assert torch.autograd.gradcheck(pulses_of, values)


def test_learnable_decays_stay_in_unit_interval():
    layer = PCNN(4, learnable=("decay_f", "decay_l", "decay_e", "beta", "v_l", "v_e"))
    with torch.no_grad():
        for name in ("raw_decay_f", "raw_decay_l", "raw_decay_e"):
            getattr(layer, name).copy_(torch.tensor([-1e3, -30.0, 30.0, 1e3]).reshape(4, 1, 1))
    for name in ("decay_f", "decay_l", "decay_e"):
        value = layer.value(name)
        assert torch.all(value >= 0) and torch.all(value <= 1)
    torch.testing.assert_close(layer.value("decay_f").flatten()[1:3],
                               torch.sigmoid(torch.tensor([-30.0, 30.0])))
    assert torch.all(layer.value("beta") > 0)


def test_gradients_reach_parameters_and_inter_kernel():
    torch.manual_seed(0)
    layer = PCNNConv2d(2, 4, 3, coupling="inter", norm="bn",
                       learnable=("decay_f", "decay_l", "decay_e", "beta"))
    x = (torch.rand(6, 3, 2, 8, 8) < 0.3).float()
    layer(x)[0].mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert layer.neurons.link_weight.grad.abs().sum() > 0
    assert layer.neurons.raw_decay_e.grad.abs().sum() > 0


def test_default_kernels():
    intra = PCNN(3, coupling="intra")
    assert not intra.link_weight.requires_grad                     # fixed classic kernel
    k = nn_pcnn.default_link_kernel(3)
    torch.testing.assert_close(k.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert k[1, 1] == 0 and torch.isclose(k[0, 0] / k[0, 1], torch.tensor(0.5**0.5,
                                                                          dtype=k.dtype))
    inter = PCNN(3, coupling="inter")
    assert inter.link_weight.requires_grad and inter.link_weight.shape == (3, 3, 3, 3)
    diagonal = inter.link_weight.detach()[[0, 1, 2], [0, 1, 2]]
    torch.testing.assert_close(diagonal, k.float().expand(3, 3, 3), atol=0.05, rtol=0)


@pytest.mark.parametrize("norm", [None, "bn", "bn_per_timestep", "tdbn", "rftd"])
def test_conv_layer_norms(norm):
    torch.manual_seed(1)
    layer = PCNNConv2d(1, 4, 3, norm=norm, time_steps=5, coupling="intra")
    out, _ = layer(torch.rand(5, 2, 1, 6, 6))
    assert out.shape == (5, 2, 4, 6, 6)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_rftd_scales_by_linking_gain():
    """RFTD-BN output = per-time-step BN output × e0 / (1 + beta V_L ||K||_1 / 2)."""
    torch.manual_seed(2)
    layer = PCNNConv2d(1, 2, 3, norm="rftd", time_steps=3, coupling="intra", e0=2.0, beta=0.5,
                       v_l=1.0)
    x = torch.rand(3, 4, 1, 5, 5)
    current = layer.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    reference = layer.norm.per_step(current) * 2.0 / (1.0 + 0.5 * 1.0 * 1.0 / 2.0)
    torch.testing.assert_close(layer.drive(x), reference)


def test_resets():
    x = torch.full((3, 1, 1, 1, 1), 2.0, dtype=torch.float64)
    kwargs = dict(coupling="none", learnable=(), decay_f=0.5, decay_e=0.5, v_e=0.0, e0=1.0,
                  dtype=torch.float64)
    _, state = PCNN(1, reset="zero_f", **kwargs)(x[:1])
    assert state.f.item() == 0.0
    _, state = PCNN(1, reset="subtract_f", **kwargs)(x[:1])
    assert state.f.item() == 1.0                                   # 2 - E[0]


def test_state_dict_round_trip():
    torch.manual_seed(3)
    a = PCNNConv2d(1, 3, 3, coupling="inter", norm="rftd", time_steps=4,
                   learnable=nn_pcnn.LEARNABLE)
    b = PCNNConv2d(1, 3, 3, coupling="inter", norm="rftd", time_steps=4,
                   learnable=nn_pcnn.LEARNABLE)
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 2, 1, 6, 6)
    a.eval(), b.eval()
    torch.testing.assert_close(a(x)[0], b(x)[0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(decay_f=1.2), "decay_f"),
    (dict(decay_e=1.0), "decay_e"),                                # learnable: open interval
    (dict(decay_l=-0.1, learnable=()), "decay_l"),
    (dict(kernel_size=4), "odd"),
    (dict(coupling="all"), "coupling"),
    (dict(learnable=("tau",)), "learnable"),
    (dict(reset="hard"), "reset"),
    (dict(v_e=-1.0), "v_e"),
    (dict(link_kernel=torch.ones(5, 5)), "link_kernel"),
    (dict(coupling="none", link_kernel=torch.ones(3, 3)), "link_kernel"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PCNN(2, **kwargs)


def test_bad_inputs():
    layer = PCNN(2)
    with pytest.raises(ValueError, match="finite"):
        layer(torch.full((2, 1, 2, 3, 3), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.zeros(2, 1, 3, 3, 3))
    with pytest.raises(ValueError, match="T, B"):
        layer(torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="norm"):
        PCNNConv2d(1, 2, norm="layer")
    with pytest.raises(ValueError, match="time_steps"):
        PCNNConv2d(1, 2, norm="rftd")
