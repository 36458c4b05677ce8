"""PCNN neurons and the DPCNN conv layer as torch modules (surrogate-gradient training).

:class:`PCNN` is the neuron layer of shared/spec/pcnn.md §3.2 [reconstruction] on maps
``(B, C, H, W)``, time-major sequences ``(T, B, C, H, W)``, Convention A as
:mod:`bioplastic.neurons.pcnn` (read its docstring for the map and the Schedule)::

    F[t] = d_F F[t-1] + I[t]                          (the drive replaces feeding coupling)
    L[t] = d_L L[t-1] + V_L (K_link ⋆ Y[t-1])
    U[t] = F[t] (1 + beta L[t])
    Y[t] = H(U[t] - E[t-1])                           strict >, surrogate derivative backward
    E[t] = d_E E[t-1] + V_E Y[t]

``⋆`` is ``conv2d`` with zero padding ``k // 2``: ``coupling="intra"`` is depthwise
(``groups=C``, kernel ``(C, 1, k, k)``), ``"inter"`` a full ``C → C`` conv (kernel
``(C, C, k, k)``: C²k² synapses, no extra neurons), ``"none"`` no linking. In float64 the
forward pass equals the Numba kernel with ``v_f = 0`` and ``decay_u = 0``: identical pulses,
state to summation round-off (``conv2d`` sums the linking terms in its own order).

:class:`PCNNConv2d` is a DPCNN layer: ``I[t] = Norm(Conv_ff(S_in[t]))`` followed by
:class:`PCNN`. The feed-forward conv runs once on all ``T·B`` frames; only the neurons loop
over time.

Choices where the paper (Yi et al., arXiv 2401.08649) is silent — all options:

* decays, per map, are ``d = sigmoid(a)`` when learnable (so they stay in (0, 1)) and plain
  buffers otherwise; ``beta``, ``V_L``, ``V_E`` are ``softplus(b)`` when learnable (> 0);
* the intra linking kernel is fixed by default (``[.707 1 .707]``-type, centre 0, divided by
  its sum), the inter kernel learnable and initialised to that kernel on the diagonal plus
  small random cross-map terms (so "inter" starts as "intra");
* ``reset=None`` (classic, default), ``"subtract_f"`` (``F -= Y E[t-1]``) or ``"zero_f"``
  (``F *= 1 - Y``); the spec's ``'zero_U'`` is ``"zero_f"`` here because U is not a state;
* surrogate: sigmoid with scale 4 (spec §3.2 default);
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
from typing import NamedTuple

import torch
import torch.nn.functional as fn

from .._validate import finite_float, in_range
from .surrogate import spike

__all__ = ["PCNN", "PCNNConv2d", "PCNNTensorState", "RFTDBatchNorm", "TimeBatchNorm",
           "default_link_kernel", "LEARNABLE", "NORMS"]

LEARNABLE = ("decay_f", "decay_l", "decay_e", "beta", "v_l", "v_e")
NORMS = (None, "bn", "bn_per_timestep", "tdbn", "rftd")
_RESETS = (None, "subtract_f", "zero_f")


class PCNNTensorState(NamedTuple):
    f: torch.Tensor    # feeding F (B, C, H, W)
    l: torch.Tensor    # linking L
    e: torch.Tensor    # threshold E
    y: torch.Tensor    # last pulses Y (0/1, float)


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


def _check_kernel_size(kernel_size) -> int:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    return kernel_size


class PCNN(torch.nn.Module):
    """PCNN neurons over ``channels`` maps with intra- or inter-map linking (see module doc).

    Parameters
    ----------
    channels : int
    coupling : {"none", "intra", "inter"}
    kernel_size : int
        Odd linking kernel size.
    link_kernel : tensor, optional
        Initial kernel ``(k, k)``, ``(C, 1, k, k)`` (intra) or ``(C, C, k, k)`` (inter).
    decay_f, decay_l, decay_e : float in (0, 1)
        Per-step multipliers (a learnable decay must lie strictly inside (0, 1); a fixed one
        may be 0 or 1).
    v_l, v_e, beta : float
        Linking amplitude, threshold jump (>= 0), linking strength (learnable ones must be > 0).
    e0 : float
        Initial threshold ``E[0]``.
    learnable : iterable of str
        Subset of :data:`LEARNABLE` trained by backprop (per map).
    learn_kernel : bool, optional
        Train the linking kernel (default: False for intra, True for inter).
    reset : {None, "subtract_f", "zero_f"}
    surrogate, surrogate_scale : see :func:`bioplastic.nn.spike`
    dtype : torch.dtype
    """

    def __init__(self, channels: int, *, coupling: str = "intra", kernel_size: int = 3,
                 link_kernel=None, decay_f: float = 0.5, decay_l: float = 0.5,
                 decay_e: float = 0.8, v_l: float = 1.0, v_e: float = 1.0, beta: float = 0.2,
                 e0: float = 1.0, learnable=("decay_f", "decay_l", "decay_e"),
                 learn_kernel: bool | None = None, reset: str | None = None,
                 surrogate: str = "sigmoid", surrogate_scale: float = 4.0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if coupling not in ("none", "intra", "inter"):
            raise ValueError(f"coupling must be 'none', 'intra' or 'inter', got {coupling!r}")
        if reset not in _RESETS:
            raise ValueError(f"reset must be one of {_RESETS}, got {reset!r}")
        learnable = tuple(learnable)
        unknown = set(learnable) - set(LEARNABLE)
        if unknown:
            raise ValueError(f"learnable must be a subset of {LEARNABLE}, got {sorted(unknown)}")
        self.channels, self.coupling, self.reset = channels, coupling, reset
        self.kernel_size = _check_kernel_size(kernel_size)
        self.e0 = finite_float("e0", e0)
        self.surrogate, self.surrogate_scale = surrogate, float(surrogate_scale)
        self.learnable = learnable
        for name, value in (("decay_f", decay_f), ("decay_l", decay_l), ("decay_e", decay_e)):
            closed = "neither" if name in learnable else "both"
            self._scalar(name, in_range(name, finite_float(name, value), 0.0, 1.0,
                                        closed=closed), _logit, dtype)
        for name, value in (("v_l", v_l), ("v_e", v_e), ("beta", beta)):
            value = finite_float(name, value)
            if value < 0 or (name in learnable and value <= 0):
                raise ValueError(f"{name} must be >= 0 (> 0 when learnable), got {value!r}")
            self._scalar(name, value, _inverse_softplus, dtype)
        self._init_kernel(link_kernel, learn_kernel, dtype)

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

    def _init_kernel(self, link_kernel, learn_kernel, dtype) -> None:
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
                generator = torch.Generator().manual_seed(0)
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

    def initial_state(self, like: torch.Tensor) -> PCNNTensorState:
        """Zero F, L, Y and ``E = e0``, shaped like one time step ``(B, C, H, W)``."""
        zeros = torch.zeros_like(like)
        return PCNNTensorState(zeros, zeros.clone(), torch.full_like(like, self.e0),
                               zeros.clone())

    def _link(self, y: torch.Tensor) -> torch.Tensor:
        groups = self.channels if self.coupling == "intra" else 1
        return fn.conv2d(y, self.link_weight, padding=self.kernel_size // 2, groups=groups)

    def step(self, x: torch.Tensor, state: PCNNTensorState | None = None):
        """One iteration. ``x``: drive ``(B, C, H, W)``. Returns ``(pulses, new_state)``."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must have shape (B, {self.channels}, H, W), got "
                             f"{tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x)
        f = self.value("decay_f") * state.f + x
        l = self.value("decay_l") * state.l
        if self.coupling != "none":
            l = l + self.value("v_l") * self._link(state.y)
        u = f * (1.0 + self.value("beta") * l)
        y = spike(u - state.e, surrogate=self.surrogate, scale=self.surrogate_scale)
        e = self.value("decay_e") * state.e + self.value("v_e") * y
        if self.reset == "subtract_f":
            f = f - y * state.e
        elif self.reset == "zero_f":
            f = f * (1.0 - y)
        return y, PCNNTensorState(f, l, e, y)

    def run(self, x: torch.Tensor, state: PCNNTensorState | None = None):
        """Sequence ``x (T, B, C, H, W)``. Returns ``(pulses (T, ...), final state)``."""
        if x.ndim != 5 or x.shape[0] == 0:
            raise ValueError(f"x must be (T, B, C, H, W) with T >= 1, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x must contain only finite values")
        pulses = []
        for x_t in x:
            y, state = self.step(x_t, state)
            pulses.append(y)
        return torch.stack(pulses), state

    def forward(self, x: torch.Tensor, state: PCNNTensorState | None = None) -> torch.Tensor:
        """Pulses for the drive sequence ``x (T, B, C, H, W)``."""
        return self.run(x, state)[0]


