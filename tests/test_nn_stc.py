"""Torch STC cells and baselines (bioplastic.nn.stc, bioplastic.nn.functional.stc)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bioplastic.neurons.stc import STCParams, run_stc, sigmoid  # noqa: E402
from bioplastic.nn import (  # noqa: E402
    CELLS,
    STCLIF,
    STCLMH,
    STCPLIF,
    LIFConvCell,
    LMHConvCell,
    PLIFConvCell,
    STCDense,
)
from bioplastic.nn.functional import stc as F  # noqa: E402
from bioplastic.nn.functional.stc import fire  # noqa: E402

from .torch_loops import step_loop  # noqa: E402

LMH = dict(lmh_d_u=0.3, lmh_s_u=-0.4, lmh_d_p=0.2, lmh_s_p=-0.1)


@pytest.mark.parametrize("base", ["lif", "plif", "lmh"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_torch_equals_numba_kernel_bit_for_bit(base, seed):
    # docs/stc.md: float64 dense path = the Numba kernel, 3 seeds; batch of 2 = 2 kernel runs
    rng = np.random.default_rng(seed)
    n, n_steps = 10, 80
    w_h = rng.normal(0, 1, (n, n)) * (rng.random((n, n)) < 0.6)
    w_v = rng.normal(0, 1, (n, n)) * (rng.random((n, n)) < 0.6)
    current = rng.uniform(-0.2, 1.6, (n_steps, 2, n))
    extra = dict(plif_w=0.4) if base == "plif" else (LMH if base == "lmh" else {})
    params = STCParams(base=base, bias_h=rng.uniform(-0.3, 0.3, n), bias_v=-0.1, **extra)
    layer = STCDense(n, params).set_modulators(w_h, w_v)
    trace = layer.run(torch.from_numpy(current), record=("h", "alpha", "beta"))
    for b in range(2):
        ref = run_stc(current[:, b], params, w_h=w_h, w_v=w_v, record=("h", "alpha", "beta"))
        assert ref.spikes.any()
        np.testing.assert_array_equal(trace.spikes[:, b].detach().numpy() > 0.5, ref.spikes)
        for name in ("h", "alpha", "beta"):
            np.testing.assert_array_equal(trace[name][:, b].detach().numpy(), ref[name])


def test_fire_forward_at_zero_and_sigmoid_surrogate():
    # hand-derived (docs/stc.md): fires at x = 0 exactly; backward 4 σ(4x)(1 − σ(4x))
    x = torch.tensor([-1e-300, 0.0, 1e-300, -0.7, 2.0], dtype=torch.float64)
    np.testing.assert_array_equal(fire(x).numpy(), [0.0, 1.0, 1.0, 0.0, 1.0])
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    fire(x).sum().backward()
    s = 1 / (1 + np.exp(-4 * x.detach().numpy()))
    np.testing.assert_allclose(x.grad.numpy(), 4 * s * (1 - s), rtol=1e-14)


def test_gradient_factor_is_alpha_times_reset_term():
    # docs/stc.md: with gradient_detach, dH[t]/dH[t-1] = alpha[t] (1 - fire'(H_s[t] - 1))
    torch.manual_seed(0)
    cell = STCLIF(1, 16, 3, groups=4, gradient_detach=True, dtype=torch.float64)
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    state = cell.initial_state(x)
    state = state._replace(h=torch.rand_like(state.h).requires_grad_(True),
                           s=(torch.rand_like(state.s) < 0.3).double())
    spikes, new = cell.step(x, state)
    (grad,) = torch.autograd.grad(new.h.sum(), state.h)
    with torch.no_grad():
        h_s = new.h + spikes        # H_s = H + v_th S (v_th = 1)
        sg = torch.sigmoid(4 * (h_s - 1))
        expected = new.alpha * (1 - 4 * sg * (1 - sg))
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)
    assert (new.alpha != 1).any()   # the gates are really in play


def _identity_front_end(cell):
    """1×1 conv with weight 1 (current = input on every channel), modulators zeroed."""
    with torch.no_grad():
        cell.conv_x.weight.fill_(1.0)
        for name in ("conv_h", "conv_v"):
            if hasattr(cell, name):
                getattr(cell, name).weight.zero_()
    return cell


def test_stc_lif_with_zero_modulators_is_if_with_soft_reset():
    # by hand: I = 1/4 spikes at t = 4, 8, 12, ...; I = 3/8 at 3, 6, 8, 11, 14, 16
    cell = _identity_front_end(STCLIF(1, 2, 1, groups=1, norm=None, dtype=torch.float64))
    x = torch.empty(32, 1, 1, 1, 2, dtype=torch.float64)
    x[..., 0], x[..., 1] = 0.25, 0.375
    spikes, _ = cell(x)
    s = spikes[:, 0, 0, 0].detach().numpy()                         # (T, 2)
    np.testing.assert_array_equal(np.flatnonzero(s[:, 0])[:4] + 1, [4, 8, 12, 16])
    np.testing.assert_array_equal(np.flatnonzero(s[:, 1])[:6] + 1, [3, 6, 8, 11, 14, 16])


def test_stc_plif_zero_modulators_is_corrected_plif_not_code_plif():
    # hand-derived (docs/stc.md): input gain 1 - sigma(w) = 0.5 at w = 0 (code PLIF: 1 - w = 1.0)
    x = torch.rand(20, 2, 1, 3, 3, dtype=torch.float64) * 2
    stc = _identity_front_end(STCPLIF(1, 1, 1, groups=1, norm=None, dtype=torch.float64))
    code = _identity_front_end(PLIFConvCell(1, 1, 1, groups=1, norm=None,
                                            dtype=torch.float64))
    trace = stc.run(x, record=("h",))
    h, spikes = torch.zeros(2, 1, 3, 3, dtype=torch.float64), []
    for x_t in x:
        h = 0.5 * h + 0.5 * x_t
        s = (h >= 1.0).double()
        h = h - s
        spikes.append(s)
    torch.testing.assert_close(trace.spikes, torch.stack(spikes), rtol=0, atol=0)
    torch.testing.assert_close(trace.state.h.detach(), h, rtol=0, atol=0)
    assert not torch.equal(code(x)[0], trace.spikes)


def test_stc_lmh_zero_modulators_is_lmh():
    # docs/stc.md: with zero modulators STC-LMH is LM-H
    torch.manual_seed(3)
    stc = STCLMH(1, 16, 3, groups=4, dtype=torch.float64)
    lmh = LMHConvCell(1, 16, 3, groups=4, dtype=torch.float64)
    with torch.no_grad():
        lmh.conv_x.weight.copy_(stc.conv_x.weight)
        stc.lmh.copy_(torch.tensor([0.3, -0.4, 0.2, -0.1]))
        lmh.lmh.copy_(stc.lmh)
        stc.conv_h.weight.zero_()
        stc.conv_v.weight.zero_()
    x = torch.rand(15, 2, 1, 5, 5, dtype=torch.float64)
    a, b = stc.run(x, record=("h", "d")), lmh.run(x, record=("h", "d"))
    assert a.spikes.any()
    for key in ("h", "d"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    torch.testing.assert_close(a.spikes, b.spikes, rtol=0, atol=0)


def test_lif_baseline_analytic_first_spike():
    # by hand: H_s[t] = c (1 - 0.5^t) until the first spike; never fires for c <= 1
    cell = _identity_front_end(LIFConvCell(1, 1, 1, groups=1, norm=None, dtype=torch.float64))
    c = torch.tensor([0.9, 1.0, 1.2, 3.0], dtype=torch.float64).reshape(1, 1, 1, 4)
    spikes, _ = cell(c.expand(30, 1, 1, 1, 4).contiguous())
    s = spikes[:, 0, 0, 0].detach().numpy()
    assert not s[:, 0].any() and not s[:, 1].any()
    for k, value in ((2, 1.2), (3, 3.0)):
        t = np.arange(1, 31)
        first = t[value * (1 - 0.5 ** t) >= 1][0]        # 1.2: t = 3; 3.0: t = 1
        assert np.flatnonzero(s[:, k])[0] + 1 == first


@pytest.mark.parametrize("name", sorted(CELLS))
def test_run_equals_step_loop_and_backward(name):
    torch.manual_seed(1)
    cell = CELLS[name](2, 16, 3, groups=4, dtype=torch.float64)
    x = torch.rand(6, 2, 2, 5, 5, dtype=torch.float64)
    spikes, state = cell(x)
    torch.testing.assert_close(spikes, step_loop(cell.step, x)[0], rtol=0, atol=0)
    spikes.sum().backward()
    assert cell.conv_x.weight.grad is not None and cell.conv_x.weight.grad.abs().sum() > 0


def test_gradient_detach_still_trains_modulators():
    torch.manual_seed(2)
    x = torch.rand(8, 2, 1, 6, 6)
    for detach in (False, True):
        cell = STCLIF(1, 16, 3, groups=4, gradient_detach=detach)
        spikes, _ = cell(x)
        spikes.sum().backward()
        assert cell.conv_h.weight.grad.abs().sum() > 0


def test_state_dict_round_trip():
    a, b = STCPLIF(1, 16, 3, groups=4), STCPLIF(1, 16, 3, groups=4)
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 1, 1, 5, 5)
    torch.testing.assert_close(a(x)[0], b(x)[0])


# ---------------------------------------------------------------------------- bad input
def test_bad_cell_arguments():
    with pytest.raises(ValueError, match="groups must be a positive int dividing"):
        STCLIF(1, 24, 3, groups=16)
    with pytest.raises(ValueError, match="kernel_size"):
        STCLIF(1, 16, 4)
    with pytest.raises(ValueError, match="form must be"):
        PLIFConvCell(1, 16, 3, form="spikingjelly")


def test_groupnorm_single_element_warns():
    cell = STCLIF(1, 16, 1, groups=16)
    with pytest.warns(RuntimeWarning, match="one channel per group on a 1×1 map"):
        cell(torch.rand(2, 2, 1, 1, 1))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_groupnorm_single_element_warns_every_cell_that_its_input_current_is_zero(name):
    # GroupNorm over one element gives 0 (plus its bias): the input current, hence the
    # spikes, do not depend on the input at all
    torch.manual_seed(0)
    cell = CELLS[name](4, 8, 3, groups=8)
    x = torch.rand(5, 3, 4, 1, 1)
    with pytest.warns(RuntimeWarning, match="input current is then the constant") as caught:
        currents = [cell.input_current(x_t) for x_t in (x[0], 10 * x[0] - 5)]
        cell(x)
    torch.testing.assert_close(currents[0], currents[1], rtol=0, atol=1e-4)
    assert ("modulator" in str(caught[0].message)) == name.startswith("stc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CELLS[name](4, 8, 3, groups=4)(x)            # two channels per group: no warning


def test_bad_sequences():
    cell = STCLIF(1, 16, 3)
    with pytest.raises(ValueError, match="T >= 1"):
        cell(torch.zeros(0, 1, 1, 4, 4))
    with pytest.raises(ValueError, match="finite"):
        cell(torch.full((2, 1, 1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, H, W\) per step"):
        cell(torch.zeros(2, 1, 3, 4, 4))


def test_bad_dense_modulators():
    layer = STCDense(3)
    with pytest.raises(ValueError, match=r"w_h must have shape \(3, 3\)"):
        layer.set_modulators(w_h=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="w_v must contain only finite"):
        layer.set_modulators(w_v=np.full((3, 3), np.inf))


def test_plif_forms_differ_at_init():
    x = torch.rand(5, 1, 1, 4, 4) * 3
    a = PLIFConvCell(1, 16, 3, groups=4)
    b = PLIFConvCell(1, 16, 3, groups=4, form="fang2021")
    b.load_state_dict(a.state_dict())
    assert not torch.equal(a(x)[0], b(x)[0])
    assert float(sigmoid(0.0)) == 0.5


def test_fused_gate_convs_equal_the_two_group_conv_modules():
    torch.manual_seed(0)
    cell = STCLIF(3, 32, 5, groups=8, dtype=torch.float64)
    with torch.no_grad():
        for norm in (cell.norm_h, cell.norm_v):
            norm.weight.normal_()
            norm.bias.normal_()
    s = (torch.rand(2, 32, 6, 6, dtype=torch.float64) < 0.3).double()
    gate_h, gate_v = cell.gate_arguments(s)
    torch.testing.assert_close(gate_h, cell.norm_h(cell.conv_h(s)), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(gate_v, cell.norm_v(cell.conv_v(s)), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_group_conv2d_equals_conv2d_with_its_gradients(dtype):
    # the channels-last group conv is conv2d: same outputs and gradients (to round-off)
    from bioplastic.nn.functional.stc import group_conv2d

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 16, 7, 7, generator=g, dtype=dtype) < 0.3).to(dtype)
    w = torch.randn(32, 4, 5, 5, generator=g, dtype=dtype)
    grad = torch.randn(3, 32, 7, 7, generator=g, dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    results = []
    for conv in (lambda a, b: torch.nn.functional.conv2d(a, b, padding=2, groups=4),
                 lambda a, b: group_conv2d(a, b, 4)):
        xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        out = conv(xa, wa)
        out.backward(grad)
        results.append((out, xa.grad, wa.grad))
    assert results[1][0].is_contiguous()
    for got, ref in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, ref, **tol)


def test_sigmoid_gate_form_is_one_plus_tanh_and_accurate_near_zero():
    x = torch.linspace(-12.0, 12.0, 4001)
    exact = 1.0 + torch.tanh(x.double())                # float64: the reference
    sig, _ = F.stc_gates(x, None, tanh="sigmoid")
    lit, _ = F.stc_gates(x, None, tanh="torch")
    eps32 = torch.finfo(torch.float32).eps
    rel_sig = ((sig.double() - exact).abs() / exact).max()
    rel_lit = ((lit.double() - exact).abs() / exact).max()
    assert rel_sig < 8 * eps32                          # full relative precision everywhere
    assert rel_lit > 0.5                                # 1 + tanh cancels where the gate -> 0
    with pytest.raises(ValueError, match="tanh must be one of"):
        F.stc_gates(x, x, tanh="libm")
    with pytest.raises(ValueError, match="tanh must be one of"):
        STCLIF(1, 16, 3, tanh="libm")


def test_conv_cell_tanh_forms_agree_to_round_off():
    torch.manual_seed(3)
    x = torch.rand(6, 2, 1, 6, 6, dtype=torch.float64) * 2
    a = STCLIF(1, 16, 3, groups=4, dtype=torch.float64)
    b = STCLIF(1, 16, 3, groups=4, tanh="torch", dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    (sa, fa), (sb, fb) = a(x), b(x)
    torch.testing.assert_close(fa.alpha, fb.alpha, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(sa, sb, rtol=0, atol=0)


def test_bench_target_needs_both_the_wall_and_the_cpu_ratio():
    from bioplastic._bench.stc import target_met

    assert target_met(1.4, 1.45)
    assert not target_met(1.20, 1.81)       # a descheduled PLIF call inflates its wall time
    assert not target_met(1.6, 1.4)


def test_bad_dtype_and_tanh_are_refused_at_construction():
    # before: STCDense(tanh="bogus") failed only at its first forward, an integer dtype with
    # a bare torch error from the conv
    with pytest.raises(ValueError, match="tanh must be one of"):
        STCDense(5, tanh="bogus")
    for make in (lambda: STCLIF(4, 16, 5, groups=4, dtype=torch.int32),
                 lambda: LIFConvCell(4, 16, 5, groups=4, dtype=torch.int64),
                 lambda: STCDense(4, dtype=torch.int64)):
        with pytest.raises(TypeError, match="dtype must be a floating-point torch dtype"):
            make()
