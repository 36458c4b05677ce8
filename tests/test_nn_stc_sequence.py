"""Whole-sequence paths of the STC family (bioplastic.nn.functional.stc): the gate-free
sequences (LIF and PLIF baselines) and the conv cells' run.

The reference is the step loop differentiated by autograd (``stc_step`` / ``plif_fang_step``
in a Python loop, the implementation before the fused paths). Forward: bit for bit.
Gradients in float64: to 1e-12 (summation round-off of chains of a few dozen steps; a wrong
term changes them at O(1)).
"""

import pytest

torch = pytest.importorskip("torch")

from bioplastic.neurons.stc import BASES  # noqa: E402
from bioplastic.nn import LIFConvCell, PLIFConvCell  # noqa: E402
from bioplastic.nn import functional as F  # noqa: E402

from .torch_loops import force_path, step_loop  # noqa: E402

TOL = dict(rtol=1e-12, atol=1e-12)


def _state(shape, h0):
    zeros = torch.zeros(shape, dtype=torch.float64)
    ones = torch.ones_like(zeros)
    return F.STCTensorState(h0, zeros, zeros, ones, ones)


def _params(k_h, k_i):
    one = torch.ones((), dtype=torch.float64)
    return F.STCTensorParams(BASES["plif"], one, k_h, k_i, one * 0, one * 0, one, one)


@pytest.mark.parametrize("form", ["stc", "fang"])
def test_gate_free_sequence_equals_the_step_loop(form):
    g = torch.Generator().manual_seed(7)
    shape = (3, 4, 5)
    current = torch.rand((30,) + shape, generator=g, dtype=torch.float64) * 2.2 - 0.3
    weights = torch.randn((30,) + shape, generator=g, dtype=torch.float64)
    h_init = torch.rand(shape, generator=g, dtype=torch.float64)
    results = []
    for fused in (False, True):
        w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        cur = current.clone().requires_grad_(True)
        h0 = h_init.clone().requires_grad_(True)
        state = _state(shape, h0)
        if form == "stc":
            params = _params(torch.sigmoid(w), 1.0 - w)
            if fused:
                spikes, final = F.stc_sequence(cur, state, params)
            else:
                spikes, final = step_loop(lambda c, st, p=params: F.stc_step(c, st, p), cur, state)
        elif fused:
            spikes, final = F.plif_fang_sequence(cur, state, w)
        else:
            spikes, final = step_loop(lambda c, st, w=w: F.plif_fang_step(c, st, w), cur,
                                      state)
        ((spikes * weights).sum() + (final.h ** 2).sum() * 0.1
         + (final.s * 0.5).sum()).backward()
        results.append((spikes.detach(), final.h.detach(), cur.grad, h0.grad, w.grad))
    (s_ref, h_ref, *g_ref), (s_got, h_got, *g_got) = results
    assert 0.1 < float(s_ref.mean()) < 0.7
    torch.testing.assert_close(s_got, s_ref, rtol=0, atol=0)
    torch.testing.assert_close(h_got, h_ref, rtol=0, atol=0)
    assert g_ref[0].abs().max() > 0.1 and g_ref[2].abs() > 1e-3
    for got, ref in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(got, ref, **TOL)


@pytest.mark.parametrize("make", [lambda: LIFConvCell(2, 8, 3, groups=4, dtype=torch.float64),
                                  lambda: PLIFConvCell(2, 8, 3, groups=4, dtype=torch.float64),
                                  lambda: PLIFConvCell(2, 8, 3, groups=4, form="fang2021",
                                                       dtype=torch.float64)])
def test_cell_run_gradients_equal_the_step_loop(make):
    torch.manual_seed(3)
    cell = make()
    x = torch.rand(7, 2, 2, 6, 6, dtype=torch.float64) * 3
    grads = []
    for fused in (True, False):
        cell.zero_grad()
        if fused:
            spikes, _ = cell(x)
            assert type(spikes.grad_fn).__name__ == "_SoftResetSequenceBackward"
        else:
            spikes, _ = step_loop(cell.step, x)
        spikes.sum().backward()
        grads.append({n: p.grad.clone() for n, p in cell.named_parameters()})
    assert grads[1]["conv_x.weight"].abs().sum() > 0
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], **TOL)


def test_no_grad_path_equals_the_training_path():
    cell = PLIFConvCell(1, 4, 3, groups=2, dtype=torch.float64)
    x = torch.rand(5, 2, 1, 5, 5, dtype=torch.float64) * 3
    with torch.no_grad():
        a, sa = cell(x)
    b, sb = cell(x)
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    torch.testing.assert_close(sa.h, sb.h.detach(), rtol=0, atol=0)


