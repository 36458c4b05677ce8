"""LIF neurons as a pure torch step: the maths of :class:`bioplastic.nn.LIF`.

The same neuron and the same :class:`bioplastic.neurons.LIFParams` (same fields, same
defaults) as the Numba kernel :mod:`bioplastic.neurons.lif` — read its docstring for the
equations and the Schedule. One step, elementwise over any neuron shape (batch included)::

    refractory  = steps since the last spike < ref_steps           (only if t_ref > 0)
    v           = ((v*e + v_rest) + (-v_rest - x)*e) + x           where not refractory
    theta       = theta * decay_theta                              (only if adaptive)
    s           = H(v - (v_th + theta))  and not refractory        strict >, surrogate backward
    v          += (s @ W.T) * (not refractory and not spiked)      (zero-delay recurrence, opt.)
    v           = v*(1 - s) + v_reset*s ;  theta += theta_plus*s   (reset)

``e = exp(-dt/tau_m)`` is computed by :func:`lif_prepare` with the kernel's own NumPy
expression (:func:`bioplastic.neurons.lif.decay_factor`), so in float64 and without
recurrence the step equals the kernel bit for bit; with recurrence a matrix product sums in
another order than the kernel's sequential delivery (round-off). The reset written
``v*(1 - s) + v_reset*s`` equals the kernel's assignment for ``s`` in {0, 1} and lets
gradients flow through ``s`` (``detach_reset=True`` stops them).

Work that is switched off costs nothing: with every ``t_ref_ms == 0`` the state has
``since_spike=None`` and no refractory mask is computed; with every ``theta_plus_mv == 0`` the
state has ``theta=None`` and no threshold adaptation is computed. A caller-made state with a
``theta`` tensor is still decayed (an initial adaptation with ``theta_plus = 0``).

Whole sequences: :func:`lif_sequence` runs ``T`` steps of :func:`lif_step` as one autograd
node when there is no recurrence, no refractory period and no adaptation (the common
training case; :func:`lif_sequence_applies` says when). Its forward pass does the same
operations in the same order as :func:`lif_step` (so the spikes and voltages are
bit-identical) but without building a graph, keeping only the pre-reset voltages; its backward
pass is the same chain rule written by hand, two tensor operations per step::

    g_u[t]   = g_v[t] * A[t] + g_s[t] * sg[t]     A = (1 - s) + (v_reset - u) * sg
    g_v[t-1] = g_u[t] * e                          (A = 1 - s with detach_reset)
    g_x[t]   = g_u[t] - g_u[t] * e

with ``u`` the pre-reset voltage, ``sg`` the surrogate derivative at ``u - v_th`` and
``g_s`` the gradient arriving at the spikes; a learned ``e`` collects
``Σ g_u[t] * v[t-1] + g_u[t] * (-v_rest - x[t])``. The gradients equal autograd's through
:func:`lif_step` to float round-off (tested in float64). The backward pass runs without a
graph: second derivatives through it are not available (use a loop of :func:`lif_step`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..._validate import (
    finite_float,
    non_negative,
    positive,
    refuse_boolean,
    unitless,
    whole_steps,
)
from ...neurons.lif import NEVER_SPIKED, LIFParams, check_reset_below_threshold, decay_factor
from ..base import resolve_like
from ..surrogate import spike

__all__ = ["LIFTensorParams", "LIFTensorState", "lif_prepare", "lif_initial_state",
           "lif_step", "lif_sequence", "lif_sequence_applies", "LIF_UNITLESS"]

#: A unitless, snnTorch-style preset: ``dt = 1`` (time in steps), rest and reset 0,
#: threshold 1, no refractory period, no adaptation; ``tau_m_ms`` is in steps here
#: (``beta = exp(-1/tau_m_ms)``; see :meth:`bioplastic.nn.LIF.from_beta`).
LIF_UNITLESS = LIFParams(tau_m_ms=10.0, v_rest_mv=0.0, v_reset_mv=0.0, v_th_mv=1.0,
                         t_ref_ms=0.0, theta_plus_mv=0.0, dt_ms=1.0)


class LIFTensorState(NamedTuple):
    v: torch.Tensor                      # membrane potential, neuron shape (batch included), mV
    theta: torch.Tensor | None           # threshold adaptation, mV; None: adaptation off
    since_spike: torch.Tensor | None     # steps since the last spike (int64); None: no t_ref


class LIFTensorParams(NamedTuple):
    """What :func:`lif_step` reads: tensors broadcastable to the neuron shape."""

    decay_m: torch.Tensor                # exp(-dt/tau_m)
    decay_theta: torch.Tensor            # exp(-dt/tau_theta)
    v_rest: torch.Tensor
    v_reset: torch.Tensor
    v_th: torch.Tensor
    theta_plus: torch.Tensor | None      # None: every theta_plus is 0 (adaptation off)
    ref_steps: torch.Tensor | None       # int64; None: every t_ref is 0


def finite_array(name: str, value) -> np.ndarray:
    """``value`` (a number, an array or a Brian2 quantity) as a finite float64 array in mV.
    ``True`` is a ``TypeError``, as in the kernel's ``per_unit``: a flag passed in a number's
    place, not the number 1."""
    refuse_boolean(name, value)
    value = unitless(name, value)                                 # Brian2 quantity -> mV
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


def _tensor(value, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype=dtype, device=device)


class CheckedLIF(NamedTuple):
    """Validated float64 arrays of a :class:`LIFParams` (decays as the kernel computes them)."""

    dt_ms: float
    tau_m_ms: np.ndarray
    decay_m: np.ndarray
    decay_theta: np.ndarray
    v_rest: np.ndarray
    v_reset: np.ndarray
    v_th: np.ndarray
    theta_plus: np.ndarray
    ref_steps: np.ndarray


def check_lif_params(params: LIFParams) -> CheckedLIF:
    """Validate ``params`` (scalars or arrays broadcastable to the neuron shape)."""
    if not isinstance(params, LIFParams):
        raise TypeError(f"params must be bioplastic.neurons.LIFParams, got "
                        f"{type(params).__name__}")
    dt_ms = positive("dt_ms", finite_float("dt_ms", params.dt_ms))
    tau_m = np.asarray(positive("tau_m_ms", params.tau_m_ms), dtype=np.float64)
    tau_theta = positive("tau_theta_ms", params.tau_theta_ms, allow_inf=True)
    v_reset = finite_array("v_reset_mv", params.v_reset_mv)
    v_th = finite_array("v_th_mv", params.v_th_mv)
    check_reset_below_threshold(v_reset, v_th)
    theta_plus = finite_array("theta_plus_mv", params.theta_plus_mv)
    non_negative("theta_plus_mv", theta_plus)    # as the kernel: < 0 lowers v_th per spike
    return CheckedLIF(
        dt_ms=dt_ms, tau_m_ms=tau_m,
        # Same NumPy expression as the kernel's lif_prepare: bit-identical decays.
        decay_m=decay_factor(dt_ms, tau_m), decay_theta=decay_factor(dt_ms, tau_theta),
        v_rest=finite_array("v_rest_mv", params.v_rest_mv), v_reset=v_reset, v_th=v_th,
        theta_plus=theta_plus,
        ref_steps=whole_steps("t_ref_ms", params.t_ref_ms, dt_ms))


def lif_prepare(params: LIFParams | None = None, *, dtype=torch.float64,
                device=None) -> LIFTensorParams:
    """Tensors for :func:`lif_step` from the kernel's :class:`LIFParams` (default: its defaults)."""
    c = check_lif_params(LIFParams() if params is None else params)
    return LIFTensorParams(
        decay_m=_tensor(c.decay_m, dtype, device),
        decay_theta=_tensor(c.decay_theta, dtype, device),
        v_rest=_tensor(c.v_rest, dtype, device), v_reset=_tensor(c.v_reset, dtype, device),
        v_th=_tensor(c.v_th, dtype, device),
        theta_plus=_tensor(c.theta_plus, dtype, device) if np.any(c.theta_plus) else None,
        ref_steps=torch.as_tensor(c.ref_steps, device=device) if np.any(c.ref_steps) else None)


