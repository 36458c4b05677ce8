"""LIF neurons as a torch module, trained with surrogate gradients.

The same neuron as :mod:`bioplastic.neurons.lif` (see its docstring for the equations and the
Schedule): exact integration written in the kernel's (Brian2's) expression form, strict ``>``
threshold, refractory clamp, adaptive threshold, reset to ``v_reset``, optional zero-delay
recurrent weights whose input is dropped at refractory or just-spiked targets. In float64 the
forward pass equals the Numba kernel: bit for bit without recurrence (decay factors are computed
in NumPy exactly as the kernel computes them), to summation round-off with recurrence (a matrix
product sums in a different order from the kernel's sequential delivery).

The reset is written ``v*(1 - s) + v_reset*s``, which equals the kernel's assignment in the
forward pass for ``s`` in {0, 1} and lets gradients flow through ``s`` (``detach_reset=True``
stops them, as is common in SNN training). The module holds parameters only; state is explicit
(:class:`LIFTensorState`) and nothing depends on a previous call.

Choices (options): parameters are scalars or tensors broadcastable to the neuron shape;
``learn_tau_m=True`` makes the membrane time constant a trainable parameter (kept positive via
its logarithm); delays are not supported here (use the Numba kernel).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._validate import finite_float, positive, unitless, whole_steps
from ..neurons.lif import NEVER_SPIKED, decay_factor
from .surrogate import spike

__all__ = ["LIF", "LIFTensorState"]


class LIFTensorState(NamedTuple):
    v: torch.Tensor              # membrane potential, neuron shape (batch included), mV
    theta: torch.Tensor          # threshold adaptation, mV
    since_spike: torch.Tensor    # steps since each neuron's last spike (int64)


def _buffer(value, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype)


class LIF(torch.nn.Module):
    """Leaky integrate-and-fire neurons (elementwise over any neuron shape).

    Parameters
    ----------
    tau_m_ms, v_rest_mv, v_reset_mv, v_th_mv, t_ref_ms, tau_theta_ms, theta_plus_mv, dt_ms
        As :class:`bioplastic.neurons.LIFParams`; scalars or arrays broadcastable to the
        neuron shape (``dt_ms`` scalar).
    n_recurrent : int, optional
        If given, neurons are a flat layer of this size with trainable zero-delay recurrent
        weights ``recurrent_weight`` of shape ``(n, n)`` = ``(n_post, n_pre)``.
    surrogate, surrogate_scale
        Surrogate derivative (see :mod:`bioplastic.nn.surrogate`).
    detach_reset : bool
        Stop gradients through the reset.
    learn_tau_m : bool
        Train ``tau_m`` (parameterised by its logarithm, so it stays positive).
    dtype : torch.dtype
    """

    def __init__(self, *, tau_m_ms=10.0, v_rest_mv=-65.0, v_reset_mv=-65.0, v_th_mv=-50.0,
                 t_ref_ms=0.0, tau_theta_ms=100.0, theta_plus_mv=0.0, dt_ms=0.1,
                 n_recurrent: int | None = None, surrogate: str = "fast_sigmoid",
                 surrogate_scale: float = 10.0, detach_reset: bool = False,
                 learn_tau_m: bool = False, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.dt_ms = positive("dt_ms", finite_float("dt_ms", dt_ms))
        tau_m = positive("tau_m_ms", tau_m_ms)
        tau_theta = positive("tau_theta_ms", tau_theta_ms, allow_inf=True)
        self.surrogate, self.surrogate_scale = surrogate, float(surrogate_scale)
        self.detach_reset, self.learn_tau_m = bool(detach_reset), bool(learn_tau_m)
        # Same NumPy expression as lif_prepare, so the decays are bit-identical to the kernel's.
        self.register_buffer("decay_theta", _buffer(decay_factor(self.dt_ms, tau_theta), dtype))
        if learn_tau_m:
            self.log_tau_m_ms = torch.nn.Parameter(_buffer(np.log(tau_m), dtype))
        else:
            self.register_buffer("decay_m", _buffer(decay_factor(self.dt_ms, tau_m), dtype))
        for name, value in (("v_rest", v_rest_mv), ("v_reset", v_reset_mv), ("v_th", v_th_mv),
                            ("theta_plus", theta_plus_mv)):
            self.register_buffer(name, _buffer(finite_array(name + "_mv", value), dtype))
        ref_steps = whole_steps("t_ref_ms", t_ref_ms, self.dt_ms)
        self.register_buffer("ref_steps", torch.as_tensor(ref_steps))
        self.n_recurrent = n_recurrent
        if n_recurrent is not None:
            if not isinstance(n_recurrent, int) or n_recurrent < 1:
                raise ValueError(f"n_recurrent must be a positive int, got {n_recurrent!r}")
            self.recurrent_weight = torch.nn.Parameter(
                torch.zeros(n_recurrent, n_recurrent, dtype=dtype))

    def membrane_decay(self) -> torch.Tensor:
        """``exp(-dt/tau_m)`` (differentiable in ``tau_m`` when it is learned)."""
        if self.learn_tau_m:
            return torch.exp(-self.dt_ms / torch.exp(self.log_tau_m_ms))
        return self.decay_m

    def initial_state(self, like: torch.Tensor, v0_mv=None) -> LIFTensorState:
        """Rest state shaped like one time step of input (``v = v_rest`` unless ``v0_mv``)."""
        v = (self.v_rest if v0_mv is None else torch.as_tensor(v0_mv, dtype=like.dtype))
        v = torch.broadcast_to(v.to(like), like.shape).clone()
        since = torch.full(like.shape, -NEVER_SPIKED, dtype=torch.int64, device=like.device)
        return LIFTensorState(v, torch.zeros_like(like), since)

    def step(self, x: torch.Tensor, state: LIFTensorState | None = None):
        """One step. ``x``: drive in mV, neuron shape. Returns ``(spikes, new_state)``."""
        if state is None:
            state = self.initial_state(x)
        not_ref = state.since_spike >= self.ref_steps
        e = self.membrane_decay()
        v_new = ((state.v * e + self.v_rest) + ((-self.v_rest) - x) * e) + x
        v = torch.where(not_ref, v_new, state.v)
        theta = state.theta * self.decay_theta
        s = spike(v - (self.v_th + theta), surrogate=self.surrogate,
                  scale=self.surrogate_scale) * not_ref.to(v.dtype)
        spiked = s > 0
        if self.n_recurrent is not None:
            receives = (not_ref & ~spiked).to(v.dtype)
            v = v + (s @ self.recurrent_weight.T) * receives
        s_reset = s.detach() if self.detach_reset else s
        v = v * (1.0 - s_reset) + self.v_reset * s_reset
        theta = theta + self.theta_plus * s_reset
        since = torch.where(spiked, torch.zeros_like(state.since_spike), state.since_spike) + 1
        return s, LIFTensorState(v, theta, since)

    def run(self, x: torch.Tensor, state: LIFTensorState | None = None):
        """Whole sequence ``x`` (T, ...). Returns ``(spikes (T, ...), v (T, ...), final state)``."""
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError("x must be time-major with shape (T, ...), T >= 1, "
                             f"got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x must contain only finite values")
        spikes, voltages = [], []
        for x_t in x:
            s, state = self.step(x_t, state)
            spikes.append(s)
            voltages.append(state.v)
        return torch.stack(spikes), torch.stack(voltages), state

    def forward(self, x: torch.Tensor, state: LIFTensorState | None = None) -> torch.Tensor:
        """Spikes for the sequence ``x`` of shape (T, ...)."""
        return self.run(x, state)[0]


def finite_array(name: str, value) -> np.ndarray:
    array = np.asarray(unitless(name, value), dtype=np.float64)   # Brian2 quantity -> mV
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array