def test_lmh_is_refused():
    one = torch.ones(())
    params = F.STCTensorParams(BASES["lmh"], one, one, one, one, one, one, one)
    with pytest.raises(ValueError, match="LM-H needs the step loop"):
        F.stc_sequence(torch.zeros(2, 3), _state((3,), torch.zeros(3)), params)


@pytest.fixture(params=["numba", "torch_ops"])
def elementwise(request, monkeypatch):
    """Both implementations of stc_conv_sequence's per-step elementwise chains: the Numba
    kernels (the CPU default) and the torch ops (off the CPU, or with the JIT disabled)."""
    import bioplastic.nn.functional.stc as stc_module

    calls = force_path(monkeypatch, stc_module, "_kernel_constants", request.param)
    yield request.param
    assert calls and all(used == (request.param == "numba") for used in calls)


@pytest.mark.parametrize("base", ["lif", "plif"])
@pytest.mark.parametrize("norm", ["group", None])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("tanh", ["sigmoid", "torch"])
@pytest.mark.parametrize("start", ["silent", "spiking"])
def test_stc_conv_cell_run_equals_the_step_loop_with_gradients(base, norm, detach, tanh, start,
                                                               elementwise):
    # "silent": S[-1] = 0, whose first gate conv the sequence skips; "spiking": S[-1] given
    # (and differentiated), so the first conv runs
    from bioplastic.nn import STCConvCell

    torch.manual_seed(11)
    cell = STCConvCell(3, 8, 3, groups=2, norm=norm, base=base, gradient_detach=detach,
                       tanh=tanh, dtype=torch.float64)
    with torch.no_grad():
        for p in cell.parameters():                 # every parameter away from its init
            p.add_(torch.randn_like(p) * 0.3)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(9, 2, 3, 5, 5, generator=g, dtype=torch.float64) * 2
    weights = torch.randn(9, 2, 8, 5, 5, generator=g, dtype=torch.float64)
    h_init = torch.rand(2, 8, 5, 5, generator=g, dtype=torch.float64)
    s_init = (torch.rand(2, 8, 5, 5, generator=g, dtype=torch.float64) < 0.4).double()
    results = []
    for fused in (True, False):
        cell.zero_grad()
        xi = x.clone().requires_grad_(True)
        h0 = h_init.clone().requires_grad_(True)
        state = cell.initial_state(x[0])._replace(h=h0)
        if start == "spiking":
            s0 = s_init.clone().requires_grad_(True)
            state = state._replace(s=s0)
        spikes, final = cell(xi, state) if fused else step_loop(cell.step, xi, state)
        if fused:
            assert type(spikes.grad_fn).__name__ == "_STCConvSequenceBackward"
        ((spikes * weights).sum() + (final.h ** 2).sum() * 0.1 + final.alpha.sum()
         + final.beta.sum() * 0.5).backward()
        grads = {n: p.grad.clone() for n, p in cell.named_parameters()}
        if start == "spiking" and not detach:
            grads["s0"] = s0.grad.clone()
        results.append((spikes.detach(), final.h.detach(), xi.grad, h0.grad, grads))
    (s_a, h_a, gx_a, gh_a, gp_a), (s_b, h_b, gx_b, gh_b, gp_b) = results
    assert 0.05 < float(s_b.mean()) < 0.8
    torch.testing.assert_close(s_a, s_b, rtol=0, atol=0)
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=0)
    assert gp_b["conv_h.weight"].abs().sum() > 0
    for name, a, b in [("x", gx_a, gx_b), ("h0", gh_a, gh_b)] + [(n, gp_a[n], gp_b[n])
                                                               for n in gp_b]:
        torch.testing.assert_close(a, b, **_tolerance(start, b), msg=name)


def _tolerance(start, reference):
    """TOL; with spikes before the sequence the gradients reach ~1e5 (gates above 1 amplify
    them over the steps) and an element near 0 can come out of the cancellation of such terms,
    so there the absolute part is the same 1e-12 relative to the gradient's largest element
    (float64 round-off; a wrong term is off by O(1) of it)."""
    if start == "silent":
        return TOL
    return dict(rtol=TOL["rtol"], atol=TOL["atol"] * max(1.0, float(reference.abs().max())))


