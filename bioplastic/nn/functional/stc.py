"""STC neurons and their baselines as pure torch steps: the maths of :mod:`bioplastic.nn.stc`.

The same neuron and the same :class:`bioplastic.neurons.STCParams` as the Numba kernel
:mod:`bioplastic.neurons.stc` (read its docstring for the equations and the Schedule). The
modulators (a dense matrix, or a group conv followed by GroupNorm) are the caller's: a step
receives the gate arguments ``gate_h = A_h S[t-1] + a`` and ``gate_v = A_v S[t-1] + b``
(``None``: gate fixed at 1, i.e. the plain base neuron) and the input current ``I[t]``::

    alpha = 1 + tanh(gate_h) ;  beta = 1 + tanh(gate_v)
    "lif"/"plif": H_s = (k_h*alpha)*H + (k_i*beta)*I
    "lmh":        D = (c_du*D + c_su*H) + beta*I ;  H_s = c_dp*D + c_sp*(alpha*H)
    S = fire(H_s - v_th) ;  H = H_s - v_th*S          (S detached in the reset for "lmh")

``fire`` is the Heaviside step with ``x >= 0`` firing and the sigmoid surrogate
``scale·σ(scale·x)(1 − σ(scale·x))`` backward (scale 4, SpikingJelly's ``surrogate.Sigmoid``).
The ``k``/``c`` constants cover the baselines too: LIF with τ = 2 is ``k_h = k_i = 0.5`` with
no gates, the code's PLIF is ``k_h = σ(w)``, ``k_i = 1 − w``, STC-PLIF ``k_i = 1 − σ(w)``.

:func:`stc_dense_step` is the dense reference: it sums ``A S`` sequentially in increasing
presynaptic order (``cumsum``, not a BLAS product) and can evaluate ``tanh`` with NumPy
(``tanh="numpy"``), so in float64 it equals the Numba kernel bit for bit (the kernel uses
NumPy's ``tanh``, and torch's vectorised ``tanh`` differs from it in the last bit).

Whole sequences without gates (the LIF and PLIF baselines, whose input current does not
depend on the state): :func:`stc_sequence` and :func:`plif_fang_sequence` run ``T`` steps as
one autograd node, the forward pass doing the step's operations in its order (bit-identical
spikes and membrane) without a graph, the backward pass the same chain rule by hand::

    g_hs[t]   = g_h[t] + (g_s[t] - v_th g_h[t]) sg[t]       sg = fire'(H_s[t] - v_th)
    g_h[t-1]  = g_hs[t] k_h          (Fang: g_hs[t] - g_hs[t] σ(w))
    g_I[t]    = g_hs[t] k_i          (Fang: g_hs[t] σ(w))

(the gradients equal autograd's through the step loop to round-off, tested in float64; the
backward passes run without a graph, so second derivatives through them are not available:
they are ``once_differentiable``, and torch raises only where the incoming gradient itself
requires grad — use the step loop for higher-order work). On the CPU, in float32 / float64 with
scalar parameters (the cells' case), the whole forward and the whole backward each run as
**one** compiled Numba loop over all steps (:mod:`._soft_reset_fused`), with the same rounding
forward; elsewhere (another device or dtype, per-neuron parameters, Numba disabled with
``BIOPLASTIC_DISABLE_JIT=1``) as torch operations step by step. Both paths are tested against
the step loop.

Other baselines: :func:`plif_fang_step` (Fang et al. 2021 in SpikingJelly's soft-reset form
``H = H + (I - H)·σ(w)``), :func:`tclif_step` (TC-LIF, reset one step late through the
detached previous spikes) and :func:`glif_step` (GLIF's channel-wise ``LIFSpike_CW``, strict
``>`` and a rectangular surrogate).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ...neurons.stc import BASES, STCParams
from . import _soft_reset_fused as _fused_soft_reset
from . import _stc_fused as _kernels
from ._fused import as_array as _np2
from ._fused import constants, kernels_apply
from .lif import _reduce_to


def _out(x: torch.Tensor, rows) -> np.ndarray:
    """A buffer a kernel writes into, as a NumPy view (never a copy: see ``as_array``)."""
    return _np2(x, rows, write=True)

__all__ = ["fire", "rectangular_fire", "numpy_tanh", "TANH_FORMS", "STCTensorParams",
           "STCTensorState", "stc_prepare", "stc_gates", "stc_step", "group_conv2d",
           "stc_dense_gate_arguments",
           "stc_dense_step", "stc_sequence", "plif_fang_sequence", "stc_conv_sequence",
           "plif_fang_step", "TCLIFTensorState", "tclif_step", "GLIFTensorState", "glif_step"]


# ------------------------------------------------------------------------- spike functions
class _Fire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ctx.scale * x)
        return grad_output * (ctx.scale * s * (1.0 - s)), None


def fire(x: torch.Tensor, scale: float = 4.0) -> torch.Tensor:
    """Heaviside ``x >= 0`` forward, sigmoid surrogate ``scale·σ(scale·x)(1−σ(scale·x))``."""
    return _Fire.apply(x, float(scale))


class _RectangularFire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() < 0.5).to(grad_output.dtype)


def rectangular_fire(x: torch.Tensor) -> torch.Tensor:
    """GLIF's spike: strict ``x > 0`` forward, derivative 1 on ``|x| < 0.5`` backward."""
    return _RectangularFire.apply(x)


class _NumpyTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.from_numpy(np.tanh(x.detach().cpu().numpy())).to(x.device)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * (1.0 - y * y)


def numpy_tanh(x: torch.Tensor) -> torch.Tensor:
    """``tanh`` evaluated by NumPy (the kernel's and Brian2's), differentiable (CPU copy)."""
    return _NumpyTanh.apply(x)


# --------------------------------------------------------------------- modulator conv
_CL = torch.channels_last


