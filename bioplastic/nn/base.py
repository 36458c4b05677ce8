"""The one spiking-module contract of :mod:`bioplastic.nn` and its one time loop.

Every torch neuron model (LIF, PCNN, and the models added later) is a :class:`SpikingModule`:
a thin ``torch.nn.Module`` that holds parameters; the maths is a pure step function in
:mod:`bioplastic.nn.functional` (one module per model); the time loop is
:meth:`SpikingModule.run`, written once here.

Using a spiking module
----------------------
``spikes, state = layer(x)``
    ``x`` is a whole time-major sequence ``(T, B, ...)`` (float); ``spikes`` has the same
    shape; ``state`` is the state after the last step (a NamedTuple of tensors). Pass it back
    (``layer(x2, state)``) to continue a sequence: nothing is kept on the module between calls.
``trace = layer.run(x, state=None, record=("v",))``
    The same loop, returning a :class:`SpikeTrace` ``(spikes, records, state)`` where each
    recorded state field is stacked over time, ``records["v"]`` ``(T, B, ...)``. Fields are
    only stacked when asked for.
``spikes_t, state = layer.step(x_t, state)``
    One step with explicit state (``state=None``: :meth:`initial_state` of ``x_t``'s shape).
    ``layer.run(x)`` equals a Python loop of ``layer.step`` (tested for every model).
``state = layer.initial_state(shape, *, dtype=None, device=None)``
    The rest state for one time step of input of ``shape`` (batch included, i.e.
    ``x.shape[1:]``); a tensor may be passed instead of a shape (its shape, dtype and device).

Writing a spiking module (the contract a new model follows)
-----------------------------------------------------------
1. ``bioplastic/nn/functional/<model>.py``: ``<Model>TensorState`` (a NamedTuple of tensors;
   a field may be ``None`` when the feature it serves is switched off, and the step then does
   no work for it), ``<model>_prepare(params: <Model>Params, ...) -> <Model>TensorParams``
   (tensors derived from the kernel's own ``bioplastic.neurons.<Model>Params``: the same
   NamedTuple and defaults, and decay factors computed exactly as the Numba kernel computes
   them so that float64 forward passes agree), and the pure step
   ``<model>_step(x_t, state, params, ...) -> (spikes, new_state)``, which never modifies its
   arguments and draws no random numbers.
2. ``bioplastic/nn/<model>.py``: a subclass of :class:`SpikingModule` that implements

   * ``initial_state(shape, *, dtype=None, device=None)`` (use :func:`resolve_like`);
   * ``step_params()``: the prepared tensors of one call (learned parameters mapped through
     their constraints here), computed once per :meth:`run`, so a learned time constant's
     ``exp`` costs once per sequence and autograd still sees it;
   * ``advance(x_t, state, params)``: one call of the functional step, no checks (the loop
     calls it ``T`` times);
   * optionally ``check_step(x_t)`` (shape checks of one time step, run once per call) and
     the class attributes ``state_type`` (the state NamedTuple), ``step_ndim`` (``None``:
     any number of axes, else the exact number of axes of one step, e.g. 4 for
     ``(B, C, H, W)``) and ``repr_fields`` (attribute names shown by ``repr``).

   Parameters live in ``torch.nn.Parameter`` / buffers so ``state_dict`` round-trips; options
   that change the maths (surrogate, reset mode, ...) are plain attributes shown in ``repr``.
   No hidden state between calls, no class-level registries, no plasticity in ``forward``
   (plasticity is an explicit method, e.g. ``layer.plasticity_step(...)``).

Input checks done once per call by the loop: ``x`` is a floating-point tensor (an integer
tensor is a ``TypeError``: integer voltages would silently truncate), at least ``(T, ...)``
with ``T >= 1`` (or exactly ``1 + step_ndim`` axes), and finite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["SpikingModule", "SpikeTrace", "resolve_like", "check_float_tensor", "check_like_weight",
           "format_value"]


class SpikeTrace(NamedTuple):
    """Result of :meth:`SpikingModule.run`: like :class:`bioplastic.Trace`, time-major."""

    spikes: torch.Tensor                 # (T, B, ...), 0/1 in the input's dtype
    records: dict[str, torch.Tensor]     # each recorded state field stacked over time
    state: Any                           # the state after the last step

    def __getitem__(self, key):          # trace["v"] as for bioplastic.Trace
        if isinstance(key, str):
            return self.records[key]
        return tuple.__getitem__(self, key)


def check_float_tensor(name: str, x) -> torch.Tensor:
    """``x`` as given if it is a floating-point tensor, else a clear ``TypeError``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (e.g. x.float() or "
                        f"x.double()), got dtype {x.dtype}")
    return x


def check_like_weight(name: str, x: torch.Tensor, weight: torch.Tensor, owner: str) -> None:
    """A clear error where ``x`` differs from a module's ``weight`` in dtype or device: torch's
    own ("expected scalar type Double but found Float") names neither the argument nor the fix."""
    if x.dtype != weight.dtype:
        raise TypeError(f"{name} must have the dtype of the {owner}'s weights, {weight.dtype}, "
                        f"got {x.dtype} (convert the input with .to({weight.dtype}) or build the "
                        f"{owner} with dtype={x.dtype})")
    if x.device != weight.device:
        raise ValueError(f"{name} must be on the device of the {owner}'s weights, "
                         f"{weight.device}, got {x.device} (move one with .to(device))")


