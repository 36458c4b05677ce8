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
with ``T >= 1`` (or exactly ``1 + step_ndim`` axes), and finite. A given state is checked by
:meth:`SpikingModule.start_state` against the layout of the module's own rest state
(:func:`check_state`); a module names in ``full_shape_state_fields`` the fields that feed a
convolution (they may not broadcast) and, if it has weights, returns their dtype from
``weight_dtype()``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .._validate import positive_int

__all__ = ["SpikingModule", "SpikeTrace", "resolve_like", "check_float_tensor", "float_dtype",
           "check_like_weight",
           "check_input_shape", "odd_kernel_size", "check_state", "state_layout", "FieldLayout",
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


def float_dtype(dtype) -> torch.dtype:
    """A module's ``dtype`` argument, checked to be a floating-point torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch dtype (e.g. torch.float32 or "
                        f"torch.float64), got {dtype!r}")
    return dtype


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


def check_input_shape(name: str, x: torch.Tensor, expected: tuple[int | str, ...], *,
                      per_step: bool = False) -> None:
    """A clear ``ValueError`` where ``x`` does not have the ``expected`` shape: an int is a
    size that must match, a str names an axis of any size (``("T", "B", 2, "H", "W")``).
    Torch's own errors ("expected input[3, 3, 8, 8] to have 2 channels") name neither the
    argument nor the layout. ``per_step``: ``x`` is one step of the caller's sequence."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(isinstance(e, int) and s != e
                                           for s, e in zip(shape, expected, strict=True)):
        layout = ", ".join(str(e) for e in expected)
        step = " per step" if per_step else ""
        raise ValueError(f"{name} must have shape ({layout}){step}, got {shape}")


def odd_kernel_size(name: str, value) -> int:
    """``value`` as an odd positive int (``same`` padding ``k // 2`` keeps the map size);
    ``TypeError`` for a non-integer, ``True`` included (see :func:`bioplastic._validate.count`)."""
    value = positive_int(name, value)
    if value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int, got {value!r}")
    return value


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


class FieldLayout(NamedTuple):
    """Shape (batch axis first, of size 0 when the step is batched), dtype and device of one
    field of a module's rest state; ``None`` stands for a field switched off."""
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


def state_layout(template) -> tuple[type, tuple[FieldLayout | None, ...]]:
    """The state class and the field layouts of a rest state (what :func:`check_state` reads)."""
    return type(template), tuple(None if t is None else FieldLayout(tuple(t.shape), t.dtype,
                                                                     t.device)
                                 for t in template)


def check_state(state, layout, batch: int | None, *, full_shape=(), dtype=None) -> None:
    """A clear error where a given ``state`` could not have come from the module whose rest
    state for a step like this one has ``layout`` (:func:`state_layout`; the step's batch size
    ``batch`` replaces the layout's batch axis unless None). A field may be any shape that
    broadcasts to the step's state shape (a learned initial membrane ``(n,)``, say) except
    those named in ``full_shape`` (they feed a convolution); floating fields must be
    floating, and of ``dtype`` when it is given (a module with weights); integer fields
    (step counters) of the layout's dtype; every tensor on the layout's device."""
    kind, fields = layout
    if not isinstance(state, kind):
        raise TypeError(f"state must be a {kind.__name__} (from initial_state or a previous "
                        f"call), got {type(state).__name__}")
    for name, given, rest in zip(kind._fields, state, fields, strict=True):
        _check_state_field(f"state.{name}", given, rest, batch, name in full_shape, dtype)


def _check_state_field(name, given, rest: FieldLayout | None, batch, full_shape, dtype) -> None:
    if rest is None or given is None:
        if rest is not given:
            what = "None (switched off for these parameters)" if rest is None else "a tensor"
            raise ValueError(f"{name} must be {what}, got {type(given).__name__}")
        return
    if not isinstance(given, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(given).__name__}")
    shape = rest.shape if batch is None else (batch,) + rest.shape[1:]
    if given.shape != shape and (full_shape or not _broadcasts_to(given.shape, shape)):
        how = "" if full_shape else " or a shape that broadcasts to it"
        raise ValueError(f"{name} must have the step's state shape {shape}{how}, got "
                         f"{tuple(given.shape)}")
    floating = rest.dtype.is_floating_point
    if given.is_floating_point() != floating:
        raise TypeError(f"{name} must have a dtype like {rest.dtype}, got {given.dtype}")
    wanted = dtype if floating else rest.dtype
    if wanted is not None and given.dtype != wanted:
        raise TypeError(f"{name} must have dtype {wanted}, got {given.dtype}")
    if given.device != rest.device:
        raise ValueError(f"{name} must be on {rest.device}, got {given.device}")


