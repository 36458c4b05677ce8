"""bioplastic.nn.functional.pcnn_sequence: the fused whole-sequence PCNN equals a loop of
pcnn_step — pulses and states bit for bit (float32 and float64), gradients to float64
round-off — and PCNN / PCNNConv2d use it. Both implementations of its per-step elementwise
chains are tested (the ``elementwise`` fixture): the Numba kernels (the CPU default) and the
torch operations (other devices and dtypes, per-neuron parameters, the JIT disabled)."""

import pytest

torch = pytest.importorskip("torch")

import bioplastic.nn.pcnn as nn_pcnn  # noqa: E402
from bioplastic.nn import PCNN, PCNNConv2d  # noqa: E402
from bioplastic.nn.functional import (  # noqa: E402
    PCNNTensorParams,
    PCNNTensorState,
    pcnn_sequence,
    pcnn_sequence_applies,
    pcnn_step,
)
from bioplastic.nn.surrogate import SURROGATES  # noqa: E402

from .torch_loops import force_path  # noqa: E402

# The tolerance of the float64 PCNN state checks in tests/test_nn_pcnn.py (and of the fused
# LIF/STC gradient tests): round-off of a different summation order only.
TOL = dict(rtol=1e-12, atol=1e-12)
COUPLINGS = ("none", "intra", "inter")
RESETS = (None, "subtract_f", "zero_f")


@pytest.fixture(params=["numba", "torch_ops"])
def elementwise(request, monkeypatch):
    """Run pcnn_sequence on one implementation of its elementwise chains and check, at the
    end, that every call took it."""
    import bioplastic.nn.functional.pcnn as pcnn_module

    calls = force_path(monkeypatch, pcnn_module, "_kernel_params", request.param)
    yield request.param
    assert calls and all(used == (request.param == "numba") for used in calls)


def _case(coupling, dtype, *, seed=0, shape=(6, 2, 3, 5, 7), grad=False, silent=False):
    """A drive, initial state, per-map parameters and linking kernel (signed drive and a
    busy initial state, so pulses, resets and surrogate slopes all occur; ``silent``: no
    pulse in the initial state, the rest state's case, where the first linking conv is
    skipped)."""
    gen = torch.Generator().manual_seed(seed)
    t, b, c, h, w = shape

    def rand(*size, low=0.0, high=1.0):
        return (low + (high - low) * torch.rand(size, generator=gen, dtype=torch.float64)
                ).to(dtype).requires_grad_(grad)

    x = (0.3 + 0.6 * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)
    x.requires_grad_(grad)
    y0 = (torch.rand((b, c, h, w), generator=gen) < (0.0 if silent else 0.3)).to(dtype)
    y0.requires_grad_(grad)
    state = PCNNTensorState(rand(b, c, h, w, high=0.5), rand(b, c, h, w, high=0.5),
                            rand(b, c, h, w, low=0.3, high=1.0), y0)
    params = PCNNTensorParams(rand(c, 1, 1, low=0.3, high=0.9), rand(c, 1, 1, low=0.3, high=0.9),
                              rand(c, 1, 1, low=0.5, high=0.9), rand(c, 1, 1, low=0.2, high=1.0),
                              rand(c, 1, 1, low=0.2, high=1.0), rand(c, 1, 1, low=0.1, high=0.7))
    link = {"intra": (c, 1, 3, 3), "inter": (c, c, 3, 3)}.get(coupling)
    link = None if link is None else rand(*link, low=-0.2, high=0.6)
    return x, state, params, link


def _loop(x, state, params, link, **options):
    pulses = []
    for x_t in x:
        y, state = pcnn_step(x_t, state, params, link, **options)
        pulses.append(y)
    return torch.stack(pulses), state