def resolve_like(shape_or_tensor, dtype=None, device=None, *, default_dtype=None,
                 default_device=None) -> tuple[tuple[int, ...], torch.dtype, torch.device]:
    """``(shape, dtype, device)`` from a shape or a tensor, filling in the defaults."""
    if isinstance(shape_or_tensor, torch.Tensor):
        shape = tuple(shape_or_tensor.shape)
        dtype = shape_or_tensor.dtype if dtype is None else dtype
        device = shape_or_tensor.device if device is None else device
    else:
        if isinstance(shape_or_tensor, int | np.integer):
            shape_or_tensor = (shape_or_tensor,)
        shape = tuple(int(s) for s in shape_or_tensor)
        if any(s < 0 for s in shape):
            raise ValueError(f"shape must hold sizes >= 0, got {shape_or_tensor!r}")
    dtype = (default_dtype or torch.get_default_dtype()) if dtype is None else dtype
    device = (default_device or torch.device("cpu")) if device is None else torch.device(device)
    return shape, dtype, device


def format_value(value) -> str:
    """Short text of a parameter for ``repr`` (4 significant digits: time constants are read
    back from float32 decay factors): scalars as numbers, arrays by shape and range."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim and value.size > 1:
        if np.all(value == value.flat[0]):
            return f"{float(value.flat[0]):.4g} (shape {value.shape})"
        return f"[{float(value.min()):.4g}..{float(value.max()):.4g}] (shape {value.shape})"
    if isinstance(value, np.ndarray | np.generic):
        value = value.item() if value.size == 1 else value
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


class SpikingModule(torch.nn.Module):
    """Base class of every spiking torch module (contract in the module docstring).

    Subclasses implement :meth:`initial_state`, :meth:`step_params` and :meth:`advance`
    (and optionally :meth:`check_step`); this class supplies :meth:`step`, :meth:`run`,
    :meth:`forward` and ``repr``.
    """

    state_type: type | None = None       # the state NamedTuple
    step_ndim: int | None = None         # axes of one time step; None: any (>= 0)
    repr_fields: tuple[str, ...] = ()    # attributes shown by repr

    # ------------------------------------------------------------------ to implement
    def initial_state(self, shape, *, dtype=None, device=None):
        """Rest state for one time step of input of ``shape`` (or shaped like a tensor)."""
        raise NotImplementedError

    def step_params(self):
        """Prepared tensors of one call (see the module docstring)."""
        raise NotImplementedError

    def advance(self, x_t: torch.Tensor, state, params):
        """One functional step ``(spikes, new_state)``; no checks."""
        raise NotImplementedError

    def check_step(self, x_t: torch.Tensor) -> None:
        """Shape checks of one time step (called once per :meth:`step` / :meth:`run`)."""

    # -------------------------------------------------------------------- provided
    def step(self, x_t: torch.Tensor, state=None):
        """One time step with explicit state. Returns ``(spikes_t, new_state)``."""
        check_float_tensor("x_t", x_t)
        if self.step_ndim is not None and x_t.ndim != self.step_ndim:
            raise ValueError(f"x_t must have {self.step_ndim} axes (one time step), got shape "
                             f"{tuple(x_t.shape)}")
        self.check_step(x_t)
        if state is None:
            state = self.initial_state(x_t)
        return self.advance(x_t, state, self.step_params())

    def run(self, x: torch.Tensor, state=None, *, record=()) -> SpikeTrace:
        """The time loop: ``x (T, B, ...)`` → :class:`SpikeTrace` (spikes, records, state).

        ``record``: names of state fields to stack over time (e.g. ``("v",)``); nothing is
        stacked unless asked for.
        """
        x = self._check_sequence(x)
        record = self._check_record(record)
        self.check_step(x[0])
        if state is None:
            state = self.initial_state(x[0])
        switched_off = [name for name in record if getattr(state, name) is None]
        if switched_off:
            raise ValueError(f"cannot record {switched_off}: switched off for these "
                             "parameters (the state holds None there)")
        params = self.step_params()
        spikes, records = [], {name: [] for name in record}
        for x_t in x:
            s, state = self.advance(x_t, state, params)
            spikes.append(s)
            for name in record:
                records[name].append(getattr(state, name))
        return SpikeTrace(torch.stack(spikes), {k: torch.stack(v) for k, v in records.items()},
                          state)

    def forward(self, x: torch.Tensor, state=None):
        """Whole sequence ``x (T, B, ...)``. Returns ``(spikes (T, B, ...), final_state)``."""
        trace = self.run(x, state)
        return trace.spikes, trace.state

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={format_value(getattr(self, name))}"
                         for name in self.repr_fields)

    # ------------------------------------------------------------------- helpers
    def _check_sequence(self, x) -> torch.Tensor:
        check_float_tensor("x", x)
        if self.step_ndim is None:
            if x.ndim < 1 or x.shape[0] == 0:
                raise ValueError("x must be time-major with shape (T, ...), T >= 1, got "
                                 f"{tuple(x.shape)}")
        elif x.ndim != self.step_ndim + 1 or x.shape[0] == 0:
            raise ValueError(f"x must be time-major with {self.step_ndim + 1} axes (T, B, ...), "
                             f"T >= 1, got {tuple(x.shape)}")
        # One reduction first (no (T, ...) temporary): a finite sum means finite entries;
        # the elementwise check runs only when the sum is not finite (inf, NaN or overflow).
        if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
            raise ValueError("x must contain only finite values")
        return x

    def _check_record(self, record) -> tuple[str, ...]:
        if isinstance(record, str):
            record = (record,)
        record = tuple(record)
        fields = getattr(self.state_type, "_fields", None)
        if fields is not None:
            unknown = [name for name in record if name not in fields]
            if unknown:
                raise ValueError(f"record must name fields of {self.state_type.__name__} "
                                 f"{fields}, got {unknown}")
        return record