@pytest.mark.parametrize("base", ["lif", "plif"])
@pytest.mark.parametrize("tanh", ["sigmoid", "torch"])
def test_stc_conv_cell_float32_odd_shape_is_bit_identical_to_the_step_loop(base, tanh,
                                                                           elementwise):
    # 72 elements per gate half: torch computes the tail of its tanh / sigmoid with the scalar
    # libm function, so the fused path must take it over the same tensors as the step
    from bioplastic.nn import STCConvCell

    torch.manual_seed(5)
    cell = STCConvCell(2, 8, 3, groups=2, base=base, tanh=tanh)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    x = torch.rand(25, 1, 2, 3, 3, generator=torch.Generator().manual_seed(6)) * 3
    spikes, final = cell(x)
    ref, ref_state = step_loop(cell.step, x)
    assert 0.05 < float(ref.detach().mean()) < 0.9
    torch.testing.assert_close(spikes, ref, rtol=0, atol=0)
    torch.testing.assert_close(final.h, ref_state.h, rtol=0, atol=0)
    torch.testing.assert_close(final.alpha, ref_state.alpha, rtol=0, atol=0)


# ------------------------------------------------------ strided (channels-last) input
def _channels_last_view(shape, seed):
    """A ``(T, B, C, H, W)`` view of a ``(T, B, H, W, C)`` tensor (frames from a NumPy video
    file, permuted): not contiguous."""
    t, b, c, h, w = shape
    x = torch.rand((t, b, h, w, c), generator=torch.Generator().manual_seed(seed)) * 3
    x = x.permute(0, 1, 4, 2, 3)
    assert not x.is_contiguous()
    return x


def _run_with_gradients(module, x):
    """Spikes, final state and the gradients to ``x`` and every parameter of a weighted loss."""
    x = x.detach().requires_grad_(True)
    spikes, state = module(x)
    weights = torch.linspace(-1, 1, spikes.numel()).view(spikes.shape)
    ((spikes * weights).sum() + (state[0] ** 2).sum()).backward()
    grads = [x.grad] + [p.grad for p in module.parameters()]
    return spikes.detach(), [t.detach() for t in state if t is not None], grads


def _modules():
    from bioplastic.nn import CELLS, PCNN, PCNNConv2d

    made = {name: lambda cls=cls: cls(4, 8, 3, groups=2) for name, cls in CELLS.items()}
    made["pcnn"] = lambda: PCNN(4)
    made["pcnn_conv"] = lambda: PCNNConv2d(4, 8, 3)
    return made


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_cell_gives_the_same_for_a_channels_last_view(name):
    # the whole-sequence paths' Numba kernels write into NumPy views of torch buffers; a
    # buffer allocated like strided input was handed over as a copy and the writes were lost
    # (wrong spikes, states and gradients); a channels-last convolution also rounds otherwise
    x = _channels_last_view((5, 2, 4, 6, 6), seed=3)
    results = []
    for inp in (x, x.contiguous()):
        torch.manual_seed(1)
        results.append(_run_with_gradients(_modules()[name](), inp))
    (s_a, st_a, g_a), (s_b, st_b, g_b) = results
    assert 0.02 < float(s_b.mean()) < 0.9
    assert torch.equal(s_a, s_b)
    for a, b in zip(st_a + g_a, st_b + g_b, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)


def test_sequence_functions_take_strided_currents(elementwise):
    # the functional paths themselves (not only the cells, which pass contiguous currents)
    from bioplastic.nn import STCLIF
    from bioplastic.nn.functional import pcnn_sequence
    from bioplastic.nn.pcnn import PCNN

    torch.manual_seed(4)
    cell = STCLIF(4, 8, 3, groups=2)
    currents = _channels_last_view((6, 2, 8, 5, 5), seed=5)
    state = cell.initial_state(currents[0])
    out = [cell.sequence(c, state, cell.step_params())      # stc_conv_sequence
           for c in (currents, currents.contiguous())]
    assert 0.02 < float(out[1][0].detach().mean()) < 0.9
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1].h, out[1][1].h)
    layer = PCNN(8)
    pcnn_state = layer.initial_state(currents[0])
    out = [pcnn_sequence(c, pcnn_state, layer.step_params(), layer.link_weight)
           for c in (currents, currents.contiguous())]
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1].f, out[1][1].f)


def test_a_kernel_output_buffer_is_never_a_copy():
    from bioplastic.nn.functional._fused import as_array

    strided = torch.zeros(4, 6).t()
    assert as_array(strided, (24,)).shape == (24,)         # an input may be copied
    with pytest.raises(RuntimeError, match="must be a contiguous tensor"):
        as_array(strided, (24,), write=True)
    buffer = torch.zeros(4, 6)
    as_array(buffer, (24,), write=True)[:] = 1.0            # a view: the writes land
    assert bool((buffer == 1.0).all())
