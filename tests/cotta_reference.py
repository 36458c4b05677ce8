"""A frozen copy of CoTTA as it was at commit 46ae4a3 (2026-12-02), before its cost work.

``tests/test_tta_cotta.py`` checks that today's :class:`bioplastic.tta.CoTTA` gives the same
predictions, weights, teacher, optimizer state and random stream as this copy, bit for bit.
Copied from ``bioplastic/tta/cotta.py`` and ``bioplastic/tta/base.py`` at that commit
(``git show 46ae4a3:bioplastic/tta/cotta.py``), with the docstrings, ``cotta_augment`` and
``cotta_threshold`` left out and the two base functions the step used (``ema_update``,
``stochastic_restore``) and its optimizer factory copied in. Do not edit to follow the
package: it is the reference the package is held to.
"""

from __future__ import annotations

import copy as copy_module
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bioplastic.tta.base import Adapter, GeneratorState, all_weights_and_biases


# ---- bioplastic/tta/base.py at 46ae4a3 (the three functions the step used)
def default_optimizer(params, lr=1e-3):
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0)


def lr_optimizer(lr, optimizer_factory):
    if optimizer_factory is not None:
        return optimizer_factory

    def factory(params):
        return default_optimizer(params, lr=lr)
    return factory


def ema_update(target, source, momentum):
    with torch.no_grad():
        for t, s in zip(target, source, strict=True):
            t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)


def stochastic_restore(w, w_src, prob, generator):
    mask = torch.rand(w.shape, generator=generator, dtype=torch.float64) < prob
    return torch.where(mask.to(w.device), w_src, w)


# ---- bioplastic/tta/cotta.py at 46ae4a3

__all__ = ["CoTTA", "CoTTAAugment"]


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return -(teacher.softmax(1) * student.log_softmax(1)).sum(1)


def _uniform(u: float, low: float, high: float) -> float:
    return low + (high - low) * u


class CoTTAAugment:

    def __init__(self, *, hflip_p: float = 0.5, noise_std: float = 0.005) -> None:
        if not 0.0 <= float(hflip_p) <= 1.0:
            raise ValueError(f"hflip_p must be in [0, 1], got {hflip_p!r}")
        if not float(noise_std) >= 0.0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
        self.hflip_p, self.noise_std = float(hflip_p), float(noise_std)

    def __repr__(self) -> str:
        return f"CoTTAAugment(hflip_p={self.hflip_p!r}, noise_std={self.noise_std!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.copies(x, generator, 1)[0]

    def copies(self, x: torch.Tensor, generator: torch.Generator, n: int) -> torch.Tensor:
        _check_images(x)
        scalars, noise = self._draws(x, generator, n)
        y = _colour_jitter(x.clamp(0.0, 1.0), scalars)
        y = _gaussian_blur(_random_affine(y, scalars), scalars)
        flip = torch.tensor([s["flip"] < self.hflip_p for s in scalars], device=x.device)
        y = torch.where(flip.view(-1, 1, 1, 1, 1), y.flip(-1), y)
        noise = noise.to(device=x.device, dtype=x.dtype)
        return (y + self.noise_std * noise).clamp(0.0, 1.0).contiguous()

    def skip(self, x: torch.Tensor, generator: torch.Generator, n: int) -> None:
        _check_images(x)
        self._draws(x, generator, n)

    @staticmethod
    def _draws(x: torch.Tensor, generator: torch.Generator, n: int
               ) -> tuple[list[dict], torch.Tensor]:
        rgb = x.shape[1] == 3
        scalars = []
        noise = torch.empty((n, *x.shape), dtype=torch.float64)
        for i in range(n):
            u = torch.rand(10 if rgb else 9, generator=generator, dtype=torch.float64).tolist()
            s = {"brightness": _uniform(u.pop(0), 0.6, 1.4),
                 "contrast": _uniform(u.pop(0), 0.7, 1.3)}
            if rgb:
                s["saturation"] = _uniform(u.pop(0), 0.5, 1.5)
            s["gamma"] = _uniform(u.pop(0), 0.7, 1.3)
            s["angle"] = math.radians(_uniform(u.pop(0), -15.0, 15.0))
            s["scale"] = _uniform(u.pop(0), 0.9, 1.1)
            s["tx"], s["ty"] = (_uniform(u.pop(0), -1 / 16, 1 / 16) * 2 for _ in range(2))
            s["sigma"] = _uniform(u.pop(0), 0.001, 0.5)
            s["flip"] = u.pop(0)
            scalars.append(s)
            torch.randn(x.shape, generator=generator, dtype=torch.float64, out=noise[i])
        return scalars, noise


