"""The spiking-module contract of bioplastic.nn (base.py) and the functional steps.

Every model: ``run`` ≡ a Python loop of ``step``; ``forward`` returns ``(spikes, state)``;
integer input is refused; ``repr`` shows the parameters; the functional step takes the
kernel's own ``*Params`` and equals the Numba kernel in float64.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import bioplastic as bp  # noqa: E402
from bioplastic.neurons.pcnn import PCNNParams, run_pcnn  # noqa: E402
from bioplastic.nn import (  # noqa: E402
    CELLS,
    LIF,
    PCNN,
    STCLIF,
    HebbianConv2d,
    HebbianLinear,
    PCNNConv2d,
    PLIFConvCell,
    SpikingModule,
    SpikingPredictor,
    STCDense,
)
from bioplastic.nn import functional as F  # noqa: E402

MODELS = {
    "lif": (lambda: LIF(theta_plus_mv=0.5, dtype=torch.float64),
            lambda g: 20 + 10 * torch.rand(200, 3, 4, generator=g, dtype=torch.float64)),
    "lif_recurrent": (lambda: LIF(n_recurrent=4, t_ref_ms=0.0, dtype=torch.float64),
                      lambda g: 20 + 10 * torch.rand(200, 3, 4, generator=g,
                                                     dtype=torch.float64)),
    "pcnn": (lambda: PCNN(2, coupling="inter", seed=1, dtype=torch.float64),
             lambda g: torch.rand(12, 2, 2, 5, 5, generator=g, dtype=torch.float64)),
}


def _recurrent(module):
    if getattr(module, "n_recurrent", None):
        with torch.no_grad():
            module.recurrent_weight.copy_(torch.randn(4, 4, generator=torch.Generator()
                                                      .manual_seed(5), dtype=torch.float64))
    return module


@pytest.mark.parametrize("model", sorted(MODELS))
def test_run_equals_a_loop_of_step(model):
    make, inputs = MODELS[model]
    module = _recurrent(make())
    x = inputs(torch.Generator().manual_seed(0))
    assert isinstance(module, SpikingModule)
    spikes, final = module(x)
    state, steps = None, []
    for x_t in x:
        s, state = module.step(x_t, state)
        steps.append(s)
    assert spikes.sum() > 0
    torch.testing.assert_close(spikes, torch.stack(steps), rtol=0, atol=0)
    for a, b in zip(final, state, strict=True):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_state_carries_over_between_calls(model):
    # Two halves with the state passed along ≡ one call: nothing hides on the module.
    make, inputs = MODELS[model]
    module = _recurrent(make())
    x = inputs(torch.Generator().manual_seed(1))
    whole, _ = module(x)
    first, state = module(x[:7])
    second, _ = module(x[7:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=0)
    torch.testing.assert_close(module(x)[0], whole, rtol=0, atol=0)   # no memory of calls


@pytest.mark.parametrize("model", sorted(MODELS))
def test_integer_input_is_a_type_error(model):
    make, inputs = MODELS[model]
    x = inputs(torch.Generator().manual_seed(2)).long()
    with pytest.raises(TypeError, match="floating-point"):
        make()(x)
    with pytest.raises(TypeError, match="floating-point"):
        make().step(x[0])


def test_record_stacks_only_what_is_asked():
    module = LIF(theta_plus_mv=0.5, dtype=torch.float64)
    x = 25 + torch.zeros(30, 2, 3, dtype=torch.float64)
    trace = module.run(x, record=("v", "theta"))
    assert set(trace.records) == {"v", "theta"} and trace["v"].shape == (30, 2, 3)
    torch.testing.assert_close(trace["v"][-1], trace.state.v, rtol=0, atol=0)
    assert module.run(x).records == {}
    with pytest.raises(ValueError, match="record"):
        module.run(x, record=("u",))
    with pytest.raises(ValueError, match="switched off"):
        LIF(dtype=torch.float64).run(x, record=("theta",))    # theta_plus = 0: no theta


def test_switched_off_work_gives_the_same_numbers():
    # t_ref = 0 and theta_plus = 0 skip the refractory mask and the adaptation (state fields
    # None); forcing them on (a state with both fields) must not change a bit.
    module = LIF(t_ref_ms=0.0, dtype=torch.float64)
    x = 25 + 5 * torch.rand(300, 2, 3, generator=torch.Generator().manual_seed(3),
                            dtype=torch.float64)
    lean_spikes, lean = module(x)
    assert lean.theta is None and lean.since_spike is None
    p = F.lif_prepare(bp.LIFParams(t_ref_ms=0.1, theta_plus_mv=1e-300))._replace(
        ref_steps=torch.zeros((), dtype=torch.int64), theta_plus=torch.zeros((),
                                                                              dtype=torch.float64))
    state = F.lif_initial_state((2, 3), p)
    spikes = []
    for x_t in x:
        s, state = F.lif_step(x_t, state, p)
        spikes.append(s)
    assert lean_spikes.sum() > 10
    torch.testing.assert_close(torch.stack(spikes), lean_spikes, rtol=0, atol=0)
    torch.testing.assert_close(state.v, lean.v, rtol=0, atol=0)


def test_functional_lif_with_the_kernels_defaults_is_bit_identical(rng):
    # LIFParams() itself (t_ref 2 ms): the functional step prepares it on the fly.
    n, n_steps = 30, 300
    drive = rng.uniform(14, 30, n) + rng.normal(0, 2, (n_steps, n))
    kernel = bp.run_lif(drive, bp.LIFParams(), record=("v",))
    state = F.lif_initial_state((n,), F.lif_prepare(bp.LIFParams()))
    spikes, v = [], []
    for x_t in torch.tensor(drive):
        s, state = F.lif_step(x_t, state, bp.LIFParams())
        spikes.append(s)
        v.append(state.v)
    assert kernel.spikes.sum() > 20          # enough resets and refractory periods to matter
    np.testing.assert_array_equal(torch.stack(spikes).numpy().astype(bool), kernel.spikes)
    np.testing.assert_array_equal(torch.stack(v).numpy(), kernel["v"])


def test_functional_pcnn_takes_the_kernels_params():
    # A kernel PCNNParams with the torch step's restrictions (v_f = 0, decay_u = 0).
    rng = np.random.default_rng(4)
    kernel = rng.uniform(0, 1, (2, 1, 3, 3))
    params = PCNNParams(v_f=0.0, linking_kernel=kernel, coupling="intra")
    drive = rng.uniform(0, 1, (30, 2, 6, 6))
    trace = run_pcnn(drive, params, record=("e",))
    state = F.pcnn_initial_state((1, 2, 6, 6), params.e0, dtype=torch.float64)
    pulses = []
    for x_t in torch.tensor(drive)[:, None]:
        y, state = F.pcnn_step(x_t, state, params)
        pulses.append(y[0])
    assert trace.spikes.sum() > 50
    np.testing.assert_array_equal(torch.stack(pulses).numpy().astype(bool), trace.spikes)
    np.testing.assert_allclose(state.e[0].numpy(), trace.state.e, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="v_f"):
        F.pcnn_prepare(PCNNParams(), 2)                  # Zhan's demo has feeding coupling


def test_defaults_come_from_the_kernel_params():
    # Time constants are read back from float32 decays d: one ulp of d (6e-8) over
    # |ln d| = dt/tau = 1e-3 (tau_theta = 100 ms) is a relative 6e-5 on tau.
    got, expected = LIF().params, bp.LIFParams()
    for name in expected._fields:
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-4,
                                   err_msg=name)
    assert got.t_ref_ms == 2.0                                 # LIFParams' default
    layer = PCNN(2, learnable=())
    for name in ("decay_f", "decay_l", "decay_e", "v_l", "v_e", "beta"):
        value = getattr(F.DPCNN_INIT, name)
        torch.testing.assert_close(layer.value(name), torch.full((2, 1, 1), value))


def test_repr_shows_parameters():
    text = repr(LIF(tau_m_ms=5.0))
    assert "tau_m_ms=5" in text and "v_th_mv=-50" in text and "t_ref_ms=2" in text
    text = repr(PCNN(3, coupling="inter", seed=0))
    assert "coupling='inter'" in text and "decay_f=0.5" in text and "e0=1" in text


def test_pcnn_seed_decides_the_inter_kernel():
    a, b = PCNN(3, coupling="inter", seed=7), PCNN(3, coupling="inter", seed=7)
    torch.testing.assert_close(a.link_weight, b.link_weight, rtol=0, atol=0)
    g = torch.Generator().manual_seed(7)
    torch.testing.assert_close(PCNN(3, coupling="inter", seed=g).link_weight, a.link_weight,
                               rtol=0, atol=0)
    assert not torch.equal(PCNN(3, coupling="inter", seed=8).link_weight, a.link_weight)
    with pytest.raises(TypeError, match="seed"):
        PCNN(3, coupling="inter", seed=1.5)


def test_unitless_preset_integrates_like_beta():
    module = LIF.from_beta(0.9, threshold=1.0, dtype=torch.float64)
    x = torch.full((1, 1), 0.5, dtype=torch.float64)
    trace = module.run(x[None].expand(3, 1, 1), record=("v",))
    v, expected = trace["v"][:, 0, 0], []
    u = 0.0
    for _ in range(3):
        u = 0.9 * u + 0.1 * 0.5                      # snnTorch beta with input (1 - beta) x
        expected.append(u)
    torch.testing.assert_close(v, torch.tensor(expected, dtype=torch.float64), rtol=1e-14,
                               atol=1e-15)
    assert module.params.t_ref_ms == 0.0 and module.params.v_reset_mv == 0.0


WEIGHTED = {
    # (module, input of the wrong dtype, how it is called); each module holds float32 weights
    "stc_lif": (lambda: STCLIF(3, 16, 3), (2, 1, 3, 6, 6), lambda m, x: m(x)),
    "plif_cell_step": (lambda: PLIFConvCell(3, 16, 3), (1, 3, 6, 6), lambda m, x: m.step(x)),
    "pcnn_conv": (lambda: PCNNConv2d(3, 4, 3), (2, 1, 3, 6, 6), lambda m, x: m(x)),
    "hebbian_conv": (lambda: HebbianConv2d(3, 4, 3), (2, 3, 6, 6), lambda m, x: m(x)),
    "hebbian_linear": (lambda: HebbianLinear(5, 4), (2, 5), lambda m, x: m(x)),
    "predictor": (lambda: SpikingPredictor(1, (16,), groups=4), (4, 1, 1, 8, 8),
                  lambda m, x: m(x, 2)),
}


@pytest.mark.parametrize("name", sorted(WEIGHTED))
def test_input_of_another_dtype_than_the_weights_names_the_argument(name):
    # Before: torch's RuntimeError "expected scalar type Double but found Float" (or
    # "expected m1 and m2 to have the same dtype"), naming neither the argument nor the fix.
    make, shape, call = WEIGHTED[name]
    module, x = make(), torch.rand(shape, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"(x|frames) must have the dtype .* torch\.float32, "
                                        r"got torch\.float64"):
        call(module, x)
    call(module, x.float())          # the same input in the weights' dtype runs


def test_pcnn_state_that_would_broadcast_into_the_linking_conv_is_refused():
    # Before: Y of shape (C, 1, 1) was taken by conv2d as one unbatched 1×1 image, whose
    # linking input then broadcast over the map: the run went on and its pulses differed
    # from those of the same Y expanded to (B, C, H, W) (94 of the 864 pulse values here).
    layer = PCNN(3, coupling="inter", seed=0)
    x = torch.rand(4, 2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    rest = layer.initial_state(x[0])
    with pytest.raises(ValueError, match=r"state\.y must have the step's state shape "
                                         r"\(2, 3, 6, 6\), got \(3, 1, 1\)"):
        layer(x, rest._replace(y=torch.ones(3, 1, 1)))
    layer(x, rest._replace(y=torch.ones(2, 3, 6, 6)))


@pytest.mark.parametrize("path", ["run", "step"])
def test_a_state_of_another_batch_dtype_or_kind_is_named(path):
    # Before: torch's RuntimeError ("The size of tensor a (4) must match ..."), an
    # AttributeError for a plain tuple, or a dtype RuntimeError inside the gate convolution.
    cell = STCLIF(3, 16, 3)
    x = torch.rand(3, 2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    call = (lambda s: cell(x, s)) if path == "run" else (lambda s: cell.step(x[0], s))
    rest = cell.initial_state(x[0])
    with pytest.raises(ValueError, match=r"state\.h must have the step's state shape "
                                         r"\(2, 16, 6, 6\) or a shape that broadcasts"):
        call(cell.initial_state(torch.rand(4, 3, 6, 6)))
    with pytest.raises(TypeError, match="state must be a STCTensorState"):
        call(tuple(rest))
    with pytest.raises(TypeError, match=r"state\.h must have dtype torch\.float32"):
        call(cell.initial_state(x[0].double()))
    with pytest.raises(ValueError, match=r"state\.s must have the step's state shape"):
        call(rest._replace(s=torch.zeros(16, 1, 1)))       # feeds the gate convolution
    call(rest._replace(h=torch.zeros(16, 1, 1)))            # broadcasts: accepted


def test_switched_off_fields_and_broadcast_initial_membranes():
    adapting = LIF(theta_plus_mv=0.5, t_ref_ms=1.0)
    plain = LIF()
    x = 20 + 10 * torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match=r"state\.theta must be None \(switched off"):
        plain(x, adapting.initial_state(x[0]))
    with pytest.raises(ValueError, match=r"state\.theta must be a tensor"):
        adapting(x, plain.initial_state(x[0]))
    # a learned initial membrane (n,) broadcast over the batch is still a valid state
    v0 = torch.full((4,), -60.0, requires_grad=True)
    spikes, _ = plain(x, plain.initial_state(x[0])._replace(v=v0))
    spikes.sum().backward()
    assert v0.grad is not None and v0.grad.shape == (4,)


EVERY_MODULE = {
    # (module, one step of input (B, ...)); B = 2 everywhere
    "lif": (lambda: LIF(t_ref_ms=1.0, theta_plus_mv=0.2), (2, 5)),
    "pcnn": (lambda: PCNN(3, coupling="inter", seed=0), (2, 3, 6, 6)),
    "stc_dense": (lambda: STCDense(5), (2, 5)),
    **{f"cell_{name}": (lambda cls=cls: cls(3, 16, 3), (2, 3, 6, 6))
       for name, cls in CELLS.items()},
}


@pytest.mark.parametrize("name", sorted(EVERY_MODULE))
def test_every_module_checks_a_state_passed_back_in(name):
    make, shape = EVERY_MODULE[name]
    module = make()
    dtype = torch.float64 if name == "stc_dense" else torch.float32
    x_t = torch.rand(shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    x = torch.stack([x_t, x_t])
    rest = module.initial_state(x_t)
    module.step(x_t, rest)                                     # its own state: accepted
    module(x, rest)
    wider = module.initial_state(torch.cat([x_t, x_t]))        # a batch of 4
    for call in (lambda s: module.step(x_t, s), lambda s: module(x, s)):
        with pytest.raises(ValueError, match=r"state\.\w+ must have the step's state shape"):
            call(wider)
        with pytest.raises(TypeError, match=f"state must be a {type(rest).__name__}"):
            call(tuple(rest))


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("name", sorted(EVERY_MODULE))
def test_run_checks_the_input_and_state_once_on_every_path(name, record, monkeypatch):
    # the whole-sequence paths fall back to the step loop (records, refractory LIF, a
    # broadcast PCNN state); before _prepare_run the fallback ran every check a second time
    make, shape = EVERY_MODULE[name]
    module = make()
    dtype = torch.float64 if name == "stc_dense" else torch.float32
    x = torch.rand((3, *shape), generator=torch.Generator().manual_seed(4), dtype=dtype)
    calls = []
    for method in ("_check_sequence", "check_step", "start_state"):
        original = getattr(module, method)
        monkeypatch.setattr(module, method,
                            lambda *a, _f=original, _m=method, **k: calls.append(_m) or _f(*a, **k))
    state = module.initial_state(x[0])
    module.run(x, record=state._fields[:1] if record else ())
    if name == "pcnn":   # a membrane shared by the batch: PCNN's step loop, not its sequence
        calls.clear()
        module.run(x, state._replace(f=state.f[:1]))
    assert sorted(calls) == ["_check_sequence", "check_step", "start_state"]