class TimeBatchNorm(torch.nn.Module):
    """Batch norm on ``(T, B, C, H, W)``: ``"bn"`` (one BatchNorm2d over all frames),
    ``"bn_per_timestep"`` (one per time step) or ``"tdbn"`` (joint over time, output scaled by
    ``alpha * e0``, threshold-dependent BN of Zheng et al. 2021)."""

    def __init__(self, channels: int, time_steps: int, kind: str = "bn", *, e0: float = 1.0,
                 alpha: float = 1.0):
        super().__init__()
        if kind not in ("bn", "bn_per_timestep", "tdbn"):
            raise ValueError(f"kind must be 'bn', 'bn_per_timestep' or 'tdbn', got {kind!r}")
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
    Remaining keywords go to :class:`PCNN`. Returns pulses ``(T, B, C_out, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, norm: str | None = "bn", time_steps: int | None = None,
                 norm_alpha: float = 1.0, dtype: torch.dtype = torch.float32, **pcnn):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if norm in ("bn_per_timestep", "rftd") and not (isinstance(time_steps, int)
                                                        and time_steps > 0):
            raise ValueError(f"norm={norm!r} needs time_steps (positive int), got {time_steps!r}")
        k = _check_kernel_size(kernel_size)
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
        if x.ndim != 5:
            raise ValueError(f"x must be (T, B, C, H, W), got {tuple(x.shape)}")
        current = self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        if self.norm_kind == "rftd":
            return self.norm(current, self.neurons.linking_gain())
        return current if self.norm is None else self.norm(current)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neurons(self.drive(x))