def lif_initial_state(shape, params: LIFTensorParams, *, v0_mv=None, theta0_mv=None,
                      dtype=None, device=None) -> LIFTensorState:
    """Rest state for one time step of ``shape`` (or shaped like a tensor).

    ``v = v0_mv`` (default ``v_rest``); ``theta`` is zeros when adaptation is on (or
    ``theta0_mv`` if given), else ``None``; ``since_spike`` "never spiked" when a refractory
    period is set, else ``None``.
    """
    shape, dtype, device = resolve_like(shape, dtype, device, default_dtype=params.v_rest.dtype,
                                        default_device=params.v_rest.device)
    v0 = params.v_rest if v0_mv is None else torch.as_tensor(v0_mv)
    v = torch.broadcast_to(v0.to(dtype=dtype, device=device), shape).clone()
    theta = None
    if theta0_mv is not None or params.theta_plus is not None:
        theta0 = torch.as_tensor(0.0 if theta0_mv is None else theta0_mv)
        theta = torch.broadcast_to(theta0.to(dtype=dtype, device=device), shape).clone()
    since = None
    if params.ref_steps is not None:
        since = torch.full(shape, -NEVER_SPIKED, dtype=torch.int64, device=device)
    return LIFTensorState(v, theta, since)


def lif_step(x_t: torch.Tensor, state: LIFTensorState, params: LIFTensorParams | LIFParams, *,
             recurrent_weight: torch.Tensor | None = None, surrogate: str = "fast_sigmoid",
             surrogate_scale: float = 10.0,
             detach_reset: bool = False) -> tuple[torch.Tensor, LIFTensorState]:
    """One LIF step (module docstring). Arguments are not modified.

    Parameters
    ----------
    x_t : tensor, neuron shape (batch included)
        External drive in mV (added to ``v_rest`` as the steady-state target).
    state : LIFTensorState
    params : LIFTensorParams (from :func:`lif_prepare`) or LIFParams (prepared on the fly)
    recurrent_weight : tensor (n, n) = (n_post, n_pre), optional
        Zero-delay recurrent weights of a flat layer of n neurons (last axis of ``x_t``).
    surrogate, surrogate_scale : see :func:`bioplastic.nn.spike`
    detach_reset : stop gradients through the reset

    Returns
    -------
    spikes : tensor like ``x_t`` (0/1), new_state : LIFTensorState
    """
    if isinstance(params, LIFParams):
        params = lif_prepare(params, dtype=x_t.dtype, device=x_t.device)
    refractory = params.ref_steps is not None
    if refractory and state.since_spike is None:
        raise ValueError("state.since_spike is None but t_ref_ms > 0: build the state with "
                         "the same parameters (initial_state)")
    if params.theta_plus is not None and state.theta is None:
        raise ValueError("state.theta is None but theta_plus_mv != 0: build the state with "
                         "the same parameters (initial_state)")
    e = params.decay_m
    v = ((state.v * e + params.v_rest) + ((-params.v_rest) - x_t) * e) + x_t
    if refractory:
        not_ref = state.since_spike >= params.ref_steps
        v = torch.where(not_ref, v, state.v)
    theta = None if state.theta is None else state.theta * params.decay_theta
    threshold = params.v_th if theta is None else params.v_th + theta
    s = spike(v - threshold, surrogate=surrogate, scale=surrogate_scale)
    if refractory:
        s = s * not_ref.to(v.dtype)
    spiked = s > 0
    if recurrent_weight is not None:
        receives = ~spiked if not refractory else not_ref & ~spiked
        v = v + (s @ recurrent_weight.T) * receives.to(v.dtype)
    s_reset = s.detach() if detach_reset else s
    v = v * (1.0 - s_reset) + params.v_reset * s_reset
    if theta is not None and params.theta_plus is not None:
        theta = theta + params.theta_plus * s_reset
    since = state.since_spike.masked_fill(spiked, 0) + 1 if refractory else None
    return s, LIFTensorState(v, theta, since)