class _GroupConv2d(torch.autograd.Function):
    """``conv2d(x, weight, padding=k//2, groups)`` whose weight gradient runs in the
    channels-last layout.

    On the CPU, oneDNN's grouped-convolution weight gradient is about 5× faster in the
    channels-last layout than in the default one for the STC gate shapes (forward and input
    gradient are within 25 %, not worth the layout copies). The forward pass is ``conv2d``
    itself; the gradients are ``convolution_backward``'s, only those that are needed.
    """

    @staticmethod
    def forward(ctx, x, weight, groups):
        ctx.save_for_backward(x, weight)
        ctx.groups = groups
        pad = weight.shape[-1] // 2
        return torch.nn.functional.conv2d(x, weight, padding=pad, groups=groups)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv_backward(grad_output, x, weight, ctx.groups, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = _conv_weight_grad(grad_output, x, weight, ctx.groups)
        return grad_x, grad_w, None


def _conv_backward(grad, x, weight, groups, mask):
    pad = weight.shape[-1] // 2
    return torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], [pad, pad],
                                               [1, 1], False, [0, 0], groups, mask)


def _conv_weight_grad(grad, x, weight, groups):
    """The weight gradient, computed in the channels-last layout (the fast one on CPUs)."""
    return _conv_backward(grad.contiguous(memory_format=_CL), x.contiguous(memory_format=_CL),
                          weight, groups, [False, True, False])[1]