def _check_images(x) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError("the CoTTA augmentation takes a floating-point image batch "
                         f"(B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")


def _per_copy(scalars: list[dict], key: str, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([s[key] for s in scalars], dtype=like.dtype,
                        device=like.device).view(-1, 1, 1, 1, 1)


def _colour_jitter(x: torch.Tensor, scalars: list[dict]) -> torch.Tensor:
    y = x.unsqueeze(0) * _per_copy(scalars, "brightness", x)
    mean = y.mean(2, keepdim=True).mean((3, 4), keepdim=True)
    y = (y - mean) * _per_copy(scalars, "contrast", x) + mean
    if x.shape[1] == 3:
        grey = y.mean(2, keepdim=True)
        y = grey + (y - grey) * _per_copy(scalars, "saturation", x)
    return y.clamp(0.0, 1.0) ** _per_copy(scalars, "gamma", x)


def _random_affine(y: torch.Tensor, scalars: list[dict]) -> torch.Tensor:
    n, b = y.shape[:2]
    rows = []
    for s in scalars:
        cos, sin = math.cos(s["angle"]) / s["scale"], math.sin(s["angle"]) / s["scale"]
        rows.append([[cos, -sin, s["tx"]], [sin, cos, s["ty"]]])
    theta = torch.tensor(rows, dtype=y.dtype, device=y.device)
    # one sampling grid per copy, shared by the copy's B images
    grid = F.affine_grid(theta, [n, *y.shape[2:]], align_corners=False)
    grid = grid.unsqueeze(1).expand(n, b, *grid.shape[1:]).reshape(n * b, *grid.shape[1:])
    flat = y.reshape(n * b, *y.shape[2:])
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(y.shape)


def _gaussian_blur(y: torch.Tensor, scalars: list[dict], kernel: int = 5) -> torch.Tensor:
    n, b, c, h, w = y.shape
    pad = kernel // 2
    if min(h, w) <= pad:
        return y
    taps = torch.arange(kernel, dtype=y.dtype, device=y.device) - pad
    k1 = torch.exp(-0.5 * (taps / _per_copy(scalars, "sigma", y).view(n, 1)) ** 2)
    k1 = (k1 / k1.sum(1, keepdim=True)).view(n, 1, 1, 1, 1, kernel)
    padded = F.pad(y.reshape(n * b, c, h, w), (pad, pad, pad, pad), mode="reflect")
    padded = padded.view(n, b, c, h + 2 * pad, w + 2 * pad)
    # taps as shifted slices: a per-copy kernel without a grouped convolution
    rows = sum(k1[..., t] * padded[..., t:t + w] for t in range(kernel))
    return sum(k1[..., t] * rows[..., t:t + h, :] for t in range(kernel))


AUGMENT_DRAWS = ("always", "when_used")


class CoTTA(Adapter):

    def __init__(self, model: nn.Module, *, lr: float = 1e-3,
                 optimizer_factory: Callable | None = None, mt: float = 0.999,
                 rst: float = 0.01, ap: float = 0.92, n_augment: int = 32,
                 augment: Callable | None = None, augment_draws: str = "always",
                 augment_chunk: int | None = 8, teacher_vmap: bool = False, seed: int = 0,
                 **options) -> None:
        options.setdefault("method", "CoTTA")
        super().__init__(model, all_weights_and_biases,
                         optimizer_factory=lr_optimizer(lr, optimizer_factory), **options)
        for name, value in (("mt", mt), ("rst", rst), ("ap", ap)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        for name, value in (("n_augment", n_augment), ("augment_chunk", augment_chunk)):
            if value is None and name == "augment_chunk":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if augment_draws not in AUGMENT_DRAWS:
            raise ValueError(f"augment_draws must be one of {AUGMENT_DRAWS}, "
                             f"got {augment_draws!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable (x, generator) -> x, got {augment!r}")
        self.lr, self.mt, self.rst, self.ap = lr, float(mt), float(rst), float(ap)
        self.n_augment, self.augment_draws = n_augment, augment_draws
        self.augment_chunk = n_augment if augment_chunk is None else augment_chunk
        self.teacher_vmap = bool(teacher_vmap)
        self.augmented_batches = 0   # batches whose teacher used the augmentations (diagnostic)
        self.augment = _vectorisable(augment)
        teacher, anchor = copy_module.deepcopy(self.model), copy_module.deepcopy(self.model)
        for net in (teacher, anchor):
            net.requires_grad_(False)
        self.aux.update({"teacher": teacher, "anchor": anchor, "rng": GeneratorState(seed)})
        self._initial = self._snapshot()

    def _student_params(self) -> list[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _matching(self, net: nn.Module) -> list[torch.Tensor]:
        named = dict(net.named_parameters())
        return [named[n] for n in self.adapted_names]

    def _teacher_prediction(self, x: torch.Tensor) -> torch.Tensor:
        teacher, anchor = self.aux["teacher"], self.aux["anchor"]
        with torch.no_grad():
            confidence = anchor(x).softmax(1).max(1).values.mean()
            confident = float(confidence) >= self.ap
            if confident and self.augment_draws == "when_used":
                return teacher(x)
            with self.aux["rng"].generator() as gen:
                if confident:   # the authors' unused copies: only their random draws
                    self._skip_copies(x, gen)
                    return teacher(x)
                self.augmented_batches += 1
                return self._augmented_mean(x, gen)

    def _augmented_mean(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        outputs = []
        for start in range(0, self.n_augment, self.augment_chunk):
            copies = self._copies(x, gen, min(self.augment_chunk, self.n_augment - start))
            outputs.append(self._teacher_many(copies))
        return torch.cat(outputs).mean(0)

    def _copies(self, x: torch.Tensor, gen: torch.Generator, n: int) -> torch.Tensor:
        many = getattr(self.augment, "copies", None)
        if many is not None:
            return many(x, gen, n)
        return torch.stack([self.augment(x, gen) for _ in range(n)])

    def _skip_copies(self, x: torch.Tensor, gen: torch.Generator) -> None:
        skip = getattr(self.augment, "skip", None)
        if skip is not None:
            skip(x, gen, self.n_augment)
            return
        for _ in range(self.n_augment):   # a plain callable: its draws need the copies
            self.augment(x, gen)

    def _teacher_many(self, copies: torch.Tensor) -> torch.Tensor:
        teacher = self.aux["teacher"]
        if self.teacher_vmap:
            return torch.func.vmap(teacher)(copies)
        return torch.stack([teacher(c) for c in copies])

    def _gradient_step(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        rng = self.aux["rng"]
        rng_before, augmented_before = rng.state.clone(), self.augmented_batches
        try:
            teacher_logits = self._teacher_prediction(x)
            self._backward(soft_cross_entropy(logits, teacher_logits).mean())
        except BaseException:   # a skipped step leaves the random stream where it was
            rng.state, self.augmented_batches = rng_before, augmented_before
            raise
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        student = self._student_params()
        ema_update(self._matching(self.aux["teacher"]), student, self.mt)
        if self.rst > 0.0:
            with torch.no_grad(), rng.generator() as gen:
                for p, src in zip(student, self._matching(self.aux["anchor"]), strict=True):
                    p.copy_(stochastic_restore(p, src, self.rst, gen))
        return teacher_logits

    def _repr_fields(self) -> dict:
        fields = {"lr": self.lr, "mt": self.mt, "rst": self.rst, "ap": self.ap,
                  "n_augment": self.n_augment}
        if self.augment_draws != "always":
            fields["augment_draws"] = self.augment_draws
        if self.teacher_vmap:
            fields["teacher_vmap"] = True
        return {**fields, **super()._repr_fields()}


def _vectorisable(augment: Callable | None) -> Callable:
    return CoTTAAugment() if augment is None else augment   # (the partial case left out)