# ----------------------------------------------------------------------- whole sequences
def lif_sequence_applies(params: LIFTensorParams, state: LIFTensorState,
                         recurrent_weight=None) -> bool:
    """Whether :func:`lif_sequence` can run these parameters and state: no recurrence, no
    refractory period, no adaptation, and no gradient wanted for ``v_rest``, ``v_reset`` or
    ``v_th`` (the hand-written backward does not produce them)."""
    return (recurrent_weight is None and params.ref_steps is None
            and params.theta_plus is None and state.theta is None
            and state.since_spike is None
            and not any(t.requires_grad for t in (params.v_rest, params.v_reset, params.v_th)))


def _step_dtype(x, v0, e, v_rest, v_reset, v_th) -> torch.dtype:
    """The dtype :func:`lif_step`'s arithmetic gives these tensors (torch's promotion rules,
    0-dim tensors included), found on meta tensors (no computation); two steps, since the
    state's dtype may change in the first."""
    x_t, v, e, v_rest, v_reset, v_th = (torch.empty_like(t, device="meta")
                                        for t in (x[0], v0, e, v_rest, v_reset, v_th))
    for _ in range(2):
        u = ((v * e + v_rest) + ((-v_rest) - x_t) * e) + x_t
        s = u - v_th
        v = u * (1.0 - s) + v_reset * s
    return s.dtype


