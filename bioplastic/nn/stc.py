"""STC conv cells (STC-LIF, STC-PLIF, STC-LMH), their baselines, and the dense STC layer.

Every cell is a spiking module: ``spikes, state = cell(x)`` on a time-major sequence
``(T, B, C_in, H, W)``, or ``cell.step(x_t, state)`` for one step with explicit state. The
maths is :mod:`bioplastic.nn.functional.stc`; a cell computes the input current
``I[t] = GN(Conv_x(X[t]))`` (k×k conv ``C_in → C``, no bias, GroupNorm with ``groups``
groups) and, for the STC cells, the gate arguments from the cell's **own** previous spikes::

    gate_h = GN_h(Conv_h(S[t-1]))     gate_v = GN_v(Conv_v(S[t-1]))

with ``Conv_h``, ``Conv_v`` k×k **group** convs ``C → C`` (``groups`` groups, no bias), as in
the paper's public code. ``gradient_detach=True`` feeds ``S[t-1].detach()`` to the
modulators (the code's KTH/TaxiBJ setting); the modulators still learn. ``norm=None`` drops
every GroupNorm (then ``Conv_x`` alone gives the current).

Baselines on the same conv front end: :class:`LIFConvCell` (τ = 2: ``H = 0.5 H + 0.5 I``),
:class:`PLIFConvCell` (``form="stc_code"``: ``σ(w) H + (1 − w) I`` as the STC code has it;
``"fang2021"``: ``H + (I − H) σ(w)``), :class:`TCLIFConvCell`, :class:`LMHConvCell`,
:class:`GLIFConvCell`. All use threshold 1 and the soft reset except where the functional
step says otherwise.

:class:`STCDense` is the dense / 1×1 layer without GroupNorm (input: the current ``I[t]``
``(T, B, n)``). With ``tanh="numpy"`` in float64 its forward pass equals the Numba kernel
:func:`bioplastic.neurons.run_stc` bit for bit.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as fn

from .._validate import positive_int
from ..neurons.stc import BASES, STCParams
from .base import (
    SpikeTrace,
    SpikingModule,
    check_input_shape,
    check_like_weight,
    float_dtype,
    odd_kernel_size,
    resolve_like,
)
from .functional import stc as F

__all__ = ["STCConvCell", "STCLIF", "STCPLIF", "STCLMH", "LIFConvCell", "PLIFConvCell",
           "TCLIFConvCell", "LMHConvCell", "GLIFConvCell", "STCDense", "CELLS"]


def _check_channels(name: str, channels, groups) -> None:
    channels, groups = positive_int(name, channels), positive_int("groups", groups)
    if channels % groups:
        raise ValueError(f"groups must be a positive int dividing {name}={channels}, "
                         f"got {groups!r}")


def _norm(norm, groups: int, channels: int, dtype):
    if norm is None:
        return torch.nn.Identity()
    return torch.nn.GroupNorm(groups, channels, affine=True, dtype=dtype)


class _ConvCell(SpikingModule):
    """Shared conv front end: ``I = GN(Conv_x(X))``; state shaped ``(B, hidden, H, W)``."""

    state_type = F.STCTensorState
    step_ndim = 4
    repr_fields = ("in_channels", "hidden_channels", "kernel_size", "groups", "norm")

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, *,
                 groups: int = 16, norm: str | None = "group", dtype=torch.float32):
        super().__init__()
        dtype = float_dtype(dtype)
        _check_channels("in_channels", in_channels, 1)
        _check_channels("hidden_channels", hidden_channels, groups)
        odd_kernel_size("kernel_size", kernel_size)
        if norm not in (None, "group"):
            raise ValueError(f"norm must be 'group' or None, got {norm!r}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.kernel_size, self.groups, self.norm = kernel_size, groups, norm
        self.conv_x = torch.nn.Conv2d(in_channels, hidden_channels, kernel_size,
                                      padding=kernel_size // 2, bias=False, dtype=dtype)
        self.norm_x = _norm(norm, groups, hidden_channels, dtype)

    def input_current(self, x_t: torch.Tensor) -> torch.Tensor:
        # a strided view (channels-last frames, x.permute(...)) is made contiguous: oneDNN
        # rounds a channels-last convolution differently, and the current would then be
        # channels-last too (no-op for contiguous input)
        return self.norm_x(self.conv_x(x_t.contiguous()))

    def input_currents(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`input_current` of every step, stacked ``(T, B, C, H, W)``. One call per step,
        not one over ``T·B`` samples: oneDNN's float32 convolution may sum in another order
        for another batch size (seen on small maps), and ``run`` must equal the step loop."""
        return torch.stack([self.input_current(x_t) for x_t in x])

    def sequence(self, currents, state, params):
        """Whole-sequence path (the input currents do not depend on the state):
        ``(spikes, state)`` from every step's current, when :meth:`sequence_applies`."""
        raise NotImplementedError

    def sequence_applies(self) -> bool:
        """Whether :meth:`run` may use :meth:`sequence` (else the step loop)."""
        return type(self).sequence is not _ConvCell.sequence

    def run(self, x: torch.Tensor, state=None, *, record=()) -> SpikeTrace:
        """The time loop (:meth:`SpikingModule.run`); a cell with a :meth:`sequence` runs
        the whole sequence in one call when nothing is recorded (same spikes and state,
        same gradients to round-off)."""
        record = self._check_record(record)
        x, state, params = self._prepare_run(x, state)
        if record or not self.sequence_applies():
            return self._time_loop(x, state, params, record)
        spikes, state = self.sequence(self.input_currents(x), state, params)
        return SpikeTrace(spikes, {}, state)

    #: What else a GroupNorm over single elements blinds (:meth:`check_step`'s warning).
    single_element_note = ""

    def check_step(self, x_t: torch.Tensor) -> None:
        check_input_shape("x", x_t, ("B", self.in_channels, "H", "W"), per_step=True)
        check_like_weight("x", x_t, self.conv_x.weight, type(self).__name__)
        if (self.norm is not None and self.hidden_channels == self.groups
                and x_t.shape[-1] * x_t.shape[-2] == 1):
            warnings.warn("GroupNorm with one channel per group on a 1×1 map normalises every "
                          "element to 0: the input current is then the constant GroupNorm "
                          "bias, the same for every input, so the cell is blind to its input"
                          f"{self.single_element_note}; use norm=None or fewer groups",
                          RuntimeWarning, stacklevel=3)

    def weight_dtype(self) -> torch.dtype:
        return self.conv_x.weight.dtype

    def _state_shape(self, shape, dtype, device):
        shape, dtype, device = resolve_like(shape, dtype, device,
                                            default_dtype=self.conv_x.weight.dtype,
                                            default_device=self.conv_x.weight.device)
        if len(shape) != 4:
            raise ValueError(f"shape must be one step (B, C, H, W), got {shape}")
        return (shape[0], self.hidden_channels) + tuple(shape[2:]), dtype, device

    def initial_state(self, shape, *, dtype=None, device=None):
        shape, dtype, device = self._state_shape(shape, dtype, device)
        zeros = torch.zeros(shape, dtype=dtype, device=device)
        ones = torch.ones(shape, dtype=dtype, device=device)
        return F.STCTensorState(zeros, zeros.clone(), zeros.clone(), ones, ones.clone())

    def _constants(self, variant: int, k_h, k_i, lmh=None) -> F.STCTensorParams:
        one = self.conv_x.weight.new_ones(())
        c = lmh if lmh is not None else (one * 0.0,) * 2 + (one,) * 2
        return F.STCTensorParams(variant, one, k_h, k_i, *c)


