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

__all__ = ["fire", "rectangular_fire", "numpy_tanh", "STCTensorParams", "STCTensorState",
           "stc_prepare", "stc_gates", "stc_step", "group_conv2d", "stc_dense_gate_arguments",
           "stc_dense_step",
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
    """``conv2d(x, weight, padding=k//2, groups)`` computed in the channels-last layout.

    On the CPU, oneDNN's grouped convolution is several times faster in channels-last than
    in the default layout, its weight gradient most of all (about 5× for the STC gate
    shapes); the result is handed back in the default layout. The gradients are
    ``convolution_backward``'s, only those that are needed.
    """

    @staticmethod
    def forward(ctx, x, weight, groups):
        x_cl = x.contiguous(memory_format=_CL)
        ctx.save_for_backward(x_cl, weight)
        ctx.groups = groups
        pad = weight.shape[-1] // 2
        return torch.nn.functional.conv2d(x_cl, weight, padding=pad,
                                          groups=groups).contiguous()

    @staticmethod
    def backward(ctx, grad_output):
        x_cl, weight = ctx.saved_tensors
        pad = weight.shape[-1] // 2
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad_output.contiguous(memory_format=_CL), x_cl, weight, None, [1, 1],
            [pad, pad], [1, 1], False, [0, 0], ctx.groups,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        if grad_x is not None:
            grad_x = grad_x.contiguous()
        return grad_x, grad_w, None


def group_conv2d(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """Same-padded stride-1 group convolution ``(B, C, H, W) → (B, C_out, H, W)``, no bias,
    run in the channels-last layout (faster on the CPU, the same maths; the output is in
    the default layout). ``weight`` ``(C_out, C // groups, k, k)``, ``k`` odd."""
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


def stc_gates(gate_h, gate_v, *, tanh: str = "torch"):
    """``alpha = 1 + tanh(gate_h)``, ``beta = 1 + tanh(gate_v)`` (``None`` stays ``None``)."""
    fn = numpy_tanh if tanh == "numpy" else torch.tanh
    alpha = None if gate_h is None else 1.0 + fn(gate_h)
    beta = None if gate_v is None else 1.0 + fn(gate_v)
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
