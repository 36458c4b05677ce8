"""NHL: neuro-modulated Hebbian test-time adaptation — the library's **reconstruction**.

Paper: Tang, Zhang, Xu, Chen, Cheng, Leng, Guo & He, "Neuro-Modulated Hebbian Learning for
Fully Test-Time Adaptation", CVPR 2023, arXiv 2303.00914. No code is public.

Confirmed (docs/tta.md): the first conv layer of the source model is
fine-tuned by a *soft* Hebbian rule with competitive lateral inhibition; a feedback
**neuro-modulator** layer is fine-tuned by the entropy loss back-propagated from the top layers;
the classifier is frozen; the prediction is made after the updates of each test batch.

**Reconstruction** (docs/tta.md; not the paper's published equations, which are unknown). For
each conv1 patch ``x`` (every position of every sample) and filters ``w_k``::

    u_k  = w_k · x                                 (conv1 pre-activation, bias ignored)
    y_k  = exp(u_k/τ) / Σ_l exp(u_l/τ)             (soft lateral inhibition across channels)
    Δw_k = Σ_{batch, positions} y_k (x − u_k w_k)  (SoftHebb; bioplastic.rules.soft_hebb_conv_dw)
    w_k ← w_k + η_H · Δw_k / N                     (N = batch × positions, reduction="mean")

    modulator m(h) = γ ⊙ h + β   (per channel, γ = 1, β = 0 at start)
    γ, β ← Adam step on  mean_b H(softmax(f(x_b))),  everything else frozen

**Schedule** per test batch (defaults; options in brackets): Hebbian step on conv1 under
``no_grad`` [``hebb_first``] → modulator gradient step [``steps``] → prediction re-computed
after the updates [``predict_after_update``].

Guard of the pretrained filter bank (``norm_mode``): the SoftHebb rule drives every
‖w_k‖ to 1, while a pretrained conv1 has arbitrary norms that downstream layers are calibrated
to. ``"direction"`` (default) applies the rule to ŵ_k = w_k/‖w_k‖ and restores the original norm
afterwards (only directions adapt); ``"renorm"`` applies the raw rule and requires a BatchNorm
with batch statistics right after conv1, which absorbs the scale; ``"free"`` is the raw rule.
``max_normalise`` divides Δw by max|Δw| (SoftHebb ICLR 2023), ``max_steps`` stops the Hebbian
updates after that many batches (until ``reset()``).

Choices where the paper is silent (each an option): the modulator is placed after conv1's
BatchNorm when conv1 is directly followed by one (``modulator_at="auto"``) — a per-channel
affine *before* a batch-statistics BN would be normalised away; Δw is averaged over batch and
positions (``reduction="mean"``) so η_H does not depend on batch size; the default η_H was tuned
on the held-out geometric digits shifts (docs/tta.md); τ = 1 (SoftHebb's first layer); Adam lr
1e-3 (Tent); BatchNorm uses batch statistics (as Tent and BN adapt).

Free-energy reading [reconstruction]: the soft-WTA posterior with the Hebbian update is
approximate Bayesian inference (SoftHebb's theorem); the entropy term acts as "surprise".

Backends: on CPU tensors the Hebbian Δw comes from the Numba kernel
:func:`bioplastic.rules.soft_hebb_conv_dw` (float64); on other devices an equivalent torch path
(:func:`soft_hebb_conv_dw_torch`, same unfold order and formula; equal in float64 to round-off).
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .._validate import non_negative, non_negative_int, positive
from ..nn.functional import hebbian
from ..rules.softhebb import SoftHebbParams
from .base import (
    Adapter,
    check_number,
    check_same_shape,
    no_params,
    refuse_fixed,
    stochastic_restore,
)

__all__ = ["NHL", "HebbianConv1", "ChannelAffine", "soft_hebb_conv_dw_torch",
           "hebbian_conv_dw", "interpolate_toward", "stochastic_restore", "bound_angle",
           "NORM_MODES", "BACKENDS"]

NORM_MODES = ("direction", "renorm", "free")
BACKENDS = ("auto", "numba", "torch")


# ------------------------------------------------------------------------ Hebbian Δw
def _conv_geometry(layer: nn.Conv2d) -> dict:
    """Stride/padding/dilation/padding mode of ``layer`` that the kernel supports, or raise."""
    if layer.groups != 1:
        raise ValueError(f"NHL: conv1 must have groups=1, got groups={layer.groups}")
    if isinstance(layer.padding, str):
        raise ValueError(f"NHL: conv1 padding must be numeric, got {layer.padding!r} "
                         "(write padding=k//2 instead of 'same')")
    if layer.padding_mode not in ("zeros", "reflect"):
        raise ValueError(f"NHL: conv1 padding_mode must be 'zeros' or 'reflect', got "
                         f"{layer.padding_mode!r}")
    return {"stride": tuple(layer.stride), "padding": tuple(layer.padding),
            "dilation": tuple(layer.dilation), "padding_mode": layer.padding_mode}


def soft_hebb_conv_dw_torch(x: torch.Tensor, w: torch.Tensor, temperature: float = 1.0, *,
                            anti_hebbian: bool = False, stride=(1, 1), padding=(0, 0),
                            dilation=(1, 1), padding_mode: str = "zeros") -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.soft_hebb_conv_dw` (bias ignored).

    ``x`` (B, C, H, W), ``w`` (O, C, kh, kw) → ``dw`` (O, C, kh, kw), summed over batch and
    positions, in the dtype and on the device of ``w``. The maths is
    :func:`bioplastic.nn.functional.soft_hebb_conv_dw` (shared with ``bioplastic.nn``).
    """
    params = SoftHebbParams(temperature=float(temperature), anti_hebbian=bool(anti_hebbian))
    return hebbian.soft_hebb_conv_dw(x, w, params, stride=stride, padding=padding,
                                     dilation=dilation, padding_mode=padding_mode)


