"""PCNN neurons and the DPCNN conv layer as torch modules (surrogate-gradient training).

:class:`PCNN` is a thin :class:`~bioplastic.nn.base.SpikingModule` over
:func:`bioplastic.nn.functional.pcnn_step` (read :mod:`bioplastic.nn.functional.pcnn` for the
equations): the neuron layer of a DPCNN on maps ``(B, C, H, W)``, time-major sequences
``(T, B, C, H, W)``, Convention A as :mod:`bioplastic.neurons.pcnn`, with the kernel's own
:class:`bioplastic.neurons.PCNNParams`. ``coupling="intra"`` is depthwise linking (kernel
``(C, 1, k, k)``), ``"inter"`` a full ``C → C`` conv (kernel ``(C, C, k, k)``: C²k² synapses,
no extra neurons), ``"none"`` no linking. In float64 the forward pass equals the Numba kernel
with ``v_f = 0`` and ``decay_u = 0``.

Defaults: :data:`bioplastic.nn.functional.DPCNN_INIT`, not ``PCNNParams()``: the kernel's
default is Zhan's 1-D demo, whose feeding coupling the layer replaces by its drive and whose
threshold jump would silence a normalised drive; the layer's values are starting points for
training (every decay learnable inside (0, 1), ``e0 = 1``).

:class:`PCNNConv2d` is a DPCNN layer: ``I[t] = Norm(Conv_ff(S_in[t]))`` followed by
:class:`PCNN`. The feed-forward conv runs once on all ``T·B`` frames; only the neurons loop
over time.

Choices where the paper (Yi et al., arXiv 2401.08649) is silent — all options:

* decays, per map, are ``d = sigmoid(a)`` when learnable (so they stay in (0, 1)) and plain
  buffers otherwise; ``beta``, ``V_L``, ``V_E`` are ``softplus(b)`` when learnable (> 0);
* the intra linking kernel is fixed by default (``[.707 1 .707]``-type, centre 0, divided by
  its sum), the inter kernel learnable and initialised to that kernel on the diagonal plus
  small random cross-map terms (so "inter" starts as "intra"), drawn from ``seed`` (an int or
  a ``torch.Generator``; ``None``: torch's global generator, as ``torch.nn`` layers do);
* ``reset=None`` (classic, default), ``"subtract_f"`` (``F -= Y E[t-1]``) or ``"zero_f"``
  (``F *= 1 - Y``); a ``'zero_U'`` reset is ``"zero_f"`` here because U is not a state;
* surrogate: sigmoid with scale 4;
* ``norm``: ``None``, ``"bn"`` (BatchNorm2d over all frames), ``"bn_per_timestep"``
  (BNTT-like: statistics and affine per time step), ``"tdbn"`` (joint over time, output scaled
  by ``alpha E0``) or ``"rftd"`` — RFTD-BN as reconstructed here (the paper gives only its
  name): per-time-step batch statistics and affine (time-dependent), and the result scaled by
  ``alpha E0 / (1 + beta V_L ||K_c||_1 / 2)`` (receptive-field scaling: the linking gain a
  neuron sees when half its linking receptive field pulses, so the *modulated* activity U,
  not only F, starts at threshold scale). The gain is read from the neurons, detached.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as fn

from .._validate import finite_float, in_range, positive_int
from ..neurons.pcnn import PCNNParams
from .base import (
    SpikeTrace,
    SpikingModule,
    check_float_tensor,
    check_input_shape,
    check_like_weight,
    format_value,
    odd_kernel_size,
    resolve_like,
)
from .functional.pcnn import (
    DPCNN_INIT,
    RESETS,
    PCNNTensorParams,
    PCNNTensorState,
    check_torch_supported,
    pcnn_initial_state,
    pcnn_sequence,
    pcnn_sequence_applies,
    pcnn_step,
)
from .surrogate import SURROGATES

__all__ = ["PCNN", "PCNNConv2d", "PCNNTensorState", "RFTDBatchNorm", "TimeBatchNorm",
           "default_link_kernel", "LEARNABLE", "NORMS"]

LEARNABLE = ("decay_f", "decay_l", "decay_e", "beta", "v_l", "v_e")
NORMS = (None, "bn", "bn_per_timestep", "tdbn", "rftd")
_SCALARS = ("decay_f", "decay_l", "decay_e", "v_l", "v_e", "beta")


def default_link_kernel(kernel_size: int) -> torch.Tensor:
    """``[.707 1 .707]``-type kernel: weight ``1/distance`` to each neighbour, centre 0, divided
    by its sum (so a fully pulsing neighbourhood gives ``L`` input 1). Shape ``(k, k)``."""
    r = kernel_size // 2
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
    dist = torch.sqrt(yy**2 + xx**2)
    kernel = torch.where(dist > 0, 1.0 / dist.clamp(min=1.0), torch.zeros_like(dist))
    return (kernel / kernel.sum()).double()


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def _generator(seed) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be None, an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


class PCNN(SpikingModule):
    """PCNN neurons over ``channels`` maps with intra- or inter-map linking (see module doc).

    ``pulses, state = pcnn(x)`` on ``x (T, B, C, H, W)``; ``pcnn.run(x, record=("e",))``;
    ``pcnn.step(x_t, state)`` (see :mod:`bioplastic.nn.base`).

    Parameters
    ----------
    channels : int
    params : PCNNParams, optional
        The kernel's parameters; default :data:`bioplastic.nn.functional.DPCNN_INIT` (module
        docstring says why). Scalar fields only (one value, copied to every map); ``v_f``
        and ``decay_u`` must be 0 and ``fast_linking`` False.
    **fields
        Fields of :class:`PCNNParams` overriding ``params``: ``decay_f, decay_l, decay_e``
        (per-step multipliers in [0, 1]; a learnable decay must lie strictly inside (0, 1)),
        ``v_l, v_e, beta`` (>= 0; learnable ones > 0), ``e0`` (initial threshold).
    coupling : {"none", "intra", "inter"}, optional
        Default ``params.coupling``.
    kernel_size : int
        Odd linking kernel size.
    link_kernel : tensor, optional
        Initial kernel ``(k, k)``, ``(C, 1, k, k)`` (intra) or ``(C, C, k, k)`` (inter);
        default ``params.linking_kernel``, else :func:`default_link_kernel`.
    learnable : iterable of str
        Subset of :data:`LEARNABLE` trained by backprop (per map).
    learn_kernel : bool, optional
        Train the linking kernel (default: False for intra, True for inter).
    reset : {None, "subtract_f", "zero_f"}
    surrogate, surrogate_scale : see :func:`bioplastic.nn.spike`
    seed : int, torch.Generator or None
        Draws the inter kernel's small cross-map terms (None: torch's global generator).
    dtype : torch.dtype
    """

    state_type = PCNNTensorState
    step_ndim = 4
    full_shape_state_fields = ("y",)        # the linking convolution reads Y[t-1]
    repr_fields = ("channels", "coupling", "kernel_size", "learnable", "reset", "surrogate",
                   "surrogate_scale")

    def __init__(self, channels: int, params: PCNNParams | None = None, *,
                 coupling: str | None = None, kernel_size: int = 3, link_kernel=None,
                 learnable=("decay_f", "decay_l", "decay_e"), learn_kernel: bool | None = None,
                 reset: str | None = None, surrogate: str = "sigmoid",
                 surrogate_scale: float = 4.0, seed=None, dtype: torch.dtype = torch.float32,
                 **fields):
        super().__init__()
        channels = positive_int("channels", channels)
        params = self._resolve_params(params, fields)
        coupling = params.coupling if coupling is None else coupling
        if coupling not in ("none", "intra", "inter"):
            raise ValueError(f"coupling must be 'none', 'intra' or 'inter', got {coupling!r}")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {surrogate!r}")
        learnable = tuple(learnable)
        unknown = set(learnable) - set(LEARNABLE)
        if unknown:
            raise ValueError(f"learnable must be a subset of {LEARNABLE}, got {sorted(unknown)}")
        self.channels, self.coupling, self.reset = channels, coupling, reset
        self.kernel_size = odd_kernel_size("kernel_size", kernel_size)
        self.e0 = finite_float("e0", params.e0)
        self.surrogate, self.surrogate_scale = surrogate, float(surrogate_scale)
        self.learnable = learnable
        for name in ("decay_f", "decay_l", "decay_e"):
            closed = "neither" if name in learnable else "both"
            value = in_range(name, finite_float(name, getattr(params, name)), 0.0, 1.0,
                             closed=closed)
            self._scalar(name, value, _logit, dtype)
        for name in ("v_l", "v_e", "beta"):
            value = finite_float(name, getattr(params, name))
            if value < 0 or (name in learnable and value <= 0):
                raise ValueError(f"{name} must be >= 0 (> 0 when learnable), got {value!r}")
            self._scalar(name, value, _inverse_softplus, dtype)
        if link_kernel is None and coupling != "none":
            link_kernel = params.linking_kernel
        self._init_kernel(link_kernel, learn_kernel, _generator(seed), dtype)

    @staticmethod
    def _resolve_params(params, fields) -> PCNNParams:
        params = DPCNN_INIT if params is None else params
        if not isinstance(params, PCNNParams):
            raise TypeError(f"params must be bioplastic.neurons.PCNNParams, got "
                            f"{type(params).__name__}")
        unknown = set(fields) - set(PCNNParams._fields)
        if unknown:
            raise TypeError(f"unknown PCNN parameters {sorted(unknown)}; the fields are "
                            f"{PCNNParams._fields}")
        params = params._replace(**fields)
        check_torch_supported(params)
        return params

    def _scalar(self, name: str, value: float, inverse, dtype) -> None:
        """A per-map parameter ``(C, 1, 1)``: raw (pre-sigmoid/softplus) if learnable."""
        if name in self.learnable:
            raw = torch.full((self.channels, 1, 1), inverse(value), dtype=dtype)
            setattr(self, f"raw_{name}", torch.nn.Parameter(raw))
        else:
            self.register_buffer(name + "_fixed",
                                 torch.full((self.channels, 1, 1), value, dtype=dtype))

    def value(self, name: str) -> torch.Tensor:
        """Current value of a per-map parameter, shape ``(C, 1, 1)``."""
        if name not in self.learnable:
            return getattr(self, name + "_fixed")
        raw = getattr(self, f"raw_{name}")
        return torch.sigmoid(raw) if name.startswith("decay") else fn.softplus(raw)

    def _init_kernel(self, link_kernel, learn_kernel, generator, dtype) -> None:
        c, k = self.channels, self.kernel_size
        if self.coupling == "none":
            if link_kernel is not None:
                raise ValueError("link_kernel must be None when coupling='none'")
            self.register_buffer("link_weight", torch.zeros(c, 1, 1, 1, dtype=dtype))
            return
        shape = (c, 1, k, k) if self.coupling == "intra" else (c, c, k, k)
        if link_kernel is None:
            base = default_link_kernel(k)
            if self.coupling == "intra":
                kernel = base.expand(shape).clone()
            else:
                noise = 0.01 * torch.randn(shape, generator=generator, dtype=torch.float64)
                kernel = torch.eye(c, dtype=torch.float64)[:, :, None, None] * base + noise
        else:
            kernel = torch.as_tensor(link_kernel, dtype=torch.float64)
            if kernel.ndim == 2 and tuple(kernel.shape) == (k, k):
                kernel = kernel.expand(shape).clone()
            if tuple(kernel.shape) != shape:
                raise ValueError(f"link_kernel must have shape {(k, k)} or {shape}, got "
                                 f"{tuple(kernel.shape)}")
            if not torch.isfinite(kernel).all():
                raise ValueError("link_kernel must be finite")
        kernel = kernel.to(dtype)
        learn = self.coupling == "inter" if learn_kernel is None else bool(learn_kernel)
        if learn:
            self.link_weight = torch.nn.Parameter(kernel)
        else:
            self.register_buffer("link_weight", kernel)

    def linking_gain(self) -> torch.Tensor:
        """``1 + beta V_L ||K_c||_1 / 2`` per map ``(C, 1, 1)``, detached (RFTD-BN scaling)."""
        with torch.no_grad():
            norm = self.link_weight.abs().sum(dim=(1, 2, 3)).reshape(-1, 1, 1)
            return 1.0 + self.value("beta") * self.value("v_l") * norm / 2.0

    def extra_repr(self) -> str:
        values = ", ".join(f"{name}={format_value(self.value(name))}" for name in _SCALARS)
        return f"{super().extra_repr()}, {values}, e0={format_value(self.e0)}"

    def initial_state(self, shape, *, dtype=None, device=None) -> PCNNTensorState:
        """Zero F, L, Y and ``E = e0``, for one time step ``(B, C, H, W)``."""
        shape, dtype, device = resolve_like(shape, dtype, device,
                                            default_dtype=self.link_weight.dtype,
                                            default_device=self.link_weight.device)
        return pcnn_initial_state(shape, self.e0, dtype=dtype, device=device)

    def step_params(self) -> PCNNTensorParams:
        return PCNNTensorParams(*(self.value(name) for name in PCNNTensorParams._fields))

    def weight_dtype(self) -> torch.dtype | None:
        return None if self.coupling == "none" else self.link_weight.dtype

    def check_step(self, x_t: torch.Tensor) -> None:
        check_input_shape("x", x_t, ("B", self.channels, "H", "W"), per_step=True)
        if self.coupling != "none":
            check_like_weight("x", x_t, self.link_weight, type(self).__name__)

    def run(self, x: torch.Tensor, state: PCNNTensorState | None = None, *,
            record=()) -> SpikeTrace:
        """The time loop (:meth:`SpikingModule.run`). Without records, and with the state and
        input of the layer's dtype and device, the whole sequence is one
        :func:`~bioplastic.nn.functional.pcnn_sequence` call: the same pulses and state, the
        same gradients, in a fraction of the time."""
        record = self._check_record(record)
        x, state, params = self._prepare_run(x, state)
        link = None if self.coupling == "none" else self.link_weight
        if record or not pcnn_sequence_applies(x, state, params, link):
            return self._time_loop(x, state, params, record)
        spikes, state = pcnn_sequence(x, state, params, link, reset=self.reset,
                                      surrogate=self.surrogate,
                                      surrogate_scale=self.surrogate_scale)
        return SpikeTrace(spikes, {}, state)

    def advance(self, x_t: torch.Tensor, state: PCNNTensorState, params: PCNNTensorParams):
        link = None if self.coupling == "none" else self.link_weight
        return pcnn_step(x_t, state, params, link, reset=self.reset, surrogate=self.surrogate,
                         surrogate_scale=self.surrogate_scale)


class TimeBatchNorm(torch.nn.Module):
    """Batch norm on ``(T, B, C, H, W)``: ``"bn"`` (one BatchNorm2d over all frames),
    ``"bn_per_timestep"`` (one per time step) or ``"tdbn"`` (joint over time, output scaled by
    ``alpha * e0``, threshold-dependent BN of Zheng et al. 2021)."""

    def __init__(self, channels: int, time_steps: int, kind: str = "bn", *, e0: float = 1.0,
                 alpha: float = 1.0):
        super().__init__()
        if kind not in ("bn", "bn_per_timestep", "tdbn"):
            raise ValueError(f"kind must be 'bn', 'bn_per_timestep' or 'tdbn', got {kind!r}")
        channels = positive_int("channels", channels)
        time_steps = positive_int("time_steps", time_steps)
        self.kind, self.scale = kind, float(alpha) * float(e0)
        count = time_steps if kind == "bn_per_timestep" else 1
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm2d(channels) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "bn_per_timestep":
            if x.shape[0] != len(self.norms):
                raise ValueError(f"expected {len(self.norms)} time steps, got {x.shape[0]}")
            return torch.stack([norm(x_t) for norm, x_t in zip(self.norms, x, strict=True)])
        out = self.norms[0](x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return out * self.scale if self.kind == "tdbn" else out


class RFTDBatchNorm(torch.nn.Module):
    """RFTD-BN as reconstructed here (module doc): per-time-step statistics and affine, output
    scaled by ``alpha e0 / gain`` where ``gain (C, 1, 1)`` is the neurons' linking gain."""

    def __init__(self, channels: int, time_steps: int, *, e0: float = 1.0, alpha: float = 1.0):
        super().__init__()
        self.per_step = TimeBatchNorm(channels, time_steps, "bn_per_timestep")
        self.scale = float(alpha) * float(e0)

    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return self.per_step(x) * (self.scale / gain)


