"""The gate-free soft-reset sequences (``stc_sequence``, ``plif_fang_sequence``: the LIF and
PLIF conv cells' neuron) on both of their paths: the compiled Numba loops over all steps (the
CPU default, :mod:`bioplastic.nn.functional._soft_reset_fused`) and the torch ops step by step
(other devices and dtypes, per-neuron parameters, ``BIOPLASTIC_DISABLE_JIT=1``).

The reference is the step loop (``stc_step`` / ``plif_fang_step``) differentiated by autograd.
Forward: bit for bit, in float32 and float64. Gradients in float64: to 1e-12, the tolerance of
tests/test_nn_stc_sequence.py (summation round-off over a few dozen steps; a wrong term changes
them at O(1)); in float32 torch's default float32 tolerance (rtol 1.3e-6, atol 1e-5).
"""

import pytest

torch = pytest.importorskip("torch")

import bioplastic.nn.functional.stc as stc_module  # noqa: E402
from bioplastic.neurons.stc import BASES  # noqa: E402
from bioplastic.nn import PLIFConvCell  # noqa: E402
from bioplastic.nn import functional as F  # noqa: E402
from bioplastic.nn.functional import _fused as fused_module  # noqa: E402
from bioplastic.nn.functional import _soft_reset_fused  # noqa: E402

from .torch_loops import step_loop  # noqa: E402

TOL64 = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(params=["numba", "torch_ops"])
def path(request, monkeypatch):
    """Run the test on one path and check afterwards that exactly that path ran (the Numba
    loops are spied on; ``torch_ops`` forces the fallback as a device without Numba would)."""
    ran = []
    real_constants = stc_module._soft_reset_constants
    if request.param == "torch_ops":
        monkeypatch.setattr(stc_module, "_soft_reset_constants", lambda *args: None)
    for name in ("forward_sequence", "backward_sequence"):
        real = getattr(_soft_reset_fused, name)

        def spy(*args, _real=real, _name=name):
            ran.append(_name)
            return _real(*args)

        monkeypatch.setattr(_soft_reset_fused, name, spy)
    yield request.param
    if request.param == "numba":
        assert "forward_sequence" in ran
        assert real_constants is stc_module._soft_reset_constants
    else:
        assert not ran


def _run(form, cur, h0, w, fused):
    """Spikes and final state of ``form`` over ``cur`` from membrane ``h0`` with the parameter
    ``w`` (``k_h = σ(w)``, ``k_i = 1 − w`` for the STC code's form)."""
    zeros = torch.zeros(cur.shape[1:], dtype=cur.dtype)
    state = F.STCTensorState(h0, zeros, zeros, zeros + 1, zeros + 1)
    if form == "stc":
        one = torch.ones((), dtype=cur.dtype)
        params = F.STCTensorParams(BASES["plif"], one, torch.sigmoid(w), 1.0 - w, one * 0,
                                   one * 0, one, one)
        if fused:
            return F.stc_sequence(cur, state, params)
        return step_loop(lambda c, st: F.stc_step(c, st, params), cur, state)
    if fused:
        return F.plif_fang_sequence(cur, state, w)
    return step_loop(lambda c, st: F.plif_fang_step(c, st, w), cur, state)