def hebbian_conv_dw(x: torch.Tensor, w: torch.Tensor, temperature: float, *, anti_hebbian: bool,
                    geometry: dict, backend: str) -> torch.Tensor:
    """Summed SoftHebb Δw for conv weights ``w`` on input ``x``, by ``backend``.

    ``"auto"``: the Numba kernel for CPU tensors, the torch path elsewhere. The Numba path
    computes in float64 and returns ``w``'s dtype.
    """
    use_numba = backend == "numba" or (backend == "auto" and w.device.type == "cpu")
    if not use_numba:
        return soft_hebb_conv_dw_torch(x, w, temperature, anti_hebbian=anti_hebbian, **geometry)
    if w.device.type != "cpu":
        raise ValueError("backend='numba' needs CPU tensors; use 'torch' or 'auto' on "
                         f"{w.device}")
    from ..rules import soft_hebb_conv_dw

    params = SoftHebbParams(temperature=float(temperature), anti_hebbian=bool(anti_hebbian))
    dw = soft_hebb_conv_dw(x.detach().double().numpy(), w.detach().double().numpy(), params,
                           **geometry)
    return torch.from_numpy(np.ascontiguousarray(dw)).to(w.dtype)


# ----------------------------------------------------------------- local update module
class HebbianConv1(nn.Module):
    """Soft Hebbian update of one conv layer's weights, applied in place under ``no_grad``.

    Parameters
    ----------
    layer : the ``nn.Conv2d`` to adapt (not registered as a sub-module: it belongs to the model).
    temperature : τ of the soft WTA (> 0).
    eta : η_H (≥ 0; 0 leaves the layer bit-identical).
    norm_mode : ``"direction"``, ``"renorm"`` or ``"free"`` (module docstring).
    reduction : ``"mean"`` (Δw / (batch × positions)) or ``"sum"`` (the kernel's sum).
    max_normalise : divide Δw by max|Δw| + 1e-30 before η_H.
    max_steps : stop after this many updates (``None``: never); counted since the last reset.
    anti_hebbian : ICLR-2023 losers get −softmax.
    backend : ``"auto"``, ``"numba"`` or ``"torch"``.
    anchor : after each step, move the weights this fraction of the way back to the source
        bank, ``w ← w + anchor·(w_src − w)`` (0: off; continual use).
    restore_prob : after each step, reset each weight element to its source value with this
        probability (CoTTA's stochastic restore; 0: off).
    max_angle_deg : bound on each filter's angle to its source filter; a filter past it is
        rotated back onto the bound in the plane of the two (``None``: off).
    seed : seed of the restore masks (the generator state is a buffer, so ``reset()``
        replays the same masks).

    The anchoring options run in that order after the Hebbian step; with ``"direction"`` the
    filter norms are restored afterwards, so they still never change.
    """

    def __init__(self, layer: nn.Conv2d, *, temperature: float = 1.0, eta: float = 0.05,
                 norm_mode: str = "direction", reduction: str = "mean",
                 max_normalise: bool = False, max_steps: int | None = None,
                 anti_hebbian: bool = False, backend: str = "auto", anchor: float = 0.0,
                 restore_prob: float = 0.0, max_angle_deg: float | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if not isinstance(layer, nn.Conv2d):
            raise TypeError(f"layer must be nn.Conv2d, got {type(layer).__name__}")
        if not isinstance(dict(layer.named_parameters(recurse=False)).get("weight"),
                          nn.Parameter):
            # torch.nn.utils.parametrize (e.g. weight_norm) or the old weight_norm hook:
            # the weight is recomputed from other tensors, an in-place update would be lost
            raise ValueError("NHL: conv1's weight must be a plain nn.Parameter for the Hebbian "
                             "update to write into; this one is computed from others (a "
                             "parametrization such as weight_norm). Remove it first "
                             "(torch.nn.utils.parametrize.remove_parametrizations) or pass "
                             "another layer=")
        _check_choice("norm_mode", norm_mode, NORM_MODES)
        _check_choice("reduction", reduction, ("mean", "sum"))
        _check_choice("backend", backend, BACKENDS)
        temperature = positive("temperature", temperature)
        eta = non_negative("eta", eta)
        if max_steps is not None:
            max_steps = non_negative_int("max_steps", max_steps)
        object.__setattr__(self, "layer", layer)   # keep the model's layer out of this module
        self.geometry = _conv_geometry(layer)
        self.temperature, self.eta = float(temperature), float(eta)
        self.norm_mode, self.reduction, self.backend = norm_mode, reduction, backend
        self.max_normalise, self.max_steps = bool(max_normalise), max_steps
        self.anti_hebbian = bool(anti_hebbian)
        self.anchor = _fraction("anchor", anchor)
        self.restore_prob = _fraction("restore_prob", restore_prob)
        if max_angle_deg is not None:
            max_angle_deg = positive("max_angle_deg", max_angle_deg)
            if max_angle_deg > 180.0:
                raise ValueError(f"max_angle_deg must be in (0, 180], got {max_angle_deg!r}")
        self.max_angle_deg = max_angle_deg
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        if self.anchored:
            self.register_buffer("source_weight", layer.weight.detach().clone())
        if self.restore_prob > 0.0:
            self.register_buffer("rng_state", torch.Generator().manual_seed(seed).get_state())

    @property
    def anchored(self) -> bool:
        """Whether any option pulls the weights back toward the source bank."""
        return self.anchor > 0.0 or self.restore_prob > 0.0 or self.max_angle_deg is not None

    def anchor_to_source(self, w: torch.Tensor) -> torch.Tensor:
        """Apply ``anchor``, ``restore_prob`` and ``max_angle_deg`` to updated weights ``w``."""
        if not self.anchored:
            return w
        src = self.source_weight
        if self.anchor > 0.0:
            w = interpolate_toward(w, src, self.anchor)
        if self.restore_prob > 0.0:
            gen = torch.Generator().manual_seed(0)
            gen.set_state(self.rng_state)
            w = stochastic_restore(w, src, self.restore_prob, gen)
            self.rng_state = gen.get_state()
        if self.max_angle_deg is not None:
            w = bound_angle(w, src, float(np.deg2rad(self.max_angle_deg)))
        if self.norm_mode == "direction":
            w = _with_norms_of(w, self.layer.weight.detach())
        return w

    def delta(self, x_in: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``Δw`` after reduction and optional max normalisation (before η_H)."""
        dw = hebbian_conv_dw(x_in, w, self.temperature, anti_hebbian=self.anti_hebbian,
                             geometry=self.geometry, backend=self.backend)
        if self.reduction == "mean":
            n_rows = x_in.shape[0] * _n_positions(self.layer, x_in)
            dw = dw / n_rows
        if self.max_normalise:
            dw = hebbian.max_normalise(dw)
        return dw

    def new_weight(self, x_in: torch.Tensor) -> torch.Tensor:
        """The updated conv weight for input ``x_in`` (B, C, H, W); ``layer`` is not changed."""
        w = self.layer.weight.detach()
        if self.norm_mode != "direction":
            return w + self.eta * self.delta(x_in, w)
        norms = w.flatten(1).norm(dim=1).reshape(-1, *([1] * (w.ndim - 1)))
        alive = norms > 0                           # a zero filter has no direction: kept
        unit = torch.where(alive, w / norms.clamp_min(torch.finfo(w.dtype).tiny), w)
        moved = unit + self.eta * self.delta(x_in, unit)
        moved_norms = moved.flatten(1).norm(dim=1).reshape(norms.shape)
        return torch.where(alive, moved / moved_norms * norms, w)

    def update(self, x_in: torch.Tensor) -> bool:
        """Apply one Hebbian step in place; False (nothing changed) if it would be non-finite."""
        exhausted = self.max_steps is not None and int(self.n_updates) >= self.max_steps
        if self.eta == 0.0 or exhausted:
            return True
        if x_in.ndim != 4 or x_in.shape[1] != self.layer.in_channels:
            raise ValueError(f"NHL: conv1 expects input of shape "
                             f"(B, {self.layer.in_channels}, H, W), got {tuple(x_in.shape)}")
        w_new = self.anchor_to_source(self.new_weight(x_in))
        if not bool(torch.isfinite(w_new).all()):
            return False
        self.layer.weight.copy_(w_new)
        self.n_updates += 1
        return True

    def saved(self) -> tuple:
        rng = self.rng_state.clone() if self.restore_prob > 0.0 else None
        return self.layer.weight.detach().clone(), self.n_updates.clone(), rng

    def load(self, saved: tuple) -> None:
        self.layer.weight.copy_(saved[0])
        self.n_updates.copy_(saved[1])
        if saved[2] is not None:
            self.rng_state = saved[2]

    def extra_repr(self) -> str:
        opts = [f"eta={self.eta}", f"temperature={self.temperature}",
                f"norm_mode={self.norm_mode!r}"]
        opts += [f"{k}={getattr(self, k)}" for k in ("anchor", "restore_prob", "max_angle_deg")
                 if getattr(self, k) not in (0.0, None)]
        return ", ".join(opts)


# ------------------------------------------------------------ anchors for continual use
def interpolate_toward(w: torch.Tensor, w_src: torch.Tensor, strength: float) -> torch.Tensor:
    """``w + strength·(w_src − w)``: a step of size ``strength`` ∈ [0, 1] back to the source."""
    check_same_shape(("w", "w_src"), w, w_src)
    strength = check_number("strength", strength, 0.0, 1.0)
    return w + strength * (w_src - w)


def bound_angle(w: torch.Tensor, w_src: torch.Tensor, max_rad: float) -> torch.Tensor:
    """Rotate each filter ``w[k]`` whose angle to ``w_src[k]`` exceeds ``max_rad`` back onto it.

    The rotation stays in the plane of the two filters and keeps ``‖w[k]‖``. Shapes
    ``(O, ...)``; zero filters are kept.
    """
    check_same_shape(("w", "w_src"), w, w_src)
    if w.ndim < 2 or not w.is_floating_point():
        raise ValueError(f"w must be floating-point filters (O, ...), got {w.dtype} "
                         f"{tuple(w.shape)}")
    max_rad = check_number("max_rad", max_rad, 0.0)
    flat, src = w.flatten(1), w_src.flatten(1)                    # (O, n)
    norm, src_norm = flat.norm(dim=1, keepdim=True), src.norm(dim=1, keepdim=True)
    tiny = torch.finfo(w.dtype).tiny
    u, s = flat / norm.clamp_min(tiny), src / src_norm.clamp_min(tiny)
    cos = (u * s).sum(1, keepdim=True).clamp(-1.0, 1.0)
    perp = u - cos * s                                            # component off the source
    perp = perp / perp.norm(dim=1, keepdim=True).clamp_min(tiny)
    bounded = (np.cos(max_rad) * s + np.sin(max_rad) * perp) * norm
    outside = (cos < np.cos(max_rad)) & (norm > 0) & (src_norm > 0)
    return torch.where(outside, bounded, flat).reshape(w.shape)


def _with_norms_of(w: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``w`` with each filter rescaled to the norm of ``ref``'s (zero filters kept)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    norms, ref_norms = w.flatten(1).norm(dim=1), ref.flatten(1).norm(dim=1)
    alive = (norms > 0).reshape(shape)
    scale = (ref_norms / norms.clamp_min(torch.finfo(w.dtype).tiny)).reshape(shape)
    return torch.where(alive, w * scale, w)


def _fraction(name: str, value) -> float:
    value = non_negative(name, value)
    if value > 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def _n_positions(layer: nn.Conv2d, x: torch.Tensor) -> int:
    return hebbian.conv_positions(x.shape[2], x.shape[3], layer.kernel_size,
                                  stride=layer.stride, padding=layer.padding,
                                  dilation=layer.dilation)


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# --------------------------------------------------------------------------- modulator
class ChannelAffine(nn.Module):
    """Per-channel affine ``γ ⊙ h + β`` over axis 1, initialised to the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (h.ndim - 2)
        return h * self.gamma.reshape(shape) + self.beta.reshape(shape)


# ------------------------------------------------------------------------------- NHL
def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if not list(m.children())]


def find_conv(model: nn.Module, layer: str | None) -> tuple[str, nn.Conv2d]:
    """The conv layer named ``layer``, or the first ``nn.Conv2d`` in registration order."""
    modules = dict(model.named_modules())
    if layer is not None:
        if layer not in modules or not isinstance(modules[layer], nn.Conv2d):
            raise ValueError(f"NHL: layer {layer!r} is not an nn.Conv2d of the model")
        return layer, modules[layer]
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"NHL needs a first conv layer (nn.Conv2d); {type(model).__name__} has none")