class PCNNConv2d(torch.nn.Module):
    """DPCNN layer: ``Conv2d → norm → PCNN`` on ``(T, B, C_in, H, W)`` spike/current input.

    ``norm`` is one of :data:`NORMS`; ``time_steps`` is needed by the per-time-step norms.
    Remaining keywords go to :class:`PCNN`. ``forward`` returns ``(pulses (T, B, C_out, H',
    W'), final state)`` like a :class:`~bioplastic.nn.base.SpikingModule`; it is not one
    itself (no single :meth:`~bioplastic.nn.base.SpikingModule.step`: the feed-forward conv and
    the per-time-step norms run on the whole sequence at once), its ``neurons`` are.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, norm: str | None = "bn", time_steps: int | None = None,
                 norm_alpha: float = 1.0, dtype: torch.dtype = torch.float32, **pcnn):
        super().__init__()
        # Checked here, before torch.nn.Conv2d: it takes 0 input channels, and True as 1,
        # and warns before refusing 0 output channels.
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        stride = positive_int("stride", stride)
        k = odd_kernel_size("kernel_size", kernel_size)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if time_steps is not None:
            time_steps = positive_int("time_steps", time_steps)
        elif norm in ("bn_per_timestep", "rftd"):
            raise ValueError(f"norm={norm!r} needs time_steps (positive int), got None")
        self.conv = torch.nn.Conv2d(in_channels, out_channels, k, stride=stride,
                                    padding=k // 2, bias=norm is None, dtype=dtype)
        self.neurons = PCNN(out_channels, dtype=dtype, **pcnn)
        self.norm_kind = norm
        e0 = self.neurons.e0
        if norm == "rftd":
            self.norm = RFTDBatchNorm(out_channels, time_steps, e0=e0, alpha=norm_alpha).to(dtype)
        elif norm is not None:
            self.norm = TimeBatchNorm(out_channels, time_steps or 1, norm, e0=e0,
                                      alpha=norm_alpha).to(dtype)
        else:
            self.norm = None

    def drive(self, x: torch.Tensor) -> torch.Tensor:
        """``Norm(Conv_ff(x))`` for all frames at once, ``(T, B, C_out, H', W')``."""
        check_float_tensor("x", x)
        check_input_shape("x", x, ("T", "B", self.conv.in_channels, "H", "W"))
        check_like_weight("x", x, self.conv.weight, type(self).__name__)
        # contiguous, as the conv cells' input (bioplastic.nn.stc): the same numbers for a
        # strided view of the same frames
        current = self.conv(x.flatten(0, 1).contiguous()).unflatten(0, x.shape[:2])
        if self.norm_kind == "rftd":
            return self.norm(current, self.neurons.linking_gain())
        return current if self.norm is None else self.norm(current)

    def run(self, x: torch.Tensor, state: PCNNTensorState | None = None, *, record=()):
        """:meth:`PCNN.run` of the neurons on :meth:`drive` ``(x)`` (a :class:`SpikeTrace`)."""
        return self.neurons.run(self.drive(x), state, record=record)

    def forward(self, x: torch.Tensor, state: PCNNTensorState | None = None):
        """Spike/current input ``(T, B, C_in, H, W)`` → ``(pulses (T, B, C_out, H', W'),
        final neuron state)``, the return of every spiking module."""
        return self.neurons(self.drive(x), state)