def _broadcasts_to(shape, target) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (torch's rules, in Python:
    ``torch.broadcast_shapes`` costs about 8 µs)."""
    return len(shape) <= len(target) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(target), strict=False))


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

    #: State fields that must have the step's full shape (they feed a convolution, which
    #: does not broadcast); the others may have any shape that broadcasts to it.
    full_shape_state_fields: tuple[str, ...] = ()

    def weight_dtype(self) -> torch.dtype | None:
        """The dtype the state's floating fields must have (a module with weights), or None:
        any floating dtype (torch's promotion decides)."""
        return None

    # -------------------------------------------------------------------- provided
    def start_state(self, x_t: torch.Tensor, state, params):
        """The state of the first step of ``x_t`` (``params``: :meth:`step_params` of the
        call): :meth:`initial_state` when ``state`` is None, else ``state`` itself once
        checked (:func:`check_state`) against the rest state this module makes for such a
        step, so that a state of another shape, dtype, device or model is a clear error
        rather than a silent broadcast or a torch error deep inside the step."""
        if state is None:
            return self.initial_state(x_t)
        batched = x_t.ndim > 0
        layout = self._state_layout(x_t, batched, params)
        check_state(state, layout, x_t.shape[0] if batched else None,
                    full_shape=self.full_shape_state_fields, dtype=self.weight_dtype())
        return state

    def _state_layout(self, x_t: torch.Tensor, batched: bool, params):
        """The rest state's layout for steps like ``x_t``, made once per kind of step (a rest
        state costs 10-20 µs to make, a step of a small layer about 50 µs). Which fields are
        switched off (None) follows which prepared parameters are (LIF's adaptation and
        refractory period), so that pattern is part of the key."""
        switched_off = tuple(p is None for p in params) if isinstance(params, tuple) else ()
        key = (x_t.shape[1:] if batched else (), batched, x_t.dtype, x_t.device,
               self.weight_dtype(), switched_off)
        cache = self.__dict__.setdefault("_state_layouts", {})
        if key not in cache:
            if len(cache) >= 16:
                cache.clear()
            cache[key] = state_layout(self.initial_state(x_t[:0] if batched else x_t))
        return cache[key]

    def step(self, x_t: torch.Tensor, state=None):
        """One time step with explicit state. Returns ``(spikes_t, new_state)``."""
        check_float_tensor("x_t", x_t)
        if self.step_ndim is not None and x_t.ndim != self.step_ndim:
            raise ValueError(f"x_t must have {self.step_ndim} axes (one time step), got shape "
                             f"{tuple(x_t.shape)}")
        self.check_step(x_t)
        params = self.step_params()
        return self.advance(x_t, self.start_state(x_t, state, params), params)

    def run(self, x: torch.Tensor, state=None, *, record=()) -> SpikeTrace:
        """The time loop: ``x (T, B, ...)`` → :class:`SpikeTrace` (spikes, records, state).

        ``record``: names of state fields to stack over time (e.g. ``("v",)``); nothing is
        stacked unless asked for.
        """
        record = self._check_record(record)
        x, state, params = self._prepare_run(x, state)
        return self._time_loop(x, state, params, record)

    def _prepare_run(self, x, state):
        """The checked sequence, start state and parameters of a :meth:`run` (subclasses with
        a whole-sequence path call it once, then that path or :meth:`_time_loop`)."""
        x = self._check_sequence(x)
        self.check_step(x[0])
        params = self.step_params()
        return x, self.start_state(x[0], state, params), params

    def _time_loop(self, x: torch.Tensor, state, params, record: tuple[str, ...]
                   ) -> SpikeTrace:
        """The step loop over checked input and state (see :meth:`_prepare_run`)."""
        switched_off = [name for name in record if getattr(state, name) is None]
        if switched_off:
            raise ValueError(f"cannot record {switched_off}: switched off for these "
                             "parameters (the state holds None there)")
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