def _following_batchnorm(model: nn.Module, conv_name: str) -> tuple[str, nn.Module] | None:
    """The BatchNorm registered directly after ``conv_name`` (the usual conv → BN block)."""
    leaves = _leaf_modules(model)
    names = [n for n, _ in leaves]
    i = names.index(conv_name)
    if i + 1 < len(leaves) and isinstance(leaves[i + 1][1], nn.modules.batchnorm._BatchNorm):
        return leaves[i + 1]
    return None


def _modulator_site(model, conv_name, conv, modulator_at) -> tuple[str, nn.Module]:
    if modulator_at == "auto":
        return _following_batchnorm(model, conv_name) or (conv_name, conv)
    modules = dict(model.named_modules())
    if modulator_at not in modules:
        raise ValueError(f"NHL: modulator_at {modulator_at!r} is not a module of the model")
    return modulator_at, modules[modulator_at]


#: Adapter arguments that NHL sets itself (refused in its ``**options``), and why.
_NHL_FIXED = {
    "params_selector": "NHL adapts conv1 by its Hebbian rule and the modulator by gradient",
    "loss": "NHL minimises the entropy with a modulator and has no loss without one",
    "local_updates": "NHL's local update is its Hebbian conv1",
    "extra_modules": "NHL's added module is its modulator (pass modulator=...)",
}


