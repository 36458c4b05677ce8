"""LIF neurons as a torch module, trained with surrogate gradients.

A thin :class:`~bioplastic.nn.base.SpikingModule` over
:func:`bioplastic.nn.functional.lif_step` (read :mod:`bioplastic.nn.functional.lif` for the
equations): the parameters are the Numba kernel's own :class:`bioplastic.neurons.LIFParams`
(same fields, same defaults — e.g. ``t_ref_ms = 2``), so in float64 the forward pass equals
:func:`bioplastic.run_lif`: bit for bit without recurrence, to summation round-off with
recurrence.

Units: like the kernel, voltages are in mV and times in ms (``dt_ms = 0.1`` by default). For
an snnTorch-style unitless neuron use :meth:`LIF.from_beta` (or
``bioplastic.nn.functional.LIF_UNITLESS``): ``dt = 1`` step, rest = reset = 0, threshold 1,
no refractory period. The mapping to ``snntorch.Leaky(beta)``: the decay is
``beta = exp(-dt_ms/tau_m_ms)``; this module integrates ``v ← beta v + (1 - beta) x``
(``x`` is the steady-state target, as in the kernel), snnTorch ``v ← beta v + I``, so feed
``x = I / (1 - beta)`` for the same membrane; the reset is to ``v_reset`` in the step of the
spike (snnTorch's ``reset_mechanism="zero"`` applies it one step later, and its default
``"subtract"`` subtracts the threshold instead).

Choices (options): parameters are scalars or arrays broadcastable to the neuron shape;
``learn_tau_m=True`` makes the membrane time constant a trainable parameter (kept positive via
its logarithm); delays are not supported here (use the Numba kernel).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._validate import positive_int
from ..neurons.lif import LIFParams
from .base import SpikeTrace, SpikingModule, format_value
from .functional.lif import (
    LIF_UNITLESS,
    LIFTensorParams,
    LIFTensorState,
    check_lif_params,
    lif_initial_state,
    lif_sequence,
    lif_sequence_applies,
    lif_step,
)
from .surrogate import SURROGATES

__all__ = ["LIF", "LIFTensorState"]


def _buffer(value, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype)


class LIF(SpikingModule):
    """Leaky integrate-and-fire neurons (elementwise over any neuron shape).

    ``spikes, state = lif(x)`` on ``x (T, ...)`` in mV; ``lif.run(x, record=("v",))``;
    ``lif.step(x_t, state)`` (see :mod:`bioplastic.nn.base`).

    Parameters
    ----------
    params : LIFParams, optional
        The kernel's parameters (default ``LIFParams()``); scalars or arrays broadcastable to
        the neuron shape (``dt_ms`` scalar).
    **fields
        Any field of :class:`LIFParams` (``tau_m_ms=5.0``, ...), overriding ``params``.
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

    state_type = LIFTensorState
    repr_fields = ("n_recurrent", "surrogate", "surrogate_scale", "detach_reset",
                   "learn_tau_m")

    def __init__(self, params: LIFParams | None = None, *, n_recurrent: int | None = None,
                 surrogate: str = "fast_sigmoid", surrogate_scale: float = 10.0,
                 detach_reset: bool = False, learn_tau_m: bool = False,
                 dtype: torch.dtype = torch.float32, **fields):
        super().__init__()
        params = LIFParams() if params is None else params
        unknown = set(fields) - set(LIFParams._fields)
        if unknown:
            raise TypeError(f"unknown LIF parameters {sorted(unknown)}; the fields are "
                            f"{LIFParams._fields}")
        params = params._replace(**fields) if isinstance(params, LIFParams) else params
        checked = check_lif_params(params)
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {surrogate!r}")
        if not (surrogate_scale > 0 and math.isfinite(surrogate_scale)):
            raise ValueError(f"surrogate_scale must be finite and > 0, got {surrogate_scale!r}")
        self.dt_ms = checked.dt_ms
        self.surrogate, self.surrogate_scale = surrogate, float(surrogate_scale)
        self.detach_reset, self.learn_tau_m = bool(detach_reset), bool(learn_tau_m)
        self.register_buffer("decay_theta", _buffer(checked.decay_theta, dtype))
        if learn_tau_m:
            self.log_tau_m_ms = torch.nn.Parameter(_buffer(np.log(checked.tau_m_ms), dtype))
        else:
            self.register_buffer("decay_m", _buffer(checked.decay_m, dtype))
        for name in ("v_rest", "v_reset", "v_th", "theta_plus"):
            self.register_buffer(name, _buffer(getattr(checked, name), dtype))
        self.register_buffer("ref_steps", torch.as_tensor(checked.ref_steps))
        self.n_recurrent = n_recurrent
        if n_recurrent is not None:
            self.n_recurrent = n_recurrent = positive_int("n_recurrent", n_recurrent)
            self.recurrent_weight = torch.nn.Parameter(
                torch.zeros(n_recurrent, n_recurrent, dtype=dtype))

    @classmethod
    def from_beta(cls, beta: float = 0.9, *, threshold: float = 1.0, **options) -> LIF:
        """Unitless, snnTorch-style LIF: ``v ← beta v + (1 - beta) x``, threshold, reset to 0.

        ``dt = 1`` (time counted in steps), ``tau_m = -1/ln(beta)`` steps, no refractory
        period, no adaptation (:data:`bioplastic.nn.functional.LIF_UNITLESS`); the decay
        equals ``beta`` to round-off. See the module docstring for the mapping of inputs.
        """
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must lie in (0, 1), got {beta!r}")
        params = LIF_UNITLESS._replace(tau_m_ms=-1.0 / math.log(beta), v_th_mv=float(threshold))
        return cls(params, **options)

    @property
    def params(self) -> LIFParams:
        """The current parameters as :class:`LIFParams`, read from the buffers (so after
        ``load_state_dict`` too); time constants are recovered from the decay factors (or the
        learned ``log_tau_m_ms``), to round-off."""
        def value(t):
            a = t.detach().cpu().double().numpy()
            return float(a) if a.ndim == 0 else a

        def tau(decay):
            return value(-self.dt_ms / torch.log(decay.detach().double()))

        tau_m = (value(torch.exp(self.log_tau_m_ms)) if self.learn_tau_m
                 else tau(self.decay_m))
        tau_theta = tau(self.decay_theta)
        return LIFParams(tau_m_ms=tau_m, v_rest_mv=value(self.v_rest),
                         v_reset_mv=value(self.v_reset), v_th_mv=value(self.v_th),
                         t_ref_ms=value(self.ref_steps.double() * self.dt_ms),
                         tau_theta_ms=tau_theta, theta_plus_mv=value(self.theta_plus),
                         dt_ms=self.dt_ms)

    def extra_repr(self) -> str:
        fields = ", ".join(f"{k}={format_value(v)}" for k, v in self.params._asdict().items())
        options = ", ".join(f"{k}={format_value(getattr(self, k))}" for k in self.repr_fields)
        return f"{fields}, {options}"

    def membrane_decay(self) -> torch.Tensor:
        """``exp(-dt/tau_m)`` (differentiable in ``tau_m`` when it is learned)."""
        if self.learn_tau_m:
            return torch.exp(-self.dt_ms / torch.exp(self.log_tau_m_ms))
        return self.decay_m

    def step_params(self) -> LIFTensorParams:
        return LIFTensorParams(
            decay_m=self.membrane_decay(), decay_theta=self.decay_theta, v_rest=self.v_rest,
            v_reset=self.v_reset, v_th=self.v_th,
            theta_plus=self.theta_plus if bool(self.theta_plus.any()) else None,
            ref_steps=self.ref_steps if bool(self.ref_steps.any()) else None)

    def initial_state(self, shape, *, v0_mv=None, dtype=None, device=None) -> LIFTensorState:
        """Rest state for one time step of ``shape`` (``v = v_rest`` unless ``v0_mv``)."""
        return lif_initial_state(shape, self.step_params(), v0_mv=v0_mv, dtype=dtype,
                                 device=device)

    def check_step(self, x_t: torch.Tensor) -> None:
        if self.n_recurrent is not None and (x_t.ndim < 1 or x_t.shape[-1] != self.n_recurrent):
            raise ValueError(f"x must end with the {self.n_recurrent} recurrent neurons, got "
                             f"a step of shape {tuple(x_t.shape)}")

    def advance(self, x_t: torch.Tensor, state: LIFTensorState, params: LIFTensorParams):
        return lif_step(x_t, state, params,
                        recurrent_weight=None if self.n_recurrent is None
                        else self.recurrent_weight,
                        surrogate=self.surrogate, surrogate_scale=self.surrogate_scale,
                        detach_reset=self.detach_reset)

    def run(self, x: torch.Tensor, state: LIFTensorState | None = None, *,
            record=()) -> SpikeTrace:
        """The time loop (:meth:`SpikingModule.run`). Without recurrence, refractory period,
        adaptation and records, the whole sequence is one
        :func:`~bioplastic.nn.functional.lif_sequence` call: the same spikes and state, the
        same gradients, in a fraction of the time."""
        record = self._check_record(record)
        x, state, params = self._prepare_run(x, state)
        if record or self.n_recurrent is not None or not lif_sequence_applies(params, state):
            return self._time_loop(x, state, params, record)
        spikes, state = lif_sequence(x, state, params, surrogate=self.surrogate,
                                     surrogate_scale=self.surrogate_scale,
                                     detach_reset=self.detach_reset)
        return SpikeTrace(spikes, {}, state)