def group_conv2d(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """Same-padded stride-1 group convolution ``(B, C, H, W) → (B, C_out, H, W)``, no bias:
    ``conv2d`` with its weight gradient computed in the channels-last layout (faster on the
    CPU, the same maths). ``weight`` ``(C_out, C // groups, k, k)``, ``k`` odd."""
    return _GroupConv2d.apply(x, weight, int(groups))


# ---------------------------------------------------------------------------------- STC
class STCTensorParams(NamedTuple):
    """What :func:`stc_step` reads: ``variant`` (``BASES``) and tensors broadcastable to the
    neuron shape (learned parameters already mapped through their sigmoids)."""

    variant: int
    v_th: torch.Tensor
    k_h: torch.Tensor
    k_i: torch.Tensor
    c_du: torch.Tensor
    c_su: torch.Tensor
    c_dp: torch.Tensor
    c_sp: torch.Tensor


class STCTensorState(NamedTuple):
    h: torch.Tensor          # membrane after the reset
    d: torch.Tensor          # LM-H dendritic state (zeros for the other bases)
    s: torch.Tensor          # spikes of the last step (the autapse input)
    alpha: torch.Tensor      # temporal gate of the last step
    beta: torch.Tensor       # spatial gate of the last step


def _tensor(value, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype=dtype, device=device)


def stc_prepare(params: STCParams, n: int, *, dtype=torch.float64,
                device=None) -> STCTensorParams:
    """Tensors ``(n,)`` from the kernel's :func:`bioplastic.neurons.stc_prepare` (same numbers;
    the gate biases go into the caller's gate arguments)."""
    from ...neurons.stc import stc_prepare as kernel_prepare

    kp = kernel_prepare(params, n)
    fields = ("v_th", "k_h", "k_i", "c_du", "c_su", "c_dp", "c_sp")
    return STCTensorParams(kp.variant, *(_tensor(getattr(kp, f), dtype, device) for f in fields))


TANH_FORMS = ("torch", "sigmoid", "numpy")


def _gate(x, tanh: str):
    if tanh == "sigmoid":                   # 1 + tanh(x) = 2σ(2x); both doublings are exact
        return 2.0 * torch.sigmoid(2.0 * x)
    return 1.0 + (numpy_tanh(x) if tanh == "numpy" else torch.tanh(x))


def stc_gates(gate_h, gate_v, *, tanh: str = "torch"):
    """``alpha = 1 + tanh(gate_h)``, ``beta = 1 + tanh(gate_v)`` (``None`` stays ``None``).

    ``tanh`` says how ``1 + tanh(x)`` is evaluated: ``"torch"`` literally, with torch's
    ``tanh``; ``"sigmoid"`` as the identical function ``2σ(2x)`` (on the CPU torch's
    ``sigmoid`` is about 6× faster than its ``tanh``, and it keeps full relative precision
    where the gate nears 0, which ``1 + tanh`` loses to cancellation: up to 100 % in float32
    at ``x ≈ −9``); ``"numpy"`` with NumPy's ``tanh`` (the Numba kernel's, for exact
    comparisons). The three differ in round-off only."""
    if tanh not in TANH_FORMS:
        raise ValueError(f"tanh must be one of {TANH_FORMS}, got {tanh!r}")
    alpha = None if gate_h is None else _gate(gate_h, tanh)
    beta = None if gate_v is None else _gate(gate_v, tanh)
    return alpha, beta


def stc_step(current: torch.Tensor, state: STCTensorState, params: STCTensorParams,
             gate_h=None, gate_v=None, *, scale: float = 4.0, tanh: str = "torch"):
    """One step (see the module docstring). Returns ``(spikes, new_state)``."""
    alpha, beta = stc_gates(gate_h, gate_v, tanh=tanh)
    gated_i = current if beta is None else beta * current
    h, d = state.h, state.d
    if params.variant == BASES["lmh"]:
        d = (params.c_du * d + params.c_su * h) + gated_i
        gated_h = h if alpha is None else alpha * h
        h_s = params.c_dp * d + params.c_sp * gated_h
    else:
        k_h = params.k_h if alpha is None else params.k_h * alpha
        k_i = params.k_i if beta is None else params.k_i * beta
        h_s = k_h * h + k_i * current
    s = fire(h_s - params.v_th, scale)
    s_reset = s.detach() if params.variant == BASES["lmh"] else s
    h_new = h_s - params.v_th * s_reset
    ones = torch.ones_like(h_s)
    return s, STCTensorState(h_new, d, s, ones if alpha is None else alpha,
                             ones if beta is None else beta)


def stc_dense_gate_arguments(s_prev: torch.Tensor, w: torch.Tensor, bias) -> torch.Tensor:
    """``Σ_j w[i, j] s_prev[..., j] + bias[i]``, summed sequentially in increasing ``j`` from
    ``+0`` (``cumsum``), the Numba kernel's and Brian2's order. ``s_prev`` ``(B, n)``."""
    terms = w * s_prev.unsqueeze(-2)                      # (B, n_post, n_pre)
    return torch.cumsum(terms, dim=-1)[..., -1] + bias


def stc_dense_step(current, state, params, w_h, w_v, bias_h, bias_v, *, scale: float = 4.0,
                   tanh: str = "numpy", gradient_detach: bool = False):
    """:func:`stc_step` with dense modulators ``w_h``, ``w_v`` ``(n, n)`` and biases ``(n,)``.

    With ``tanh="numpy"`` and float64 tensors this is the Numba kernel, bit for bit.
    """
    s_prev = state.s.detach() if gradient_detach else state.s
    gate_h = stc_dense_gate_arguments(s_prev, w_h, bias_h)
    gate_v = stc_dense_gate_arguments(s_prev, w_v, bias_v)
    return stc_step(current, state, params, gate_h, gate_v, scale=scale, tanh=tanh)


# ---------------------------------------------------------------------------- baselines
def plif_fang_step(current, state: STCTensorState, w: torch.Tensor, *, v_th: float = 1.0,
                   scale: float = 4.0):
    """PLIF of Fang et al. (2021), SpikingJelly's soft-reset charge ``H + (I − H)·σ(w)``."""
    h_s = state.h + (current - state.h) * torch.sigmoid(w)
    s = fire(h_s - v_th, scale)
    ones = torch.ones_like(h_s)
    return s, STCTensorState(h_s - v_th * s, state.d, s, ones, ones)


class TCLIFTensorState(NamedTuple):
    h: torch.Tensor      # somatic compartment
    d: torch.Tensor      # dendritic compartment
    s: torch.Tensor      # spikes of the last step


def tclif_step(current, state: TCLIFTensorState, t_m, s_u, s_p, *, scale: float = 4.0):
    """TC-LIF (Zhang et al., AAAI 2024), as in the STC code: the reset arrives one step late,
    through the detached previous spikes."""
    s_prev = state.s.detach()
    d = state.d - torch.sigmoid(s_u) * state.h + current - t_m * s_prev
    h = state.h + torch.sigmoid(s_p) * d - s_prev
    s = fire(h - 1.0, scale)
    return s, TCLIFTensorState(h, d, s)


class GLIFTensorState(NamedTuple):
    u: torch.Tensor      # membrane
    o: torch.Tensor      # spikes of the last step


def glif_step(current, state: GLIFTensorState, tau, v_th, leak, v_reset, conduct, *,
              gates=(0.55, 0.65, 0.55)):
    """GLIF (Yao et al., NeurIPS 2022; ``LIFSpike_CW``) with static gates
    ``(alpha_g, beta_g, gamma_g)``; ``tau, v_th, leak, v_reset, conduct`` already in (0, 1)."""
    a_g, b_g, c_g = gates
    i_t = current * (1.0 - b_g * (1.0 - conduct))
    u = ((1.0 - a_g * (1.0 - tau)) * state.u * (1.0 - c_g * state.o)
         - (1.0 - a_g) * leak + i_t - (1.0 - c_g) * v_reset * state.o)
    o = rectangular_fire(u - v_th)
    return o, GLIFTensorState(u, o)


# ----------------------------------------------------------------- whole sequences, no gates
def _soft_reset_forward(current, h0, form, a, b, v_th, *, keep: bool):
    """Forward loop of the soft-reset neuron without gates (no graph). ``form`` "stc":
    ``H_s = a*H + b*I`` (:func:`stc_step`'s ``k_h * h + k_i * current``); "fang":
    ``H_s = H + (I - H)*a`` (:func:`plif_fang_step`). Returns spikes, final H and, if
    ``keep``, every ``H_s``."""
    step = torch.broadcast_shapes(current.shape[1:], h0.shape, a.shape, b.shape, v_th.shape)
    n_steps = current.shape[0]
    spikes = torch.empty((n_steps,) + step, dtype=current.dtype, device=current.device)
    hs_all = torch.empty_like(spikes) if keep else None
    hs = torch.empty(step, dtype=current.dtype, device=current.device)
    tmp = torch.empty_like(hs)
    fired = torch.empty(step, dtype=torch.bool, device=current.device)
    h = torch.broadcast_to(h0, step)
    for t in range(n_steps):
        if keep:
            hs = hs_all[t]
        if form == "stc":
            torch.mul(a, h, out=hs)
            torch.mul(b, current[t], out=tmp)
            hs.add_(tmp)
        else:
            torch.sub(current[t], h, out=tmp)
            tmp.mul_(a)
            torch.add(h, tmp, out=hs)
        torch.ge(hs, v_th, out=fired)           # H_s - v_th >= 0, exactly
        spikes[t].copy_(fired)
        h = hs - v_th * spikes[t]
    return spikes, h, hs_all


def _sigmoid_surrogate(x, scale):
    s = torch.sigmoid(scale * x)
    return scale * s * (1.0 - s)


def _soft_reset_constants(current, h0, a, b, v_th, scale):
    """``(1, a, b, v_th, scale)`` as a NumPy array for :mod:`._soft_reset_fused`, or ``None``
    where its loops do not apply (off the CPU, another dtype, a per-neuron ``a``/``b``/``v_th``,
    an empty sequence or step, Numba disabled with ``BIOPLASTIC_DISABLE_JIT=1``): then the
    torch ops run."""
    scalars = (a, b, v_th)
    if current.numel() == 0 or not kernels_apply(current, h0, *scalars):
        return None
    if any(x.numel() != 1 for x in scalars):
        return None
    try:
        step = torch.broadcast_shapes(current.shape[1:], h0.shape, a.shape, b.shape, v_th.shape)
    except RuntimeError:
        return None
    if step != current.shape[1:]:
        return None
    return constants([1.0, *(float(x.detach()) for x in scalars), scale], current.dtype)


def _contiguous_copy(x: torch.Tensor, shape) -> torch.Tensor:
    """A fresh C-contiguous tensor ``shape`` holding ``x`` broadcast (never a view of ``x``:
    the loops write into it)."""
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    return out.copy_(x.detach())


def _soft_reset_forward_fused(current, h0, form, consts, *, keep: bool):
    """:func:`_soft_reset_forward` as one Numba loop over all steps (same results, bit for
    bit). Also returns the contiguous input currents it read (a view of ``current`` when that
    is contiguous), which the backward loop reads again."""
    n_steps, step = current.shape[0], current.shape[1:]
    cur = current.detach().contiguous()
    n = cur[0].numel()
    spikes = torch.empty_like(cur)
    hs_all = torch.empty_like(cur) if keep else cur.new_empty((1,) + step)
    h = _contiguous_copy(h0, step)
    _fused_soft_reset.forward_sequence(
        form == "fang", cur.view(n_steps, n).numpy(), h.view(n).numpy(), consts,
        hs_all.view(hs_all.shape[0], n).numpy(), spikes.view(n_steps, n).numpy())
    return spikes, h, (hs_all if keep else None), cur


def _spike_gradient_rows(grad_spikes, n_steps, n):
    """dL/dS as C-contiguous ``(T, N)`` rows for :func:`._soft_reset_fused.backward_sequence`,
    or one row ``(1, N)`` used at every step where the gradient does not change over time (a
    stride-0 time axis, e.g. the gradient of ``spikes.sum()``): that saves copying a
    ``(T, N)`` broadcast."""
    if n_steps > 1 and grad_spikes.stride(0) == 0:
        return _contiguous_copy(grad_spikes[0], grad_spikes.shape[1:]).view(1, n).numpy()
    return grad_spikes.detach().contiguous().view(n_steps, n).numpy()


class _SoftResetSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, h0, a, b, v_th, form, scale):
        consts = _soft_reset_constants(current, h0, a, b, v_th, scale)
        if consts is not None:
            spikes, h, hs_all, current = _soft_reset_forward_fused(current, h0, form, consts,
                                                                  keep=True)
        else:
            spikes, h, hs_all = _soft_reset_forward(current, h0, form, a, b, v_th, keep=True)
        ctx.save_for_backward(current, h0, a, b, v_th, spikes, hs_all)
        ctx.options = (form, scale)
        ctx.consts = consts
        return spikes, h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_h):
        if ctx.consts is not None:
            return _soft_reset_backward_fused(ctx, grad_spikes, grad_h)
        current, h0, a, b, v_th, spikes, hs_all = ctx.saved_tensors
        form, scale = ctx.options
        want_i, want_h0, want_a, want_b = ctx.needs_input_grad[:4]
        grad_i = torch.empty_like(hs_all) if want_i else None
        acc_a = torch.zeros_like(hs_all[0]) if want_a else None
        acc_b = torch.zeros_like(hs_all[0]) if want_b and form == "stc" else None
        carry = grad_h if grad_h is not None else torch.zeros_like(hs_all[0])
        for t in range(hs_all.shape[0] - 1, -1, -1):
            hs = hs_all[t]
            sg = _sigmoid_surrogate(hs - v_th, scale)
            g_s = -carry * v_th                      # the soft reset H = H_s - v_th S
            if grad_spikes is not None:
                g_s = grad_spikes[t] + g_s
            g_hs = carry + g_s * sg
            h_prev = None
            if want_a or want_b:
                h_prev = (torch.broadcast_to(h0, hs.shape) if t == 0
                          else hs_all[t - 1] - v_th * spikes[t - 1])
            if form == "stc":
                if want_i:
                    torch.mul(g_hs, b, out=grad_i[t])
                if want_a:
                    acc_a += g_hs * h_prev
                if want_b:
                    acc_b += g_hs * current[t]
                carry = g_hs * a
            else:
                g_i = g_hs * a
                if want_i:
                    grad_i[t].copy_(g_i)
                if want_a:
                    acc_a += g_hs * (current[t] - h_prev)
                carry = g_hs - g_i
        return (grad_i, _reduce_to(carry, h0.shape) if want_h0 else None,
                _reduce_to(acc_a, a.shape) if want_a else None,
                _reduce_to(acc_b, b.shape) if acc_b is not None else None, None, None, None)


