"""CoTTA: continual test-time adaptation with a mean teacher and stochastic restore.

Wang, Fink, Van Gool & Dai, "Continual Test-Time Domain Adaptation", CVPR 2022 (code:
qinenergy/cotta, ``cifar/cotta.py`` and ``cifar/cfgs/cifar10/cotta.yaml``, read for the
defaults below; a re-implementation on :class:`~bioplastic.tta.Adapter`).

Per test batch (batch-statistics BN; *every* weight and bias of the student adapted)::

    student s = f_θ(x);  teacher t = f_θ'(x);  anchor confidence a = mean_b max softmax f_θ0(x_b)
    a < ap  →  t = mean over n_augment augmented copies of f_θ'(aug(x))   (augmentation mean)
    loss  = mean_b  −Σ_c softmax(t_b)_c · log_softmax(s_b)_c               (soft pseudo-labels)
    θ     ← Adam step;   θ' ← mt·θ' + (1 − mt)·θ                           (mean teacher)
    θ     ← each element restored to its source value θ0 with probability rst  (stochastic restore)
    prediction: t (the teacher's, or the augmentation-averaged one)

Defaults from the authors' CIFAR-10 config and code: Adam lr 1e-3 (betas 0.9/0.999, no
weight decay), ``mt = 0.999``, ``rst = 0.01``, ``ap = 0.92``, ``n_augment = 32``; the anchor and
teacher are copies of the configured model (batch-statistics BN, as in the authors'
``copy_model_and_optimizer``). Choices: the augmented copies are computed only when the
anchor is unconfident (the authors always compute the 32 and use them only then: same
result, less time); ``reset()`` also restores teacher, anchor and random state (the authors'
reset copies the *current* student into a new teacher). :func:`cotta_augment` writes out the
authors' CIFAR augmentation for batches in [0, 1] (one random draw per copy, as torchvision
does on a batch tensor); pass ``augment=`` for another (e.g. without the horizontal flip, which
is wrong for digits).
"""

from __future__ import annotations

import copy as copy_module
import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    Adapter,
    GeneratorState,
    all_weights_and_biases,
    ema_update,
    stochastic_restore,
)
from .tent import lr_optimizer

__all__ = ["CoTTA", "cotta_augment", "soft_cross_entropy"]


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per-sample ``−Σ_c softmax(teacher)_c · log_softmax(student)_c``, (B, C) → (B,)."""
    return -(teacher.softmax(1) * student.log_softmax(1)).sum(1)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _colour_jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness ×U(.6, 1.4), contrast U(.7, 1.3), saturation U(.5, 1.5), gamma U(.7, 1.3)."""
    x = x * _uniform(gen, 0.6, 1.4)
    grey = x.mean(1, keepdim=True)
    x = (x - grey.mean((2, 3), keepdim=True)) * _uniform(gen, 0.7, 1.3) \
        + grey.mean((2, 3), keepdim=True)
    if x.shape[1] == 3:
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * _uniform(gen, 0.5, 1.5)
    return x.clamp(0.0, 1.0) ** _uniform(gen, 0.7, 1.3)