class STCConvCell(_ConvCell):
    """Autaptic STC conv cell (``base``: ``"lif"``, ``"plif"`` or ``"lmh"``).

    Parameters
    ----------
    in_channels, hidden_channels : int
    kernel_size : int
        Odd; the code uses 5 (``filter_size``).
    groups : int
        Groups of the modulator convs and of every GroupNorm (16 in the code); must divide
        ``hidden_channels``.
    norm : "group" or None
    gradient_detach : bool
        Modulators read ``S[t-1].detach()``.
    base : str
    tanh : "sigmoid", "torch" or "numpy"
        How the gates ``1 + tanh(x)`` are evaluated (:func:`bioplastic.nn.functional.stc_gates`):
        ``"sigmoid"`` (default) as the identical ``2σ(2x)``, faster on the CPU and accurate
        where a gate nears 0; ``"torch"`` literally with torch's ``tanh`` (the paper code's
        form and the earlier default: the same model, round-off apart); ``"numpy"`` as the
        Numba kernel does (CPU round trip; for exact comparisons only, step loop).
    surrogate_scale : float
        α of the sigmoid surrogate (4 in the code).
    """

    repr_fields = _ConvCell.repr_fields + ("base", "gradient_detach")
    full_shape_state_fields = ("s",)        # the gate convolution reads S[t-1]
    single_element_note = (", and every modulator output is 0 too: the gates are constant "
                           "(1 + tanh(bias)) and the modulators learn nothing")

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, *,
                 groups: int = 16, norm: str | None = "group", gradient_detach: bool = False,
                 base: str = "lif", tanh: str = "sigmoid", surrogate_scale: float = 4.0,
                 dtype=torch.float32):
        super().__init__(in_channels, hidden_channels, kernel_size, groups=groups, norm=norm,
                         dtype=dtype)
        if base not in BASES:
            raise ValueError(f"base must be one of {sorted(BASES)}, got {base!r}")
        if tanh not in F.TANH_FORMS:
            raise ValueError(f"tanh must be one of {F.TANH_FORMS}, got {tanh!r}")
        self.base, self.gradient_detach, self.tanh = base, bool(gradient_detach), tanh
        self.surrogate_scale = float(surrogate_scale)
        conv = dict(padding=kernel_size // 2, groups=groups, bias=False, dtype=dtype)
        self.conv_h = torch.nn.Conv2d(hidden_channels, hidden_channels, kernel_size, **conv)
        self.conv_v = torch.nn.Conv2d(hidden_channels, hidden_channels, kernel_size, **conv)
        self.norm_h = _norm(norm, groups, hidden_channels, dtype)
        self.norm_v = _norm(norm, groups, hidden_channels, dtype)
        if base == "plif":
            self.plif_w = torch.nn.Parameter(torch.zeros((), dtype=dtype))
        if base == "lmh":
            self.lmh = torch.nn.Parameter(torch.zeros(4, dtype=dtype))   # d_u, s_u, d_p, s_p

    def step_params(self) -> F.STCTensorParams:
        one = self.conv_x.weight.new_ones(())
        if self.base == "plif":
            k = torch.sigmoid(self.plif_w)
            return self._constants(BASES["plif"], k, 1.0 - k)
        if self.base == "lmh":
            sig = torch.sigmoid(self.lmh)
            return self._constants(BASES["lmh"], one, one,
                                   (sig[0] - 0.5, sig[1] - 0.5, sig[2] + 0.5, sig[3] + 0.5))
        return self._constants(BASES["lif"], one, one)

    def gate_arguments(self, s_prev: torch.Tensor):
        """``(GN_h(Conv_h(S)), GN_v(Conv_v(S)))`` computed as one group conv and one GroupNorm.

        The two group convs read the same spikes, so their weights are interleaved per group
        into one ``C → 2C`` conv (group ``g`` outputs its ``Conv_h`` then its ``Conv_v``
        channels), and the two GroupNorms become one with ``2·groups`` groups over that
        layout; the same maths in half the calls.
        """
        s_prev = s_prev.detach() if self.gradient_detach else s_prev
        g, c = self.groups, self.hidden_channels
        weight, gamma, beta = self.fused_gate_parameters()
        out = F.group_conv2d(s_prev, weight, g)
        if gamma is not None:
            out = fn.group_norm(out, 2 * g, gamma, beta, self.norm_h.eps)
        out = out.view(out.shape[0], g, 2, c // g, *out.shape[2:])
        shape = (out.shape[0], c) + tuple(out.shape[-2:])
        return out[:, :, 0].reshape(shape), out[:, :, 1].reshape(shape)

    def fused_gate_parameters(self):
        """``(weight (2C, C/groups, k, k), gamma (2C,), beta (2C,))`` of the interleaved gate
        conv and GroupNorm (:meth:`gate_arguments`); ``gamma = beta = None`` without norm."""
        g, c, k = self.groups, self.hidden_channels, self.kernel_size
        weight = torch.stack([self.conv_h.weight.view(g, c // g, c // g, k, k),
                              self.conv_v.weight.view(g, c // g, c // g, k, k)], 1)
        weight = weight.reshape(2 * c, c // g, k, k)
        if self.norm is None:
            return weight, None, None
        gamma, beta = [torch.stack([getattr(self.norm_h, a).view(g, c // g),
                                    getattr(self.norm_v, a).view(g, c // g)], 1).reshape(2 * c)
                       for a in ("weight", "bias")]
        return weight, gamma, beta

    def sequence_applies(self) -> bool:
        return self.base in ("lif", "plif") and self.tanh in ("torch", "sigmoid")

    def sequence(self, currents, state, params):
        weight, gamma, beta = self.fused_gate_parameters()
        return F.stc_conv_sequence(currents, state, params, weight, gamma, beta, self.groups,
                                   eps=self.norm_h.eps if gamma is not None else 1e-5,
                                   gradient_detach=self.gradient_detach,
                                   scale=self.surrogate_scale, tanh=self.tanh)

    def advance(self, x_t, state, params):
        gate_h, gate_v = self.gate_arguments(state.s)
        return F.stc_step(self.input_current(x_t), state, params, gate_h, gate_v,
                          scale=self.surrogate_scale, tanh=self.tanh)


class STCLIF(STCConvCell):
    """STC-LIF conv cell (see :class:`STCConvCell`)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, base="lif", **kw)


class STCPLIF(STCConvCell):
    """STC-PLIF conv cell: ``σ(w)·α⊙H + (1 − σ(w))·β⊙I``, ``w`` learned (init 0)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, base="plif", **kw)


class STCLMH(STCConvCell):
    """STC-LMH conv cell: LM-H with the gates (``d_u, s_u, d_p, s_p`` learned, init 0)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, base="lmh", **kw)


# ---------------------------------------------------------------------------- baselines
class LIFConvCell(_ConvCell):
    """LIF with τ = 2 as in the STC code: ``H = 0.5 H + 0.5 I``, threshold 1, soft reset."""

    def step_params(self) -> F.STCTensorParams:
        half = self.conv_x.weight.new_full((), 0.5)
        return self._constants(BASES["lif"], half, half)

    def advance(self, x_t, state, params):
        return F.stc_step(self.input_current(x_t), state, params)

    def sequence(self, currents, state, params):
        return F.stc_sequence(currents, state, params)


class PLIFConvCell(_ConvCell):
    """PLIF; ``form="stc_code"``: ``σ(w) H + (1 − w) I`` (the STC code's baseline, as written
    there), ``"fang2021"``: ``H + (I − H) σ(w)`` (Fang et al.). ``w`` learned, init 0."""

    repr_fields = _ConvCell.repr_fields + ("form",)

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, *,
                 form: str = "stc_code", **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, **kw)
        if form not in ("stc_code", "fang2021"):
            raise ValueError(f"form must be 'stc_code' or 'fang2021', got {form!r}")
        self.form = form
        self.w = torch.nn.Parameter(self.conv_x.weight.new_zeros(()))

    def step_params(self) -> F.STCTensorParams:
        return self._constants(BASES["plif"], torch.sigmoid(self.w), 1.0 - self.w)

    def advance(self, x_t, state, params):
        if self.form == "fang2021":
            return F.plif_fang_step(self.input_current(x_t), state, self.w)
        return F.stc_step(self.input_current(x_t), state, params)

    def sequence(self, currents, state, params):
        if self.form == "fang2021":
            return F.plif_fang_sequence(currents, state, self.w)
        return F.stc_sequence(currents, state, params)


class LMHConvCell(_ConvCell):
    """LM-H: two compartments, ``d_u, s_u, d_p, s_p`` learned (init 0), detached reset."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, **kw)
        self.lmh = torch.nn.Parameter(self.conv_x.weight.new_zeros(4))

    def step_params(self) -> F.STCTensorParams:
        sig = torch.sigmoid(self.lmh)
        one = self.conv_x.weight.new_ones(())
        return self._constants(BASES["lmh"], one, one,
                               (sig[0] - 0.5, sig[1] - 0.5, sig[2] + 0.5, sig[3] + 0.5))

    def advance(self, x_t, state, params):
        return F.stc_step(self.input_current(x_t), state, params)


class TCLIFConvCell(_ConvCell):
    """TC-LIF: ``t_m, s_u, s_p`` learned scalars (init 0); reset one step late."""

    state_type = F.TCLIFTensorState

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, **kw)
        self.tc = torch.nn.Parameter(self.conv_x.weight.new_zeros(3))   # t_m, s_u, s_p

    def initial_state(self, shape, *, dtype=None, device=None):
        shape, dtype, device = self._state_shape(shape, dtype, device)
        zeros = torch.zeros(shape, dtype=dtype, device=device)
        return F.TCLIFTensorState(zeros, zeros.clone(), zeros.clone())

    def step_params(self):
        return self.tc

    def advance(self, x_t, state, params):
        return F.tclif_step(self.input_current(x_t), state, params[0], params[1], params[2])


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class GLIFConvCell(_ConvCell):
    """GLIF (``LIFSpike_CW``): channel-wise τ, V_th, leak, V_reset, conductance, each
    ``sigmoid`` of a learned logit (init 0.25, 0.5, 0.0625, 0.5, 0.5), static gates."""

    state_type = F.GLIFTensorState
    _INIT = (0.25, 0.5, 0.0625, 0.5, 0.5)

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 5, **kw):
        super().__init__(in_channels, hidden_channels, kernel_size, **kw)
        logits = torch.tensor([_logit(p) for p in self._INIT], dtype=self.conv_x.weight.dtype)
        self.logits = torch.nn.Parameter(logits[:, None].repeat(1, hidden_channels))

    def initial_state(self, shape, *, dtype=None, device=None):
        shape, dtype, device = self._state_shape(shape, dtype, device)
        zeros = torch.zeros(shape, dtype=dtype, device=device)
        return F.GLIFTensorState(zeros, zeros.clone())

    def step_params(self):
        return torch.sigmoid(self.logits)[:, :, None, None]    # (5, C, 1, 1)

    def advance(self, x_t, state, params):
        return F.glif_step(self.input_current(x_t), state, *params)


#: Name → cell class, for experiments.
CELLS = {"stc_lif": STCLIF, "stc_plif": STCPLIF, "stc_lmh": STCLMH, "lif": LIFConvCell,
         "plif": PLIFConvCell, "tclif": TCLIFConvCell, "lmh": LMHConvCell,
         "glif": GLIFConvCell}


# -------------------------------------------------------------------------------- dense
class STCDense(SpikingModule):
    """Dense STC layer on input currents ``(T, B, n)``: learnable ``w_h``, ``w_v`` ``(n, n)``
    (``(n_post, n_pre)``, init 0) and gate biases from ``params``; no GroupNorm.

    With ``tanh="numpy"`` (default) and float64 this is the Numba kernel bit for bit.
    """

    state_type = F.STCTensorState
    step_ndim = 2
    repr_fields = ("n", "base", "gradient_detach")

    def __init__(self, n: int, params: STCParams | None = None, *, gradient_detach=False,
                 tanh: str = "numpy", dtype=torch.float64):
        super().__init__()
        params = STCParams() if params is None else params
        dtype = float_dtype(dtype)
        if tanh not in F.TANH_FORMS:
            raise ValueError(f"tanh must be one of {F.TANH_FORMS}, got {tanh!r}")
        self.n, self.base = positive_int("n", n), params.base
        self.gradient_detach, self.tanh = bool(gradient_detach), tanh
        self.constants = F.stc_prepare(params, self.n, dtype=dtype)
        self.w_h = torch.nn.Parameter(torch.zeros(self.n, self.n, dtype=dtype))
        self.w_v = torch.nn.Parameter(torch.zeros(self.n, self.n, dtype=dtype))
        biases = [np.broadcast_to(np.asarray(getattr(params, f), np.float64), (self.n,))
                  for f in ("bias_h", "bias_v")]
        self.bias_h = torch.nn.Parameter(torch.tensor(biases[0], dtype=dtype))
        self.bias_v = torch.nn.Parameter(torch.tensor(biases[1], dtype=dtype))

    def set_modulators(self, w_h=None, w_v=None) -> STCDense:
        """Copy dense weights ``(n, n)`` into ``w_h`` / ``w_v`` (checked); returns ``self``."""
        for name, value in (("w_h", w_h), ("w_v", w_v)):
            if value is None:
                continue
            value = torch.as_tensor(np.asarray(value, dtype=np.float64))
            if tuple(value.shape) != (self.n, self.n):
                raise ValueError(f"{name} must have shape ({self.n}, {self.n}), got "
                                 f"{tuple(value.shape)}")
            if not torch.isfinite(value).all():
                raise ValueError(f"{name} must contain only finite values")
            with torch.no_grad():
                getattr(self, name).copy_(value)
        return self

    def weight_dtype(self) -> torch.dtype:
        return self.w_h.dtype

    def check_step(self, x_t):
        if x_t.shape[-1] != self.n:
            raise ValueError(f"x_t must have shape (B, {self.n}), got {tuple(x_t.shape)}")

    def initial_state(self, shape, *, dtype=None, device=None):
        shape, dtype, device = resolve_like(shape, dtype, device,
                                            default_dtype=self.w_h.dtype,
                                            default_device=self.w_h.device)
        zeros = torch.zeros(shape, dtype=dtype, device=device)
        ones = torch.ones(shape, dtype=dtype, device=device)
        return F.STCTensorState(zeros, zeros.clone(), zeros.clone(), ones, ones.clone())

    def step_params(self):
        return self.constants

    def advance(self, x_t, state, params):
        return F.stc_dense_step(x_t, state, params, self.w_h, self.w_v, self.bias_h,
                                self.bias_v, tanh=self.tanh,
                                gradient_detach=self.gradient_detach)