def _soft_reset_backward_fused(ctx, grad_spikes, grad_h):
    """:class:`_SoftResetSequence`'s backward as one Numba loop over all steps (the same
    chain rule as the torch ops; the surrogate's sigmoid is one torch call over the whole
    sequence, written into the buffer that the loop turns into dL/dI)."""
    current, h0, a, b, v_th, spikes, hs_all = ctx.saved_tensors
    form, scale = ctx.options
    want_i, want_h0, want_a, want_b = ctx.needs_input_grad[:4]
    n_steps, step = hs_all.shape[0], hs_all.shape[1:]
    n = hs_all[0].numel()
    sig_gi = torch.sub(hs_all, v_th).mul_(scale).sigmoid_()
    rows = (n_steps, n)
    if grad_spikes is None:
        g_s = hs_all.new_zeros((1, n)).numpy()
    else:
        g_s = _spike_gradient_rows(grad_spikes, n_steps, n)
    carry = (hs_all.new_zeros(step) if grad_h is None else _contiguous_copy(grad_h, step))
    # separate buffers for every array (aliasing would stop LLVM from vectorising the loops)
    h0_row, zeros, acc_a, acc_b = (_contiguous_copy(h0, step), hs_all.new_zeros(step),
                                   hs_all.new_zeros(step), hs_all.new_zeros(step))
    _fused_soft_reset.backward_sequence(
        form == "fang", sig_gi.view(rows).numpy(), hs_all.view(rows).numpy(),
        spikes.view(rows).numpy(), current.view(rows).numpy(), h0_row.view(n).numpy(),
        zeros.view(n).numpy(), g_s, carry.view(n).numpy(), ctx.consts, acc_a.view(n).numpy(),
        acc_b.view(n).numpy())
    return (sig_gi if want_i else None, _reduce_to(carry, h0.shape) if want_h0 else None,
            _reduce_to(acc_a, a.shape) if want_a else None,
            _reduce_to(acc_b, b.shape) if want_b and form == "stc" else None, None, None, None)