def _random_affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotation U(−15°, 15°), translation ≤ 1/16 of the size, scale U(.9, 1.1); edge padding."""
    angle = math.radians(_uniform(gen, -15.0, 15.0))
    scale = _uniform(gen, 0.9, 1.1)
    tx, ty = (_uniform(gen, -1 / 16, 1 / 16) * 2 for _ in range(2))  # grid units span 2
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gaussian_blur(x: torch.Tensor, gen: torch.Generator, kernel: int = 5) -> torch.Tensor:
    """Gaussian blur, σ ~ U(0.001, 0.5), 5 taps, reflect padding, per channel."""
    sigma = _uniform(gen, 0.001, 0.5)
    taps = torch.arange(kernel, dtype=x.dtype, device=x.device) - kernel // 2
    k1 = torch.exp(-0.5 * (taps / sigma) ** 2)
    k1 = k1 / k1.sum()
    c, pad = x.shape[1], kernel // 2
    if min(x.shape[2:]) <= pad:
        return x
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k1.reshape(1, 1, 1, -1).expand(c, 1, 1, kernel).contiguous(), groups=c)
    return F.conv2d(x, k1.reshape(1, 1, -1, 1).expand(c, 1, kernel, 1).contiguous(), groups=c)


def cotta_augment(x: torch.Tensor, generator: torch.Generator, *, hflip_p: float = 0.5,
                  noise_std: float = 0.005) -> torch.Tensor:
    """The CoTTA authors' CIFAR test-time augmentation for a batch ``(B, C, H, W)`` in [0, 1].

    Clip → colour jitter (brightness, contrast, saturation, gamma; the hue jitter is left out)
    → random affine (edge padding, as the authors' pad-edge / crop) → Gaussian blur →
    horizontal flip with probability ``hflip_p`` → Gaussian noise (std ``noise_std``) → clip.
    One random draw per call (for the whole batch), from ``generator``.
    """
    x = _colour_jitter(x.clamp(0.0, 1.0), generator)
    x = _gaussian_blur(_random_affine(x, generator), generator)
    if float(torch.rand((), generator=generator, dtype=torch.float64)) < hflip_p:
        x = x.flip(-1)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return (x + noise_std * noise.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)


class CoTTA(Adapter):
    """CoTTA (see the module docstring).

    Parameters
    ----------
    model : classifier (BatchNorm recommended; every weight and bias is adapted).
    lr, optimizer_factory : student optimiser (default Adam lr 1e-3).
    mt : teacher EMA momentum.
    rst : stochastic-restore probability per weight element and batch.
    ap : anchor-confidence threshold below which the teacher averages ``n_augment`` copies.
    n_augment : number of augmented copies.
    augment : callable ``(x, generator) -> x`` (default :func:`cotta_augment`).
    seed : seed of the augmentations and restore masks (reset replays them).
    **options : see :class:`~bioplastic.tta.Adapter`.
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3,
                 optimizer_factory: Callable | None = None, mt: float = 0.999,
                 rst: float = 0.01, ap: float = 0.92, n_augment: int = 32,
                 augment: Callable | None = None, seed: int = 0, **options) -> None:
        options.setdefault("method", "CoTTA")
        super().__init__(model, all_weights_and_biases,
                         optimizer_factory=lr_optimizer(lr, optimizer_factory), **options)
        for name, value in (("mt", mt), ("rst", rst), ("ap", ap)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if isinstance(n_augment, bool) or not isinstance(n_augment, int) or n_augment < 1:
            raise ValueError(f"n_augment must be an int >= 1, got {n_augment!r}")
        self.lr, self.mt, self.rst, self.ap = lr, float(mt), float(rst), float(ap)
        self.n_augment = n_augment
        self.augmented_batches = 0   # batches whose teacher used the augmentations (diagnostic)
        self.augment = augment or partial(cotta_augment)
        teacher, anchor = copy_module.deepcopy(self.model), copy_module.deepcopy(self.model)
        for net in (teacher, anchor):
            net.requires_grad_(False)
        self.aux.update({"teacher": teacher, "anchor": anchor, "rng": GeneratorState(seed)})
        self._initial = self._snapshot()

    def _student_params(self) -> list[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _matching(self, net: nn.Module) -> list[torch.Tensor]:
        """``net``'s tensors that correspond to the adapted student parameters, in order."""
        named = dict(net.named_parameters())
        return [named[n] for n in self.adapted_names]

    def _teacher_prediction(self, x: torch.Tensor) -> torch.Tensor:
        teacher, anchor = self.aux["teacher"], self.aux["anchor"]
        with torch.no_grad():
            confidence = anchor(x).softmax(1).max(1).values.mean()
            if float(confidence) >= self.ap:
                return teacher(x)
            self.augmented_batches += 1
            with self.aux["rng"].generator() as gen:
                copies = [teacher(self.augment(x, gen)) for _ in range(self.n_augment)]
            return torch.stack(copies).mean(0)

    def _gradient_step(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        teacher_logits = self._teacher_prediction(x)
        self._backward(soft_cross_entropy(logits, teacher_logits).mean())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        student = self._student_params()
        ema_update(self._matching(self.aux["teacher"]), student, self.mt)
        if self.rst > 0.0:
            with torch.no_grad(), self.aux["rng"].generator() as gen:
                for p, src in zip(student, self._matching(self.aux["anchor"]), strict=True):
                    p.copy_(stochastic_restore(p, src, self.rst, gen))
        return teacher_logits

    def _repr_fields(self) -> dict:
        return {"lr": self.lr, "mt": self.mt, "rst": self.rst, "ap": self.ap,
                "n_augment": self.n_augment, **super()._repr_fields()}