def _loss(pulses, state, seed=5):
    """A loss reading every output (pulses and the whole final state) with random weights."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for tensor in (pulses, *state):
        weights = torch.randn(tensor.shape, generator=gen, dtype=torch.float64)
        total = total + (tensor * weights.to(tensor.dtype)).sum()
    return total


@pytest.mark.parametrize("silent", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_forward_bit_identical_to_step_loop(coupling, reset, dtype, silent, elementwise):
    x, state, params, link = _case(coupling, dtype, seed=1, silent=silent)
    ref_pulses, ref_state = _loop(x, state, params, link, reset=reset)
    pulses, final = pcnn_sequence(x, state, params, link, reset=reset)
    assert torch.equal(pulses, ref_pulses)
    for got, want in zip(final, ref_state, strict=True):
        assert torch.equal(got, want)
    assert 0 < ref_pulses.mean() < 1


@pytest.mark.parametrize("silent", [False, True])
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_gradients_equal_autograd_through_step_loop(surrogate, coupling, reset, silent,
                                                     elementwise):
    options = dict(reset=reset, surrogate=surrogate, surrogate_scale=2.5)
    inputs = _case(coupling, torch.float64, seed=2, grad=True, silent=silent)
    x, state, params, link = inputs
    leaves = [x, *state, *params] + ([] if link is None else [link])
    pulses, final = pcnn_sequence(x, state, params, link, **options)
    assert type(pulses.grad_fn).__name__.startswith("_PCNNSequence")
    got = torch.autograd.grad(_loss(pulses, final), leaves, allow_unused=True)
    ref_pulses, ref_state = _loop(x, state, params, link, **options)
    assert torch.equal(pulses, ref_pulses)
    want = torch.autograd.grad(_loss(ref_pulses, ref_state), leaves, allow_unused=True)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None:            # y0 without a linking kernel: unused either way
            assert g is None or not g.any(), i
            continue
        torch.testing.assert_close(g, w, **TOL, msg=lambda m, i=i: f"input {i}: {m}")
    assert want[0].abs().sum() > 0 and want[5].abs().sum() > 0


def test_partial_gradients_and_no_grad(elementwise):
    """Only some inputs require grad; no_grad gives the same forward."""
    x, state, params, link = _case("inter", torch.float64, seed=3)
    w = link.clone().requires_grad_()
    beta = params.beta.clone().requires_grad_()
    params_g = params._replace(beta=beta)
    pulses, final = pcnn_sequence(x, state, params_g, w, reset="zero_f")
    got = torch.autograd.grad(_loss(pulses, final), (w, beta))
    ref_pulses, ref_state = _loop(x, state, params_g, w, reset="zero_f")
    want = torch.autograd.grad(_loss(ref_pulses, ref_state), (w, beta))
    for g, ref in zip(got, want, strict=True):
        torch.testing.assert_close(g, ref, **TOL)
    with torch.no_grad():
        plain, plain_state = pcnn_sequence(x, state, params, link, reset="zero_f")
    assert torch.equal(plain, pulses) and all(
        torch.equal(a, b) for a, b in zip(plain_state, final, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("coupling", ["intra", "inter"])
def test_conv_layer_run_equals_step_loop(coupling, dtype, elementwise):
    """PCNNConv2d (the bench's layer) through the fused node: pulses, state and every
    parameter gradient as the step loop of its neurons."""
    torch.manual_seed(4)
    layer = PCNNConv2d(3, 4, 3, norm="bn", coupling=coupling, reset="subtract_f",
                       learnable=nn_pcnn.LEARNABLE, dtype=dtype)
    x = (torch.rand(5, 3, 3, 7, 6) < 0.4).to(dtype)
    pulses, state = layer(x)
    assert type(pulses.grad_fn).__name__.startswith("_PCNNSequence")
    names = [name for name, _ in layer.named_parameters()]
    got = torch.autograd.grad(_loss(pulses, state), list(layer.parameters()))
    neurons = layer.neurons
    drive = layer.drive(x)
    ref_pulses, ref_state = _loop(drive, neurons.initial_state(drive[0]),
                                  neurons.step_params(), neurons.link_weight,
                                  reset="subtract_f")
    assert torch.equal(pulses, ref_pulses)
    for a, b in zip(state, ref_state, strict=True):
        assert torch.equal(a, b)
    if dtype == torch.float64:
        want = torch.autograd.grad(_loss(ref_pulses, ref_state), list(layer.parameters()))
        for name, g, w in zip(names, got, want, strict=True):
            torch.testing.assert_close(g, w, **TOL, msg=lambda m, name=name: f"{name}: {m}")


def test_module_falls_back_to_step_loop():
    """Records, or a state of another dtype, take the general loop (same results)."""
    layer = PCNN(2, coupling="intra", dtype=torch.float64)
    x = torch.rand(4, 1, 2, 5, 5, dtype=torch.float64) * 2
    fused = layer.run(x)
    traced = layer.run(x, record=("e",))
    assert torch.equal(fused.spikes, traced.spikes)
    assert traced.records["e"].shape == (4, 1, 2, 5, 5)
    unlinked = PCNN(2, coupling="none", dtype=torch.float64)     # conv2d needs one dtype
    state32 = unlinked.initial_state(x[0], dtype=torch.float32)
    assert not pcnn_sequence_applies(x, state32, unlinked.step_params())
    mixed = unlinked.run(x, state32)                 # promoted to float64 by the step
    assert mixed.spikes.dtype == torch.float64
    assert torch.equal(mixed.spikes, unlinked.run(x).spikes)


def test_refuses_what_it_cannot_run():
    x, state, params, link = _case("intra", torch.float64)
    with pytest.raises(ValueError, match="dtype"):
        pcnn_sequence(x.float(), state, params, link)
    with pytest.raises(ValueError, match="reset"):
        pcnn_sequence(x, state, params, link, reset="zero_u")
    with pytest.raises(ValueError, match="surrogate"):
        pcnn_sequence(x, state, params, link, surrogate="relu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract_f", "zero_f"])
@pytest.mark.parametrize("coupling", ["intra", "inter"])
def test_odd_shapes_and_single_value_parameters(coupling, reset, dtype, elementwise):
    """Odd maps (1 × 9, 5 channels, batch 3) and parameters mixing one value for every map
    (shape ()) with one per map: the same pulses and states, bit for bit, in both dtypes, and
    in float64 the same gradients as autograd through the step loop."""
    grad = dtype == torch.float64
    x, state, params, link = _case(coupling, dtype, seed=6, shape=(7, 3, 5, 1, 9), grad=grad)
    single = {name: getattr(params, name).detach()[0, 0, 0].clone().requires_grad_(grad)
              for name in ("decay_l", "v_e", "beta")}
    params = params._replace(**single)
    assert params.beta.shape == ()
    options = dict(reset=reset, surrogate_scale=3.0)
    pulses, final = pcnn_sequence(x, state, params, link, **options)
    ref_pulses, ref_state = _loop(x, state, params, link, **options)
    assert torch.equal(pulses, ref_pulses) and 0 < ref_pulses.mean() < 1
    for got, want in zip(final, ref_state, strict=True):
        assert torch.equal(got, want)
    if grad:
        leaves = [x, *state, *params, link]
        got = torch.autograd.grad(_loss(pulses, final), leaves)
        want = torch.autograd.grad(_loss(ref_pulses, ref_state), leaves)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            torch.testing.assert_close(g, w, **TOL, msg=lambda m, i=i: f"input {i}: {m}")


def test_per_neuron_parameters_and_disabled_jit_take_the_torch_ops(monkeypatch):
    """The Numba kernels read one value per map: per-neuron parameters (C, H, W) run the torch
    operations, with the step loop's results; so does everything with the JIT disabled."""
    import bioplastic.nn.functional._fused as fused
    import bioplastic.nn.functional.pcnn as pcnn_module

    x, state, params, link = _case("inter", torch.float64, seed=7, grad=True)
    per_neuron = (0.3 + 0.5 * torch.rand(x.shape[2:], dtype=torch.float64)).requires_grad_()
    params = params._replace(decay_f=per_neuron)
    assert pcnn_module._kernel_params(x, state, params, link) is None
    pulses, final = pcnn_sequence(x, state, params, link, reset="subtract_f")
    ref_pulses, ref_state = _loop(x, state, params, link, reset="subtract_f")
    assert torch.equal(pulses, ref_pulses)
    got = torch.autograd.grad(_loss(pulses, final), (x, per_neuron, link))
    want = torch.autograd.grad(_loss(ref_pulses, ref_state), (x, per_neuron, link))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **TOL)
    _, state32, params32, link32 = _case("inter", torch.float32)
    x32 = x.detach().float()
    assert pcnn_module._kernel_params(x32, state32, params32, link32) is not None
    monkeypatch.setattr(fused, "JIT_DISABLED", True)
    assert pcnn_module._kernel_params(x32, state32, params32, link32) is None