def _compare(form, dtype, current, h_init, *, loss="weighted", seed=0):
    """Forward bit for bit and every gradient (current, h0, w) of the fused function against
    the step loop; returns the reference spikes."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn(current.shape, generator=g, dtype=dtype)
    results = []
    for fused in (True, False):
        w = torch.tensor(0.3, dtype=dtype, requires_grad=True)
        cur = current.detach().requires_grad_(True)      # the caller's layout, kept
        h0 = h_init.detach().clone().requires_grad_(True)
        spikes, final = _run(form, cur, h0, w, fused)
        if loss == "sum":                        # dL/dS broadcast over time (stride 0)
            total = spikes.sum()
        else:
            total = ((spikes * weights).sum() + (final.h ** 2).sum() * 0.1
                     + (final.s * 0.5).sum())
        grads = torch.autograd.grad(total, (cur, h0, w))
        results.append((spikes.detach(), final.h.detach(), final.s.detach(), grads))
    (s_got, h_got, last_got, g_got), (s_ref, h_ref, last_ref, g_ref) = results
    torch.testing.assert_close(s_got, s_ref, rtol=0, atol=0)
    torch.testing.assert_close(h_got, h_ref, rtol=0, atol=0)
    torch.testing.assert_close(last_got, last_ref, rtol=0, atol=0)
    tol = TOL64 if dtype == torch.float64 else {}
    for got, ref, name in zip(g_got, g_ref, ("current", "h0", "w"), strict=True):
        assert got.shape == ref.shape, name
        torch.testing.assert_close(got, ref, **tol, msg=name)
    return s_ref, g_ref


@pytest.mark.parametrize("form", ["stc", "fang"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_odd_shape_equals_the_step_loop(form, dtype, path):
    g = torch.Generator().manual_seed(7)
    shape = (3, 5, 7)                 # 105 neurons: not a multiple of any vector width
    current = (torch.rand((23,) + shape, generator=g, dtype=torch.float64) * 2.2 - 0.3)
    h_init = torch.rand(shape, generator=g, dtype=torch.float64)
    spikes, grads = _compare(form, dtype, current.to(dtype), h_init.to(dtype))
    assert 0.1 < float(spikes.mean()) < 0.7          # both branches of the threshold
    assert float(grads[0].abs().max()) > 0.1 and float(grads[2].abs()) > 1e-3


@pytest.mark.parametrize("form", ["stc", "fang"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_step(form, dtype, path):
    g = torch.Generator().manual_seed(8)
    current = torch.rand((1, 4, 9), generator=g, dtype=dtype) * 2.5
    h_init = torch.rand((4, 9), generator=g, dtype=dtype)
    spikes, _ = _compare(form, dtype, current, h_init)
    assert 0 < float(spikes.sum()) < spikes.numel()


@pytest.mark.parametrize("form", ["stc", "fang"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_contiguous_input_and_broadcast_initial_membrane(form, dtype, path):
    g = torch.Generator().manual_seed(9)
    base = torch.rand((6, 11, 17), generator=g, dtype=dtype) * 2.4 - 0.2
    current = base.permute(0, 2, 1)[:, ::2]            # (6, 9, 11), strided
    assert not current.is_contiguous()
    h_init = torch.rand((1, 11), generator=g, dtype=dtype)   # broadcast over the 9 rows
    _compare(form, dtype, current, h_init)


@pytest.mark.parametrize("form", ["stc", "fang"])
def test_gradient_of_the_spike_sum(form, path):
    # spikes.sum() hands the backward a gradient broadcast over time (stride 0), which the
    # loops read as one row
    g = torch.Generator().manual_seed(10)
    current = torch.rand((12, 2, 3, 4), generator=g, dtype=torch.float64) * 2.0
    h_init = torch.zeros((2, 3, 4), dtype=torch.float64)
    _compare(form, torch.float64, current, h_init, loss="sum")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plif_cell_inference_equals_training_and_the_step_loop(dtype, path):
    torch.manual_seed(4)
    cell = PLIFConvCell(2, 6, 3, groups=2, form="fang2021", dtype=dtype)
    x = torch.rand(9, 3, 2, 5, 5, dtype=dtype) * 3
    with torch.no_grad():
        a, sa = cell(x)
        ref, ref_state = step_loop(cell.step, x)
    b, sb = cell(x)
    assert type(b.grad_fn).__name__ == "_SoftResetSequenceBackward"
    for got in (a, b.detach()):
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    for got in (sa.h, sb.h.detach()):
        torch.testing.assert_close(got, ref_state.h, rtol=0, atol=0)


def test_fallback_cases_take_the_torch_ops(monkeypatch):
    cur = torch.rand(3, 4)
    h0, one = torch.zeros(4), torch.ones(())
    scale = 4.0
    assert stc_module._soft_reset_constants(cur, h0, one, one, one, scale) is not None
    # per-neuron parameter, a parameter of another dtype, float16, an empty sequence
    assert stc_module._soft_reset_constants(cur, h0, torch.ones(4), one, one, scale) is None
    assert stc_module._soft_reset_constants(cur, h0, one.double(), one, one, scale) is None
    half = cur.half()
    assert stc_module._soft_reset_constants(half, h0.half(), one.half(), one.half(),
                                            one.half(), scale) is None
    assert stc_module._soft_reset_constants(cur[:0], h0, one, one, one, scale) is None
    # an initial membrane larger than a step (the result's shape is the broadcast one)
    assert stc_module._soft_reset_constants(cur, torch.zeros(2, 4), one, one, one,
                                            scale) is None
    # BIOPLASTIC_DISABLE_JIT=1 (read once, at import, into the kernels' JIT_DISABLED)
    monkeypatch.setattr(fused_module, "JIT_DISABLED", True)
    assert stc_module._soft_reset_constants(cur, h0, one, one, one, scale) is None


def test_float64_parameter_with_float32_current_equals_the_step_loop():
    # w in float64 on a float32 current: torch's promotion rules, so the torch ops run
    cur = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(1)) * 2.5
    h0 = torch.zeros(3, 4)
    w = torch.tensor(0.2, dtype=torch.float64)
    got = _run("fang", cur, h0, w, True)
    ref = _run("fang", cur, h0, w, False)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1].h, ref[1].h, rtol=0, atol=0)


def test_second_derivatives_are_refused():
    cur = (torch.rand(4, 6, dtype=torch.float64) * 2).requires_grad_(True)
    w = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    zeros = torch.zeros(6, dtype=torch.float64)
    spikes, _ = F.plif_fang_sequence(cur, F.STCTensorState(zeros, zeros, zeros, zeros, zeros),
                                     w)
    v = torch.ones_like(spikes, requires_grad=True)
    (g,) = torch.autograd.grad(spikes, cur, grad_outputs=v, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_warmup_compiles_the_loops():
    from bioplastic.warmup import warmup

    warmup(["soft_reset_torch"], out=None)
    for kernel in (_soft_reset_fused.forward_sequence, _soft_reset_fused.backward_sequence):
        dtypes = {str(sig[1].dtype) for sig in kernel.signatures}    # sig[1]: a (T, N) array
        assert {"float32", "float64"} <= dtypes, kernel


def test_disabling_the_jit_takes_the_torch_ops():
    # the environment variable itself, read at import in a fresh process
    import os
    import subprocess
    import sys

    code = ("import torch\n"
            "import bioplastic.nn.functional.stc as m\n"
            "one = torch.ones(())\n"
            "print(m._soft_reset_constants(torch.ones(2, 3), torch.zeros(3), one, one, one, 4.0))")
    env = {**os.environ, "BIOPLASTIC_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"