def _soft_reset_sequence(current, state, form, a, b, v_th, scale):
    args = (current, state.h, a, b, v_th)
    if torch.is_grad_enabled() and any(t.requires_grad for t in args):
        if v_th.requires_grad:
            raise ValueError("a learned threshold needs the step loop (stc_step)")
        spikes, h = _SoftResetSequence.apply(*args, form, float(scale))
    else:
        consts = _soft_reset_constants(current, state.h, a, b, v_th, float(scale))
        if consts is not None:
            spikes, h, _, _ = _soft_reset_forward_fused(current, state.h, form, consts,
                                                        keep=False)
        else:
            spikes, h, _ = _soft_reset_forward(current, state.h, form, a, b, v_th, keep=False)
    ones = torch.ones_like(h)
    return spikes, STCTensorState(h, state.d, spikes[-1], ones, ones)


def stc_sequence(current: torch.Tensor, state: STCTensorState, params: STCTensorParams, *,
                 scale: float = 4.0):
    """``T`` steps of :func:`stc_step` without gates (``gate_h = gate_v = None``) as one
    autograd node: ``current`` ``(T, ...)``; bases "lif" and "plif" only (module docstring).
    Returns ``(spikes (T, ...), state after the last step)``; the spikes and the membrane
    equal the step loop bit for bit, the gradients (to ``current``, the initial ``h`` and
    ``k_h``, ``k_i``) to round-off. Scalar ``k_h``, ``k_i``, ``v_th`` of ``current``'s dtype
    on the CPU take the compiled loops (module docstring); no second derivatives."""
    if params.variant == BASES["lmh"]:
        raise ValueError("stc_sequence covers the 'lif' and 'plif' bases; LM-H needs the step "
                         "loop (stc_step)")
    return _soft_reset_sequence(current, state, "stc", params.k_h, params.k_i, params.v_th,
                                scale)


def plif_fang_sequence(current: torch.Tensor, state: STCTensorState, w: torch.Tensor, *,
                       v_th: float = 1.0, scale: float = 4.0):
    """``T`` steps of :func:`plif_fang_step` as one autograd node (module docstring):
    bit-identical spikes and membrane, the same gradients to round-off (to ``current``, the
    initial ``h`` and ``w``). A scalar ``w`` of ``current``'s dtype on the CPU takes the
    compiled loops; no second derivatives."""
    v_th = torch.as_tensor(v_th, dtype=current.dtype, device=current.device)
    return _soft_reset_sequence(current, state, "fang", torch.sigmoid(w), w.new_zeros(()),
                                v_th, scale)