class NHL(Adapter):
    """Neuro-modulated Hebbian TTA (reconstruction; see the module docstring).

    Parameters
    ----------
    model : classifier containing a ``nn.Conv2d`` (the first one is adapted unless ``layer``).
    layer : name of the conv layer to adapt.
    temperature, eta, norm_mode, reduction, max_normalise, max_steps, anti_hebbian, backend :
        the Hebbian update (:class:`HebbianConv1`).
    anchor, restore_prob, max_angle_deg, seed : pull the Hebbian filters back toward the
        source bank after every step (continual use; :class:`HebbianConv1`). All off by
        default; docs/tta.md gives the values tuned on the held-out shifts.
    modulator : ``"affine"`` (per-channel γ, β), an ``nn.Module`` mapping the site's output to
        the same shape (deep-copied with ``copy=True``, as the model is: the caller's module
        is never adapted or converted), or ``None`` (Hebbian only, no gradient step).
    modulator_at : module whose output is modulated; ``"auto"``: conv1's BatchNorm if it follows
        directly, else conv1. The modulator is hooked onto that module only while a call runs.
    lr, optimizer_factory : modulator optimiser (default Adam lr 1e-3).
    steps, episodic, predict_after_update, hebb_first, bn_stats, copy, **options : see
        :class:`~bioplastic.tta.Adapter`.

    Attributes
    ----------
    extra["modulator"] : the modulator (absent with ``modulator=None``).
    local[0] : the :class:`HebbianConv1`.
    hebbian_layer, modulator_site : names of the adapted conv and of the modulated module.
    """

    def __init__(self, model: nn.Module, *, layer: str | None = None,
                 temperature: float = 1.0, eta: float = 0.05, norm_mode: str = "direction",
                 reduction: str = "mean", max_normalise: bool = False,
                 max_steps: int | None = None, anti_hebbian: bool = False,
                 backend: str = "auto", anchor: float = 0.0, restore_prob: float = 0.0,
                 max_angle_deg: float | None = None, seed: int = 0,
                 modulator: str | nn.Module | None = "affine", modulator_at: str = "auto",
                 lr: float = 1e-3, optimizer_factory: Callable | None = None, steps: int = 1,
                 episodic: bool = False, predict_after_update: bool = True,
                 hebb_first: bool = True, bn_stats: str = "batch", copy: bool = True,
                 **options) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        refuse_fixed("NHL", options, _NHL_FIXED)
        from .tent import lr_optimizer

        net = copy_module.deepcopy(model) if copy else model
        conv_name, conv = find_conv(net, layer)
        if norm_mode == "renorm" and (bn_stats != "batch"
                                      or _following_batchnorm(net, conv_name) is None):
            raise ValueError("NHL norm_mode='renorm' needs a BatchNorm directly after conv1 and "
                             "bn_stats='batch' to absorb the filter-norm changes")
        hebbian = HebbianConv1(conv, temperature=temperature, eta=eta, norm_mode=norm_mode,
                               reduction=reduction, max_normalise=max_normalise,
                               max_steps=max_steps, anti_hebbian=anti_hebbian, backend=backend,
                               anchor=anchor, restore_prob=restore_prob,
                               max_angle_deg=max_angle_deg, seed=seed)
        extra, site_name = _make_modulator(net, conv_name, conv, modulator, modulator_at,
                                           copy)
        options.setdefault("method", "NHL")
        super().__init__(net, no_params, loss="entropy" if modulator is not None else None,
                         optimizer_factory=lr_optimizer(lr, optimizer_factory), steps=steps,
                         episodic=episodic, predict_after_update=predict_after_update,
                         hebb_first=hebb_first, bn_stats=bn_stats, local_updates=(hebbian,),
                         extra_modules=extra, copy=False, **options)
        self.hebbian_layer = conv_name
        self.modulator_site = site_name
        self.lr = lr if optimizer_factory is None else None

    def _attach(self) -> list:
        if "modulator" not in self.extra:
            return []
        modulator = self.extra["modulator"]
        site = self.model.get_submodule(self.modulator_site)
        return [site.register_forward_hook(lambda mod, inp, out: modulator(out))]

    def _repr_fields(self) -> dict:
        hebb = self.local[0]
        fields = {"layer": self.hebbian_layer, "eta": hebb.eta, "norm_mode": hebb.norm_mode,
                  "modulator_at": self.modulator_site, "lr": self.lr}
        fields.update({k: getattr(hebb, k) for k in ("anchor", "restore_prob", "max_angle_deg")
                       if getattr(hebb, k) not in (0.0, None)})
        return {**fields, **super()._repr_fields()}


def _make_modulator(net, conv_name, conv, modulator, modulator_at, copy: bool
                    ) -> tuple[dict, str | None]:
    """``({"modulator": module}, site name)``, or ``({}, None)`` for ``modulator=None``; a
    caller's module is deep-copied with ``copy`` (as the model is), else adapted in place."""
    if modulator is None:
        return {}, None
    site_name, site = _modulator_site(net, conv_name, conv, modulator_at)
    channels = conv.out_channels if site is conv else _channels_of(site, site_name)
    if isinstance(modulator, str) and modulator == "affine":
        module = ChannelAffine(channels)
    elif isinstance(modulator, nn.Module):
        module = copy_module.deepcopy(modulator) if copy else modulator
    else:
        raise TypeError(f"modulator must be 'affine', an nn.Module or None, got {modulator!r}")
    return {"modulator": module.to(device=conv.weight.device, dtype=conv.weight.dtype)}, site_name


def _channels_of(site: nn.Module, name: str) -> int:
    for attr in ("num_features", "out_channels"):
        if hasattr(site, attr):
            return int(getattr(site, attr))
    raise ValueError(f"NHL: cannot tell the channel count of {name!r}; pass an nn.Module as "
                     "modulator")
