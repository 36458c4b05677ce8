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
``copy_model_and_optimizer``). ``ap`` is a per-dataset setting (the authors use 0.72 for
CIFAR-100); :func:`cotta_threshold` computes the authors' rule for it from source images.

Cost and choices. The authors compute the 32 augmented teacher forwards on every batch and use
them only when the anchor is unconfident. Here the copies and their forwards are computed only
when used, but their random draws are made on every batch (``augment_draws="always"``), so
the random stream, and so every result, is that of computing them on every batch;
``augment_draws="when_used"`` skips the draws too (cheaper still, another random stream).
The unused copies' draws advance the generator by as many plain uniform draws (no Box–Muller
transform; checked once per process against the real draws), and the mean-teacher update,
the restore masks (one draw over all weights, the concatenation of the per-tensor draws) and
Adam (``foreach=True``) run without per-tensor Python calls: the same numbers, bit for bit,
as the per-tensor code (``tests/test_tta_cotta.py`` holds it to a frozen copy).
:class:`CoTTAAugment` makes the copies of a chunk at once (``copies``: the draws in the order
of one-by-one calls, the image operations over the stacked copies). The teacher runs once per
copy, each copy with its own batch statistics (``teacher_batch="loop"``, the authors' loop);
``"copies"`` runs each chunk as one forward of the stacked copies, every BatchNorm with batch
statistics normalising each copy by its own (:func:`~bioplastic.tta.per_copy_batch_norm`),
and ``"vmap"`` as one ``torch.func.vmap`` forward; both equal the loop to round-off, and on
the CPU neither is faster (the forwards' work is per sample; docs/tta.md).
``channels_last=True`` runs the teacher's and the anchor's forwards in channels-last layout
(faster CPU kernels; round-off, which Adam then amplifies in the student's weights).
``reset()`` also restores teacher, anchor and random state (the authors' reset copies
the *current* student into a new teacher). Pass ``augment=`` for another augmentation (e.g.
``CoTTAAugment(hflip_p=0)`` for digits, where a mirrored digit is another digit).
"""

from __future__ import annotations

import copy as copy_module
import functools
import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import positive_int
from .base import (
    Adapter,
    GeneratorState,
    all_weights_and_biases,
    channels_last_forward,
    check_class_scores,
    check_logits,
    check_module,
    check_number,
    check_samples,
    checked_forward,
    default_optimizer,
    ema_update,
    per_copy_batch_norm,
    refuse_fixed,
    stochastic_restore_all,
)

__all__ = ["CoTTA", "CoTTAAugment", "cotta_augment", "cotta_threshold", "soft_cross_entropy"]


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per-sample ``−Σ_c softmax(teacher)_c · log_softmax(student)_c``, (B, C) → (B,)."""
    check_class_scores("student", student)
    check_class_scores("teacher", teacher, student)
    return -(teacher.softmax(1) * student.log_softmax(1)).sum(1)


def _uniform(u: float, low: float, high: float) -> float:
    return low + (high - low) * u


class CoTTAAugment:
    """The CoTTA authors' CIFAR test-time augmentation for batches ``(B, C, H, W)`` in [0, 1].

    Clip → colour jitter (brightness ×U(.6, 1.4), contrast U(.7, 1.3), saturation U(.5, 1.5)
    for 3 channels, gamma U(.7, 1.3); the hue jitter is left out) → random affine (rotation
    U(−15°, 15°), translation ≤ 1/16 of the size, scale U(.9, 1.1), edge padding, as the
    authors' pad-edge / crop) → Gaussian blur (σ ~ U(0.001, 0.5), 5 taps, reflect padding) →
    horizontal flip with probability ``hflip_p`` → Gaussian noise (std ``noise_std``) → clip.
    One random draw per copy (for the whole batch, as torchvision does on a batch tensor).

    ``aug(x, generator)`` makes one copy. ``aug.copies(x, generator, n)`` makes ``n`` copies
    at once, ``(n, B, C, H, W)``: the same random draws, in the same order, as ``n`` calls
    (the image operations run once over the stacked copies; results equal to round-off).
    ``aug.skip(x, generator, n)`` makes only the draws: the generator ends where ``copies``
    would leave it.
    """

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
        """``n`` augmented copies of ``x`` (B, C, H, W) → (n, B, C, H, W)."""
        _check_images(x)
        scalars, noise = self._draws(x, generator, n)
        y = _colour_jitter(x.clamp(0.0, 1.0), scalars)
        y = _gaussian_blur(_random_affine(y, scalars), scalars)
        flip = torch.tensor([s["flip"] < self.hflip_p for s in scalars], device=x.device)
        y = torch.where(flip.view(-1, 1, 1, 1, 1), y.flip(-1), y)
        noise = noise.to(device=x.device, dtype=x.dtype)
        return (y + self.noise_std * noise).clamp(0.0, 1.0).contiguous()

    def skip(self, x: torch.Tensor, generator: torch.Generator, n: int) -> None:
        """Advance ``generator`` exactly as :meth:`copies` would, without making the copies.

        The copies' draws are uniform float64 scalars and a ``randn`` noise tensor per copy;
        the generator only needs to end where they leave it, so it is advanced by as many
        uniform float64 draws (one 64-bit draw each, as the noise's Box–Muller inputs are)
        without the Box–Muller transform. The count rests on how torch's CPU generator fills
        a float64 ``randn`` (:func:`_draws_per_copy`); it is checked once per process against
        the real draws, and the real draws are made wherever it does not hold.
        """
        _check_images(x)
        per_copy = _draws_per_copy(x)
        if per_copy is None or not _uniform_skip_is_exact():
            self._draws(x, generator, n)
            return
        _advance(generator, n * per_copy)

    @staticmethod
    def _draws(x: torch.Tensor, generator: torch.Generator, n: int
               ) -> tuple[list[dict], torch.Tensor]:
        """Per copy, in this order: the scalar parameters, then the noise (float64, CPU)."""
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


#: uniform draws per call of :func:`_advance` (bounds its buffer to 8 MB)
_ADVANCE_CHUNK = 1 << 20


def _draws_per_copy(x: torch.Tensor) -> int | None:
    """Uniform float64 draws that one copy's :meth:`CoTTAAugment._draws` consumes, or ``None``.

    The scalars: one draw each (9, or 10 with saturation for RGB). The noise: torch's CPU
    float64 ``randn`` of ``k >= 16`` contiguous elements draws ``k`` uniforms, plus 16 more to
    recompute the last 16 values when ``k`` is not a multiple of 16 (its ``normal_fill``);
    below 16 it draws pairs and keeps a spare normal in the generator, so ``None`` (the real
    draws are made).
    """
    k = x.numel()
    if k < 16:
        return None
    return (10 if x.shape[1] == 3 else 9) + k + (16 if k % 16 else 0)


def _advance(generator: torch.Generator, count: int) -> None:
    """Make ``count`` uniform float64 draws from ``generator`` and discard them."""
    buffer = torch.empty(min(count, _ADVANCE_CHUNK), dtype=torch.float64)
    while count > 0:
        part = buffer[:min(count, len(buffer))]
        part.uniform_(generator=generator)
        count -= len(part)


@functools.cache
def _uniform_skip_is_exact() -> bool:
    """Whether :func:`_advance` by :func:`_draws_per_copy` leaves a generator where the real
    draws do (grey and RGB batches, noise sizes a multiple of 16 and not)."""
    for shape in ((1, 1, 4, 4), (2, 1, 3, 3), (1, 3, 5, 5), (2, 3, 4, 4)):
        x = torch.zeros(shape)
        real, fast = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        CoTTAAugment._draws(x, real, 3)
        _advance(fast, 3 * _draws_per_copy(x))
        if not torch.equal(real.get_state(), fast.get_state()):
            return False
    return True


def _check_images(x) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError("the CoTTA augmentation takes a floating-point image batch "
                         f"(B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")


def _per_copy(scalars: list[dict], key: str, like: torch.Tensor) -> torch.Tensor:
    """One parameter of every copy as an (n, 1, 1, 1, 1) tensor of ``like``'s dtype."""
    return torch.tensor([s[key] for s in scalars], dtype=like.dtype,
                        device=like.device).view(-1, 1, 1, 1, 1)


def _colour_jitter(x: torch.Tensor, scalars: list[dict]) -> torch.Tensor:
    """(B, C, H, W) → (n, B, C, H, W): brightness, contrast, [saturation], clip, gamma."""
    y = x.unsqueeze(0) * _per_copy(scalars, "brightness", x)
    mean = y.mean(2, keepdim=True).mean((3, 4), keepdim=True)
    y = (y - mean) * _per_copy(scalars, "contrast", x) + mean
    if x.shape[1] == 3:
        grey = y.mean(2, keepdim=True)
        y = grey + (y - grey) * _per_copy(scalars, "saturation", x)
    return y.clamp(0.0, 1.0) ** _per_copy(scalars, "gamma", x)


def _random_affine(y: torch.Tensor, scalars: list[dict]) -> torch.Tensor:
    """Rotate, scale and translate each copy (its own draw); bilinear, edge padding."""
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
    """Separable Gaussian blur of each copy with its own σ; reflect padding, per channel."""
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


def cotta_augment(x: torch.Tensor, generator: torch.Generator, *, hflip_p: float = 0.5,
                  noise_std: float = 0.005) -> torch.Tensor:
    """One copy of :class:`CoTTAAugment` (the authors' CIFAR augmentation), ``(B, C, H, W)``."""
    return CoTTAAugment(hflip_p=hflip_p, noise_std=noise_std)(x, generator)


def cotta_threshold(model: nn.Module, x_source: torch.Tensor, *, quantile: float = 0.05,
                    margin: float = 0.05, batch_size: int = 256) -> float:
    """The CoTTA authors' rule for ``ap``: a low quantile of the source model's confidence on
    source images, minus a margin.

    The authors (qinenergy/cotta issue #16 and the paper's supplementary) feed source images
    to the source model without adaptation, take the 5 % quantile ``s`` of the max-softmax
    confidences and set ``ap = s - 0.05``; their configs hold the results (0.92 for
    CIFAR-10, 0.72 for CIFAR-100). Here the model runs as given by ``model.eval()`` (its
    running BatchNorm statistics), under ``no_grad``; every submodule's training flag is
    restored, nothing else changes.

    Parameters
    ----------
    model : the source classifier.
    x_source : tensor (N, ...) — source-like inputs (e.g. clean training images).
    quantile, margin : the authors' 0.05 and 0.05.
    batch_size : images per forward (memory only; the result does not depend on it
        beyond float round-off of BatchNorm in eval mode, which uses no batch statistics).

    Returns
    -------
    float — clipped to [0, 1].
    """
    check_module("model", model)
    check_samples("x_source", x_source)
    if not 0.0 <= float(quantile) <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
    positive_int("batch_size", batch_size)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        confidences = []
        with torch.no_grad():
            for i in range(0, len(x_source), batch_size):
                chunk = x_source[i:i + batch_size]
                logits = checked_forward("cotta_threshold", model, chunk)
                check_logits("cotta_threshold", logits, len(chunk))
                confidences.append(logits.softmax(1).max(1).values)
        conf = torch.cat(confidences)
    finally:
        for m, mode in modes:
            m.training = mode
    s = float(torch.quantile(conf.double(), float(quantile)))
    return min(1.0, max(0.0, s - float(margin)))


AUGMENT_DRAWS = ("always", "when_used")
TEACHER_BATCH = ("loop", "copies", "vmap")


class CoTTA(Adapter):
    """CoTTA (see the module docstring).

    Parameters
    ----------
    model : classifier (BatchNorm recommended; every weight and bias is adapted).
    lr, optimizer_factory : student optimiser (default Adam lr 1e-3, betas 0.9/0.999, its
        ``foreach`` implementation: on the CPU the same numbers as its per-tensor loop).
    mt : teacher EMA momentum.
    rst : stochastic-restore probability per weight element and batch.
    ap : anchor-confidence threshold below which the teacher averages ``n_augment`` copies.
    n_augment : number of augmented copies (the authors' 32).
    augment : the augmentation: a :class:`CoTTAAugment` (default ``CoTTAAugment()``), or any
        callable ``(x, generator) -> x`` making one copy (then the copies are made one by one;
        an object with ``copies(x, generator, n)`` and ``skip(x, generator, n)`` methods is
        vectorised as :class:`CoTTAAugment` is). ``functools.partial(cotta_augment, ...)`` is
        turned into the equivalent :class:`CoTTAAugment`.
    augment_draws : ``"always"`` (default): every batch makes the random draws of the
        ``n_augment`` copies, as the authors' code, which computes the copies on every batch
        and uses them only when the anchor is unconfident; the copies and their teacher
        forwards are computed only when used (same results, bit for bit). ``"when_used"``:
        no draws either when the copies are not used — another random stream from the first
        confident batch on (the later augmentations and restore masks differ).
    augment_chunk : copies augmented (and, with ``teacher_batch`` ``"copies"`` or ``"vmap"``,
        forwarded) together; bounds the memory to ``augment_chunk`` × the batch (``None``: all
        ``n_augment`` at once).
    teacher_batch : how the teacher runs the augmented copies, each with its own batch
        statistics (a plain stacked batch would mix them across copies). ``"loop"`` (default):
        one forward per copy, as the authors' code. ``"copies"``: one forward of a chunk's
        stacked copies, each BatchNorm with batch statistics normalising (and updating any
        running statistics) copy by copy (:func:`~bioplastic.tta.per_copy_batch_norm`; the
        model must keep the batch as the leading dimension and have no other layer mixing
        samples). ``"vmap"``: one ``torch.func.vmap`` forward per chunk (a model that
        ``vmap`` cannot run raises). Both equal the loop to round-off of another batch size;
        on the CPU neither is faster (docs/tta.md), where launches dominate (a GPU) they may be.
    channels_last : run the anchor's and the teacher's forwards (never the student's) with
        4-D inputs and weights in channels-last layout
        (:func:`~bioplastic.tta.channels_last_forward`): faster CPU convolution, batch norm
        and pooling kernels, another summation order (float32 round-off in the logits, which
        Adam's normalised step amplifies in the adapted weights). Not with ``"vmap"``.
    seed : seed of the augmentations and restore masks (reset replays them).
    **options : see :class:`~bioplastic.tta.Adapter`.
    """

    _adapts = "every weight and bias"

    def __init__(self, model: nn.Module, *, lr: float = 1e-3,
                 optimizer_factory: Callable | None = None, mt: float = 0.999,
                 rst: float = 0.01, ap: float = 0.92, n_augment: int = 32,
                 augment: Callable | None = None, augment_draws: str = "always",
                 augment_chunk: int | None = 8, teacher_batch: str = "loop",
                 channels_last: bool = False, seed: int = 0, **options) -> None:
        refuse_fixed("CoTTA", options, {
            "params_selector": "CoTTA adapts every weight and bias"})
        options.setdefault("method", "CoTTA")
        mt, rst, ap = (check_number(name, value, 0.0, 1.0)
                       for name, value in (("mt", mt), ("rst", rst), ("ap", ap)))
        if optimizer_factory is None:   # Adam's foreach path: same numbers, fewer calls
            optimizer_factory = partial(default_optimizer, lr=lr, foreach=True)
        super().__init__(model, all_weights_and_biases, optimizer_factory=optimizer_factory,
                         **options)
        positive_int("n_augment", n_augment)
        if augment_chunk is not None:
            positive_int("augment_chunk", augment_chunk)
        if augment_draws not in AUGMENT_DRAWS:
            raise ValueError(f"augment_draws must be one of {AUGMENT_DRAWS}, "
                             f"got {augment_draws!r}")
        if teacher_batch not in TEACHER_BATCH:
            raise ValueError(f"teacher_batch must be one of {TEACHER_BATCH}, "
                             f"got {teacher_batch!r}")
        if channels_last and teacher_batch == "vmap":
            raise ValueError("channels_last is not supported with teacher_batch='vmap'")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable (x, generator) -> x, got {augment!r}")
        self.lr, self.mt, self.rst, self.ap = lr, mt, rst, ap
        self.n_augment, self.augment_draws = n_augment, augment_draws
        self.augment_chunk = n_augment if augment_chunk is None else augment_chunk
        self.teacher_batch, self.channels_last = teacher_batch, bool(channels_last)
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
        """``net``'s tensors that correspond to the adapted student parameters, in order
        (looked up under every name, as a tied parameter is adapted under its first one)."""
        named = dict(net.named_parameters(remove_duplicate=False))
        return [named[n] for n in self.adapted_names]

    def _teacher_prediction(self, x: torch.Tensor) -> torch.Tensor:
        teacher, anchor = self.aux["teacher"], self.aux["anchor"]
        with torch.no_grad():
            confidence = self._forward(anchor, x).softmax(1).max(1).values.mean()
            confident = float(confidence) >= self.ap
            if confident and self.augment_draws == "when_used":
                return self._forward(teacher, x)
            with self.aux["rng"].generator() as gen:
                if confident:   # the authors' unused copies: only their random draws
                    self._skip_copies(x, gen)
                    return self._forward(teacher, x)
                self.augmented_batches += 1
                return self._augmented_mean(x, gen)

    def _augmented_mean(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Mean teacher logits over ``n_augment`` copies, made ``augment_chunk`` at a time."""
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
        """Teacher logits of each copy (n, B, ...) → (n, B, classes), per-copy statistics."""
        teacher = self.aux["teacher"]
        if self.teacher_batch == "loop":
            return torch.stack([self._forward(teacher, c) for c in copies])
        if self.teacher_batch == "vmap":
            return torch.func.vmap(teacher)(copies)
        n, b = copies.shape[:2]
        with per_copy_batch_norm(teacher, n):
            logits = self._forward(teacher, copies.flatten(0, 1))
        return logits.unflatten(0, (n, b))

    def _forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A forward of the teacher or the anchor (the student's is the wrapper's)."""
        with self._pooling(net):   # the options' max_pool_channels_last
            return channels_last_forward(net, x) if self.channels_last else net(x)

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
            with rng.generator() as gen:
                stochastic_restore_all(student, self._matching(self.aux["anchor"]), self.rst,
                                       gen)
        return teacher_logits

    def _method_state(self) -> dict:
        # getattr: Adapter.__init__ snapshots before this class sets its attributes
        return {"augmented_batches": getattr(self, "augmented_batches", 0)}

    def _load_method_state(self, state: dict) -> None:
        self.augmented_batches = int(state.get("augmented_batches", 0))

    def _repr_fields(self) -> dict:
        fields = {"lr": self.lr, "mt": self.mt, "rst": self.rst, "ap": self.ap,
                  "n_augment": self.n_augment}
        if self.augment_draws != "always":
            fields["augment_draws"] = self.augment_draws
        if self.teacher_batch != "loop":
            fields["teacher_batch"] = self.teacher_batch
        if self.channels_last:
            fields["channels_last"] = True
        return {**fields, **super()._repr_fields()}


def _vectorisable(augment: Callable | None) -> Callable:
    """The default augmentation, or a ``partial`` of :func:`cotta_augment` as the class."""
    if augment is None:
        return CoTTAAugment()
    if isinstance(augment, partial) and augment.func is cotta_augment and not augment.args:
        return CoTTAAugment(**augment.keywords)
    return augment