def _lif_sequence_forward(x, v0, e, v_rest, v_reset, v_th, *, keep: bool):
    """The forward loop (no graph): spikes (0/1 in ``x``'s dtype), final v, and the pre-reset
    voltages ``u`` if ``keep``. Each step does :func:`lif_step`'s operations in its order,
    ``u = ((v*e + v_rest) + (-v_rest - x)*e) + x`` (one addition is commuted, which is exact;
    ``+ v_rest`` is skipped when it is 0, also exact). Large temporaries are avoided: every
    fresh (T, ...) tensor costs page faults on the CPU."""
    add_rest = bool(torch.any(v_rest != 0))
    step = torch.broadcast_shapes(x.shape[1:], v0.shape, e.shape, v_rest.shape,
                                  v_reset.shape, v_th.shape)
    n_steps = x.shape[0]
    dtype = _step_dtype(x, v0, e, v_rest, v_reset, v_th)
    spikes = torch.empty((n_steps,) + step, dtype=dtype, device=x.device)
    u_all = torch.empty_like(spikes) if keep else None
    u = torch.empty(step, dtype=dtype, device=x.device)
    ve = torch.empty_like(u)
    fired = torch.empty(step, dtype=torch.bool, device=x.device)
    neg_rest = -v_rest
    v = torch.broadcast_to(v0, step)
    for t in range(n_steps):
        if keep:
            u = u_all[t]
        torch.sub(neg_rest, x[t], out=u)
        u.mul_(e)                                  # (-v_rest - x) * e
        torch.mul(v, e, out=ve)
        if add_rest:
            ve.add_(v_rest)                        # v*e + v_rest
        u.add_(ve).add_(x[t])
        torch.gt(u, v_th, out=fired)
        spikes[t].copy_(fired)
        v = torch.where(fired, v_reset, u)
    return spikes, v, u_all


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, e, v_rest, v_reset, v_th, surrogate, scale, detach_reset):
        spikes, v, u_all = _lif_sequence_forward(x, v0, e, v_rest, v_reset, v_th, keep=True)
        ctx.save_for_backward(x, v0, e, v_rest, v_reset, v_th, spikes, u_all)
        ctx.options = (surrogate, scale, detach_reset)
        return spikes, v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_v):
        from ..surrogate import SURROGATES

        x, v0, e, v_rest, v_reset, v_th, spikes, u_all = ctx.saved_tensors
        surrogate, scale, detach_reset = ctx.options
        derivative = SURROGATES[surrogate]
        want_x, want_v0, want_e = ctx.needs_input_grad[:3]
        grad_x = torch.empty_like(x) if want_x else None
        grad_e = torch.zeros_like(u_all[0]) if want_e else None
        carry = grad_v if grad_v is not None else torch.zeros_like(u_all[0])
        for t in range(u_all.shape[0] - 1, -1, -1):
            u, s = u_all[t], spikes[t]
            sg = derivative(u - v_th, scale)
            keep = 1.0 - s                         # d v[t] / d u[t] through the reset
            if not detach_reset:                   # + d v[t] / d s[t] * sg
                keep = keep + (v_reset - u) * sg
            g_u = carry * keep
            if grad_spikes is not None:
                g_u = g_u + grad_spikes[t] * sg
            carry = g_u * e                        # d L / d v[t-1]
            if want_x:
                torch.sub(g_u, carry, out=grad_x[t])
            if want_e:
                v_before = v0 if t == 0 else torch.where(spikes[t - 1] > 0, v_reset,
                                                         u_all[t - 1])
                grad_e += g_u * v_before + g_u * ((-v_rest) - x[t])
        grad_v0 = _reduce_to(carry, v0.shape).to(v0.dtype) if want_v0 else None
        grad_e = _reduce_to(grad_e, e.shape).to(e.dtype) if want_e else None
        return grad_x, grad_v0, grad_e, None, None, None, None, None, None


def _reduce_to(grad: torch.Tensor, shape) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape`` (what autograd does for broadcasting)."""
    shape = torch.Size(shape)
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=dims, keepdim=True) if dims else grad


def lif_sequence(x: torch.Tensor, state: LIFTensorState, params: LIFTensorParams, *,
                 surrogate: str = "fast_sigmoid", surrogate_scale: float = 10.0,
                 detach_reset: bool = False) -> tuple[torch.Tensor, LIFTensorState]:
    """``T`` steps of :func:`lif_step` as one autograd node (module docstring).

    Parameters
    ----------
    x : tensor (T, ...) — the drive of every step
    state : LIFTensorState — the state before the first step (``theta`` and ``since_spike``
        ``None``)
    params : LIFTensorParams — with :func:`lif_sequence_applies` true

    Returns
    -------
    spikes : tensor like ``x`` (0/1), new_state : LIFTensorState after the last step

    The spikes and the final voltage equal a loop of :func:`lif_step` bit for bit; the
    gradients (to ``x``, the initial ``v`` and a learned ``decay_m``) equal autograd's
    through that loop to round-off.
    """
    if not lif_sequence_applies(params, state):
        raise ValueError("lif_sequence needs no recurrence, refractory period or adaptation "
                         "(theta and since_spike None); use a loop of lif_step")
    args = (x, state.v, params.decay_m, params.v_rest, params.v_reset, params.v_th)
    if torch.is_grad_enabled() and any(t.requires_grad for t in args[:3]):
        spikes, v = _LIFSequence.apply(*args, surrogate, float(surrogate_scale),
                                       bool(detach_reset))
    else:
        spikes, v, _ = _lif_sequence_forward(*args, keep=False)
    return spikes, LIFTensorState(v, None, None)