# ------------------------------------------------------------- the STC conv cell, whole run
def _gate_views(y, groups):
    """The h and v halves of an interleaved ``(B, 2C, H, W)`` (group g: its h channels, then
    its v channels), as strided ``(B, groups, C/groups, H, W)`` views."""
    b, c2 = y.shape[:2]
    y = y.view(b, groups, 2, c2 // (2 * groups), *y.shape[2:])
    return y[:, :, 0], y[:, :, 1]


class _GateForm(NamedTuple):
    """How :class:`_STCConvSequence` evaluates a gate ``1 + tanh(x)`` (:func:`stc_gates`'s
    ``tanh``): it stores ``u = fn(pre·x)`` per step; the gate is ``u·mul + add`` (exactly
    :func:`stc_gates`'s ``1 + tanh`` / ``2σ``: ``·1`` and ``·2`` are exact) and its derivative
    ``(q0 + q1·u)(1 − u)``."""

    pre: float
    fn: str          # the in-place torch op applied to pre·x
    mul: float
    add: float
    q0: float
    q1: float


GATE_FORMS = {"torch": _GateForm(1.0, "tanh_", 1.0, 1.0, 1.0, 1.0),       # (1 + u)(1 − u)
              "sigmoid": _GateForm(2.0, "sigmoid_", 2.0, 0.0, 0.0, 4.0)}  # 4u(1 − u)


def _gate_value(u, form: _GateForm, out=None):
    """The gate ``u·mul + add`` from the stored ``u`` (into ``out`` if given)."""
    return torch.mul(u, form.mul, out=out).add_(form.add)


def _gate_argument_grad(d_kgate, k, u, form, grad_last, buf, out, shape):
    """``out = (d_kgate k + grad_last) (q0 + q1 u)(1 − u)``: the gradient of a gate's argument
    from that of ``k·gate`` (``d_kgate``, overwritten) and the loss on the gate itself."""
    d_kgate.mul_(k)
    if grad_last is not None:
        d_kgate.add_(grad_last)
    torch.mul(u, form.q1, out=buf).add_(form.q0).mul_(torch.neg(u).add_(1.0))
    out.copy_(d_kgate.mul_(buf).view(shape))


def _backward_elementwise(t, n, hs, ta, tb, hs_all, spikes, h0, current, carry, grad_spikes,
                          g_s_gate, grad_alpha, grad_beta, k_h, k_i, v_th, scale, form, dy5,
                          carry_out, grad_i_t, acc_kh, acc_ki, bufs):
    """One step of :class:`_STCConvSequence`'s backward chain as torch ops (the path off the
    CPU or without Numba; :func:`_stc_fused.backward_step` is the same in one pass). Writes the
    gate-argument gradients into ``dy5`` ``(B, groups, 2, C/groups, H·W)``, ``grad_i_t`` and the
    accumulators (each where not ``None``); returns dL/dH[t-1] (written into ``carry_out``)."""
    b1, b2, b3, b4, b5 = bufs
    half = dy5.shape[:2] + dy5.shape[3:]
    # sg = scale σ(scale x)(1 − σ(scale x)), x = H_s − v_th  (fire's backward)
    torch.sub(hs, v_th, out=b1).mul_(scale).sigmoid_()
    torch.neg(b1, out=b2).add_(1.0)
    b1.mul_(scale).mul_(b2)
    # g_hs = carry + (g_spikes + g_gate − v_th carry) sg
    torch.neg(carry, out=b2).mul_(v_th)
    if grad_spikes is not None:
        b2.add_(grad_spikes[t])
    if g_s_gate is not None:
        b2.add_(g_s_gate)
    b2.mul_(b1).add_(carry)
    # temporal gate: d/d(k_h alpha) = g_hs h_prev
    if t == 0:
        torch.mul(b2, h0, out=b3)
    else:
        torch.mul(spikes[t - 1], v_th, out=b3)
        torch.sub(hs_all[t - 1], b3, out=b3).mul_(b2)
    _gate_value(ta, form, out=b4)                    # alpha
    if acc_kh is not None:
        acc_kh.addcmul_(b3, b4)
    torch.mul(b4, k_h, out=b5)
    carry = torch.mul(b2, b5, out=carry_out)         # dL/dH[t-1]
    _gate_argument_grad(b3, k_h, ta, form, grad_alpha if t == n - 1 else None, b4,
                        dy5[:, :, 0], half)
    # spatial gate: d/d(k_i beta) = g_hs I
    torch.mul(b2, current, out=b3)
    _gate_value(tb, form, out=b4)                    # beta
    if acc_ki is not None:
        acc_ki.addcmul_(b3, b4)
    if grad_i_t is not None:
        torch.mul(b4, k_i, out=b5)
        torch.mul(b2, b5, out=grad_i_t)
    _gate_argument_grad(b3, k_i, tb, form, grad_beta if t == n - 1 else None, b4,
                        dy5[:, :, 1], half)
    return carry


def _kernel_constants(currents, h0, s0, k_h, k_i, v_th, scale, form):
    """``(1, k_h, k_i, v_th, scale, mul, add, q0, q1)`` (``form``'s gate constants) as a NumPy
    array for :mod:`._stc_fused`, or ``None``
    where its kernels do not apply (off the CPU, another dtype, per-neuron ``k``/``v_th``,
    Numba disabled): then the torch ops run."""
    scalars = (k_h, k_i, v_th)
    if not kernels_apply(currents, h0, s0, *scalars) or any(x.numel() != 1 for x in scalars):
        return None
    return constants([1.0] + [float(x.detach()) for x in scalars]
                     + [scale, form.mul, form.add, form.q0, form.q1], currents.dtype)


class _STCConvSequence(torch.autograd.Function):
    """The recurrent part of the STC-LIF / STC-PLIF conv cell over a whole sequence (see
    :func:`stc_conv_sequence`). Step-sized work buffers are reused (a fresh tensor per
    operation costs page faults on the CPU)."""

    @staticmethod
    def forward(ctx, currents, h0, s0, weight, gamma, beta_gn, k_h, k_i, v_th, options):
        groups, eps, detach, scale, form = options
        n_steps, batch, c = currents.shape[:3]
        hw = currents.shape[3] * currents.shape[4]
        grouped = (batch, groups, c // groups) + tuple(currents.shape[3:])
        # S[-1] = s0 in front: the presynaptic spikes of every step are then a view
        spikes_ext = torch.empty((n_steps + 1,) + tuple(currents.shape[1:]),
                                 dtype=currents.dtype, device=currents.device)
        spikes_ext[0].copy_(s0)
        spikes = spikes_ext[1:]
        hs_all, ta_all, tb_all = (torch.empty_like(currents) for _ in range(3))
        h_bufs = [torch.empty_like(currents[0]) for _ in range(2)]
        # the same spikes in the channels-last layout, for the backward convolutions
        spikes_cl = torch.empty(((n_steps + 1) * batch,) + tuple(currents.shape[2:]),
                                dtype=currents.dtype, device=currents.device,
                                memory_format=_CL)
        spikes_cl[:batch].copy_(s0)
        buf1, buf2 = torch.empty_like(currents[0]), torch.empty_like(currents[0])
        fired = torch.empty(currents.shape[1:], dtype=torch.bool, device=currents.device)
        z_list, mean, rstd = [], [], []
        h, s = h0, s0
        pad = weight.shape[-1] // 2
        consts = _kernel_constants(currents, h0, s0, k_h, k_i, v_th, scale, form)
        rows = (batch * groups, c // groups * hw)
        if consts is not None:
            h = torch.broadcast_to(h0, currents.shape[1:])
        # no spike before the sequence (the usual start): the first conv's output is zero, so
        # it is not computed (a conv of zeros gives ±0, and ±0 gives the same gate either way)
        ctx.silent_start = not bool(s0.any())
        for t in range(n_steps):
            if t == 0 and ctx.silent_start:
                z = currents.new_zeros((batch, 2 * c) + tuple(currents.shape[3:]))
            else:
                z = torch.nn.functional.conv2d(s, weight, padding=pad, groups=groups)
            z_list.append(z)
            y = z
            if gamma is not None:
                y, m, r = torch.ops.aten.native_group_norm(z, gamma, beta_gn, batch, 2 * c, hw,
                                                           2 * groups, eps)
                mean.append(m)
                rstd.append(r)
            # tanh / sigmoid of each contiguous half, as stc_step takes it: torch's CPU kernels
            # compute the tail of a tensor with the scalar libm function and the rest
            # vectorised, so the same element can differ in its last bit in a tensor of
            # another size
            gate_h, gate_v = _gate_views(y, groups)
            ta, tb, hs = ta_all[t], tb_all[t], hs_all[t]
            for u, half in ((ta, gate_h), (tb, gate_v)):
                torch.mul(half, form.pre, out=u.view(grouped))      # exact (·1 or ·2)
                getattr(u, form.fn)()
            s = spikes[t]
            s_cl = spikes_cl[(t + 1) * batch:(t + 2) * batch]
            if consts is not None:      # the rest of the step in one pass (same rounding)
                h_next = h_bufs[t % 2]
                _kernels.forward_step(_np2(ta, rows), _np2(tb, rows), _np2(h, rows),
                                      _np2(currents[t], rows), consts, _out(hs, rows),
                                      _out(s, rows), _out(h_next, rows))
                s_cl.copy_(s)
                h = h_next
                continue
            # stc_step's order: (k_h * alpha) * h + (k_i * beta) * I
            _gate_value(ta, form, out=buf1).mul_(k_h)
            torch.mul(buf1, h, out=hs)
            _gate_value(tb, form, out=buf2).mul_(k_i).mul_(currents[t])
            hs.add_(buf2)
            torch.ge(hs, v_th, out=fired)
            s.copy_(fired)
            s_cl.copy_(fired)
            torch.mul(s, v_th, out=buf1)
            h = torch.sub(hs, buf1, out=h_bufs[t % 2])
        ctx.save_for_backward(currents, h0, s0, weight, gamma, beta_gn, k_h, k_i, v_th,
                              spikes_ext, spikes_cl, hs_all, ta_all, tb_all, *z_list, *mean,
                              *rstd)
        ctx.options = options
        ctx.n_steps = n_steps
        ctx.consts = consts
        return spikes, h, _gate_value(ta_all[-1], form), _gate_value(tb_all[-1], form)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_h, grad_alpha, grad_beta):
        groups, eps, detach, scale, form = ctx.options
        n = ctx.n_steps
        (currents, h0, s0, weight, gamma, beta_gn, k_h, k_i, v_th, spikes_ext, spikes_cl,
         hs_all, ta_all, tb_all, *rest) = ctx.saved_tensors
        spikes = spikes_ext[1:]
        z_list, mean, rstd = rest[:n], rest[n:2 * n], rest[2 * n:]
        (want_i, want_h0, want_s0, want_w, want_g, want_b, want_kh,
         want_ki) = ctx.needs_input_grad[:8]
        batch, c = currents.shape[1:3]
        hw = currents.shape[3] * currents.shape[4]
        grad_i = torch.empty_like(currents) if want_i else None
        dy = torch.empty((batch, 2 * c) + tuple(currents.shape[3:]), dtype=currents.dtype,
                         device=currents.device)
        dz_all = torch.empty((n * batch, 2 * c) + tuple(currents.shape[3:]),
                             dtype=currents.dtype, device=currents.device, memory_format=_CL)
        grad_g = torch.zeros_like(gamma) if gamma is not None and want_g else None
        grad_b = torch.zeros_like(gamma) if gamma is not None and want_b else None
        acc_kh = torch.zeros_like(currents[0]) if want_kh else None
        acc_ki = torch.zeros_like(currents[0]) if want_ki else None
        b1, b2, b3, b4, b5 = (torch.empty_like(currents[0]) for _ in range(5))
        carries = [torch.empty_like(currents[0]) for _ in range(2)]
        carry = grad_h if grad_h is not None else torch.zeros_like(currents[0])
        g_s_gate = None                        # dL/dS[t] through the gates of step t+1
        consts = ctx.consts
        dy5 = dy.view(batch, groups, 2, c // groups, hw)
        if consts is not None:
            rows = (batch * groups, c // groups * hw)
            dy3 = dy.view(batch * groups, 2, c // groups * hw).numpy()
            zeros = torch.zeros_like(currents[0])
            h0_full = _np2(torch.broadcast_to(h0, currents.shape[1:]), rows)
            last_a, last_b = (_np2(zeros if g is None else g, rows)
                              for g in (grad_alpha, grad_beta))
            # scratch for what is not wanted (separate buffers: aliasing would stop LLVM
            # from vectorising the loop)
            outs = [_out(x if x is not None else torch.empty_like(currents[0]), rows)
                    for x in (acc_kh, acc_ki)]
            scratch_i = None if want_i else _out(torch.empty_like(currents[0]), rows)
            sig, g_s = b1, b2
        for t in range(n - 1, -1, -1):
            hs, ta, tb = hs_all[t], ta_all[t], tb_all[t]
            if consts is not None:      # the elementwise chain in one pass
                torch.sub(hs, v_th, out=sig).mul_(scale).sigmoid_()
                if grad_spikes is not None and g_s_gate is not None:
                    torch.add(grad_spikes[t], g_s_gate, out=g_s)
                elif grad_spikes is not None or g_s_gate is not None:
                    g_s.copy_(grad_spikes[t] if g_s_gate is None else g_s_gate)
                else:
                    g_s.zero_()
                carry_next = carries[t % 2]
                last = t == n - 1
                _kernels.backward_step(
                    _np2(sig, rows), h0_full if t == 0 else _np2(hs_all[t - 1], rows),
                    _np2(zeros if t == 0 else spikes[t - 1], rows), _np2(ta, rows),
                    _np2(tb, rows), _np2(currents[t], rows), _np2(carry, rows),
                    _np2(g_s, rows), last_a if last else _np2(zeros, rows),
                    last_b if last else _np2(zeros, rows), consts, _out(carry_next, rows),
                    dy3, _out(grad_i[t], rows) if want_i else scratch_i, outs[0], outs[1])
                carry = carry_next
            else:
                carry = _backward_elementwise(
                    t, n, hs, ta, tb, hs_all, spikes, h0, currents[t], carry, grad_spikes,
                    g_s_gate, grad_alpha, grad_beta, k_h, k_i, v_th, scale, form, dy5,
                    carries[t % 2], grad_i[t] if want_i else None, acc_kh, acc_ki,
                    (b1, b2, b3, b4, b5))
            dz = dz_all[t * batch:(t + 1) * batch]          # channels-last
            # dL/dz of a silent start feeds only the gradient of s0 (the weight's is zero)
            want_dz = t > 0 or not ctx.silent_start or (want_s0 and not detach)
            dz_t = dy
            if gamma is not None:        # affine gradients summed step by step
                dz_t, g_g, g_b = torch.ops.aten.native_group_norm_backward(
                    dy, z_list[t], mean[t], rstd[t], gamma, batch, 2 * c, hw, 2 * groups,
                    [want_dz, want_g, want_b])
                if want_g:
                    grad_g += g_g
                if want_b:
                    grad_b += g_b
            if want_dz:
                dz.copy_(dz_t)
            g_s_gate = None
            if not detach and (t > 0 or want_s0):
                s_prev = spikes_cl[t * batch:(t + 1) * batch]
                g_s_gate = _conv_backward(dz, s_prev, weight, groups, [True, False, False])[0]
        grad_s0 = g_s_gate.contiguous() if want_s0 and not detach else None
        grad_w = None
        first = batch if ctx.silent_start else 0   # a silent start adds nothing
        if want_w and first == n * batch:
            grad_w = torch.zeros_like(weight)
        elif want_w:                     # one weight gradient over all T·B samples
            grad_w = _conv_backward(dz_all[first:], spikes_cl[first:n * batch], weight,
                                    groups, [False, True, False])[1]
        return (grad_i, _reduce_to(carry, h0.shape) if want_h0 else None, grad_s0, grad_w,
                grad_g, grad_b, _reduce_to(acc_kh, k_h.shape) if want_kh else None,
                _reduce_to(acc_ki, k_i.shape) if want_ki else None, None, None)


def stc_conv_sequence(currents: torch.Tensor, state: STCTensorState, params: STCTensorParams,
                      gate_weight: torch.Tensor, norm_weight, norm_bias, groups: int, *,
                      eps: float = 1e-5, gradient_detach: bool = False, scale: float = 4.0,
                      tanh: str = "sigmoid"):
    """The STC-LIF / STC-PLIF conv cell's recurrence over a whole sequence, one autograd node.

    ``currents`` ``(T, B, C, H, W)`` (the cell's input currents), ``gate_weight``
    ``(2C, C // groups, k, k)`` (both modulator convs interleaved per group as in
    :meth:`bioplastic.nn.STCConvCell.gate_arguments`), ``norm_weight`` / ``norm_bias``
    ``(2C,)`` (the two GroupNorms as one with ``2·groups`` groups; ``None``: no norm). Each
    step is :func:`stc_step` with ``gate = GN(group_conv2d(S[t-1]))``, computed in the same
    order (bit-identical spikes and membrane). The backward pass is written by hand: per
    step the neuron, the GroupNorm's and the conv's input gradients; the weight and affine
    gradients once, over all ``T·B`` samples. Returns ``(spikes, state)``.

    ``tanh``: how the gates ``1 + tanh(x)`` are evaluated, ``"sigmoid"`` (``2σ(2x)``) or
    ``"torch"`` (:func:`stc_gates`; the step loop must use the same to agree bit for bit).
    When ``state.s`` is all zero (the default start) the first step's gate convolution is
    not run (its output is ±0, which gives the same gates either way), nor are its rows of
    the weight gradient (they add zero).

    On the CPU, in float32 / float64 with scalar ``k_h``, ``k_i``, ``v_th`` (the cells' case),
    each step's elementwise chain after the ``tanh`` (about a dozen operations forward, thirty
    backward) runs as one vectorised Numba loop (:mod:`._stc_fused`), with the same rounding
    forward; elsewhere (another device or dtype, per-neuron parameters, Numba disabled with
    ``BIOPLASTIC_DISABLE_JIT=1``) as torch operations. Both paths are tested against the
    step loop.
    """
    if params.variant == BASES["lmh"]:
        raise ValueError("stc_conv_sequence covers the 'lif' and 'plif' bases; LM-H needs the "
                         "step loop")
    # contiguous currents (a no-op for the cells' own), so that every buffer allocated like
    # them is contiguous too: the kernels write into NumPy views of those buffers
    args = (currents.contiguous(), state.h, state.s, gate_weight, norm_weight, norm_bias,
            params.k_h, params.k_i, params.v_th)
    if tanh not in GATE_FORMS:
        raise ValueError(f"tanh must be one of {tuple(GATE_FORMS)} here, got {tanh!r}")
    spikes, h, alpha, beta = _STCConvSequence.apply(
        *args, (int(groups), float(eps), bool(gradient_detach), float(scale),
                GATE_FORMS[tanh]))
    return spikes, STCTensorState(h, state.d, spikes[-1], alpha, beta)
