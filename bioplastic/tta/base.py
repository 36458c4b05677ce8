"""The test-time adaptation wrapper: select params → configure → check → adapt step → snapshot.

Each stage is a small function; :class:`Adapter` composes them (Tent's decomposition, Wang et
al., ICLR 2021, DequanWang/tent; docs/tta.md).

**Schedule of one call** ``adapter(x)`` (one test batch)::

    episodic → reset()                                   (restore the construction snapshot)
    window   → x_adapt = cat(last N samples, x)          (single_sample_window=N)
    repeat `steps` times, inside enable_grad (works under a caller's no_grad):
        local updates (e.g. Hebbian conv1), under no_grad    (hebb_first=True)
        logits = model(x_adapt); loss = mean entropy; backward; optimizer step; zero_grad
        local updates                                         (hebb_first=False)
    return the logits of the last step (Tent: computed *before* its update), or
           model(x) re-computed after all updates (predict_after_update=True)
    reset_every=K → reset() after every K adapted batches

Choices (all options): the model is deep-copied (``copy=True``), so the caller's model is never
touched; the copy is put in **eval mode** (dropout off; Tent uses ``train()``, which also turns
dropout on) and BatchNorm is configured separately by ``bn_stats``:

* ``"batch"``: ``track_running_stats=False`` and the running buffers set to ``None``, so BN
  normalises with the statistics of the test batch in train *and* eval mode (Tent's norm.py);
* ``"source"``: BN in eval mode, normalising with the source running statistics.

A step is transactional: non-finite input, a non-finite loss or gradient, or an exception in
the forward pass skip the update and restore every tensor the step could have changed (the
model is never left corrupted); each kind of skip warns once per adapter (``RuntimeWarning``)
and is counted in ``adapter.skipped``.

State: ``adapter.state_dict()`` is the standard ``nn.Module`` one (the model, added and
auxiliary modules under ``model.``, ``extra.``, ``local.``, ``aux.``) plus ``_extra_state``
(optimizer state, counters, the sample window, a method's own state), so an adapter nested in
a parent module saves and loads with it. Hooks a method needs (NHL's modulator) are registered
only while a call runs.

Batch size 1 with batch statistics is refused (the statistics of one sample are degenerate)
unless ``single_sample_window=N``: the adapter then keeps the last N samples (a FIFO of
detached inputs) and adapts on them together with the new batch, returning only the new rows
(``predict`` prepends them too). One sample with an empty window (the first call, after a
reset, every call with ``episodic``) is refused as well.

A parameter shared by several modules (tied weights) is selected, optimised and restored once,
under its first name.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validate import count, positive_int

__all__ = [
    "Adapter",
    "softmax_entropy",
    "bn_affine_params",
    "no_params",
    "batchnorm_layers",
    "configure_model",
    "check_model",
    "check_logits",
    "check_outputs",
    "max_pool_channels_last",
    "MAX_POOL_CHANNELS_LAST_MIN",
    "snapshot",
    "restore",
    "default_optimizer",
    "check_gradients",
    "all_weights_and_biases",
    "reliable",
    "ema_update",
    "stochastic_restore",
    "stochastic_restore_all",
    "GeneratorState",
    "BN_STATS",
    "per_copy_batch_norm",
    "channels_last_forward",
]

BN_STATS = ("batch", "source")
ParamsSelector = Callable[[nn.Module], Iterable[tuple[str, nn.Parameter]]]


# ----------------------------------------------------------------------------- loss
def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample entropy ``−Σ_c softmax(x)_c · log_softmax(x)_c`` of logits (B, C) → (B,)."""
    check_class_scores("logits", logits)
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def check_class_scores(name: str, value, like: torch.Tensor | None = None) -> None:
    """A clear error unless ``value`` is a floating tensor ``(B, C, ...)`` (classes on axis
    1, where the losses take their softmaxes), of ``like``'s shape when given."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor (B, n_classes), got "
                        f"{getattr(value, 'dtype', type(value).__name__)}")
    if value.ndim < 2:
        raise ValueError(f"{name} must have shape (B, n_classes, ...), got {tuple(value.shape)}")
    if like is not None and value.shape != like.shape:
        raise ValueError(f"{name} must have the shape {tuple(like.shape)} of the other logits, "
                         f"got {tuple(value.shape)}")


def check_number(name: str, value, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]`` (a Python or NumPy number, or a one-element
    tensor), or a clear error naming the argument."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not low <= value <= high:   # NaN fails too
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return value


def check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def check_same_shape(names: tuple[str, str], first, second) -> None:
    """Two tensors of one shape (a clear error naming the argument otherwise)."""
    for name, t in zip(names, (first, second), strict=True):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if first.shape != second.shape:
        raise ValueError(f"{names[0]} has shape {tuple(first.shape)} but {names[1]} "
                         f"{tuple(second.shape)}")


def check_tensor_pairs(names: tuple[str, str], first, second) -> tuple[list, list]:
    """Two equally long sequences of tensors of pairwise equal shapes, as lists (a clear
    error naming the argument otherwise)."""
    pairs = []
    for name, seq in zip(names, (first, second), strict=True):
        if isinstance(seq, torch.Tensor | str) or not isinstance(seq, Iterable):
            raise TypeError(f"{name} must be a sequence of tensors, got {type(seq).__name__}")
        pairs.append(list(seq))
    first, second = pairs
    if len(first) != len(second):
        raise ValueError(f"{names[0]} has {len(first)} tensors but {names[1]} {len(second)}")
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        check_same_shape((f"{names[0]}[{i}]", f"{names[1]}[{i}]"), a, b)
    return first, second


def check_logits(method: str, logits, batch: int) -> None:
    """The adapted losses take softmaxes over axis 1 of per-sample logits: anything else (a
    tuple, a (B,) score, another batch size) is a ``ValueError`` here, not an IndexError in
    the loss."""
    if not isinstance(logits, torch.Tensor) or logits.ndim < 2 or logits.shape[0] != batch:
        raise ValueError(f"{method}: the model must return logits (B, n_classes) for its "
                         f"loss, B = {batch}; got {_described(logits)}")


def check_outputs(method: str, outputs, batch: int) -> None:
    """A method without a loss returns the model's rows for the batch: anything but a tensor
    ``(B, ...)`` (a tuple, a dict, another batch size) is a ``ValueError`` naming it."""
    if not isinstance(outputs, torch.Tensor) or outputs.ndim < 1 or outputs.shape[0] != batch:
        raise ValueError(f"{method}: the model must return a tensor of per-sample outputs "
                         f"(B, ...), B = {batch}; got {_described(outputs)}")


def _described(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


# -------------------------------------------------------------------- select params
def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """Every BatchNorm1d/2d/3d of ``model`` with its name."""
    check_module("model", model)
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_affine_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weight and bias of every affine BatchNorm (Tent's ``collect_params``), each once."""
    return unique_params(p for name, bn in batchnorm_layers(model)
                         for p in own_params(name, bn))


def own_params(name: str, module: nn.Module, only: tuple[str, ...] | None = None
               ) -> list[tuple[str, nn.Parameter]]:
    """``module``'s own parameters (those named in ``only``, if given) with their full names.

    A parametrized tensor (``torch.nn.utils.parametrize``, e.g. ``weight_norm``) is a value
    recomputed from its originals, so it is represented by them:
    ``<name>.parametrizations.weight.original0`` … (what an optimizer can change).
    """
    prefix = f"{name}." if name else ""
    found = [(f"{prefix}{pname}", p) for pname, p in module.named_parameters(recurse=False)
             if only is None or pname in only]
    if parametrize.is_parametrized(module):
        for pname, plist in module.parametrizations.items():
            if only is None or pname in only:
                found += [(f"{prefix}parametrizations.{pname}.{o}", p)
                          for o, p in plist.named_parameters()]
    return found


def unique_params(named: Iterable[tuple[str, nn.Parameter]]) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` pairs with each tensor once, under its first name: a shared
    (tied) parameter must be adapted, restored and given to an optimizer once."""
    seen: set[int] = set()
    out = []
    for name, p in named:
        if id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


def no_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Select nothing (BN adaptation and the source baseline)."""
    return []


def default_optimizer(params: Sequence[nn.Parameter], lr: float = 1e-3, *,
                      foreach: bool | None = None) -> torch.optim.Optimizer:
    """Adam, lr 1e-3, betas (0.9, 0.999), weight decay 0 (Tent ``cfgs/tent.yaml``).

    ``foreach`` is passed to :class:`torch.optim.Adam` (``None``: torch's choice, which is the
    per-tensor loop on the CPU; ``True``: the ``torch._foreach_*`` implementation, the same
    numbers on the CPU (CoTTA uses it; tested) with fewer Python-level calls).
    """
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0,
                            foreach=foreach)


def all_weights_and_biases(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every ``weight`` and ``bias`` of every module (CoTTA's ``collect_params``), each
    tensor once (a tied weight under its first name); a parametrized one by its originals
    (:func:`own_params`)."""
    check_module("model", model)
    return unique_params(p for name, m in model.named_modules()
                         for p in own_params(name, m, ("weight", "bias")))


def reliable(entropy: torch.Tensor, margin: float) -> torch.Tensor:
    """Boolean mask (B,) of the samples whose entropy is below ``margin`` (EATA, SAR)."""
    if not isinstance(entropy, torch.Tensor):
        raise TypeError(f"entropy must be a torch.Tensor (B,), got {type(entropy).__name__}")
    return entropy < check_number("margin", margin)


def ema_update(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor],
               momentum: float) -> None:
    """In place ``target ← momentum·target + (1 − momentum)·source`` (a mean teacher).

    Per tensor ``t.mul_(momentum).add_(s, alpha=1 − momentum)``. When every tensor is on the
    CPU the two steps run as one ``torch._foreach_mul_`` and one ``torch._foreach_add_`` call:
    on the CPU these loop over the same per-tensor kernels (the same numbers, bit for bit;
    tested), with one dispatch each instead of one per tensor. Elsewhere (a GPU's fused
    ``_foreach`` kernels are not known to round the same way) the tensors go one by one.
    """
    target, source = check_tensor_pairs(("target", "source"), target, source)
    momentum = check_number("momentum", momentum, 0.0, 1.0)
    if not target:
        return
    with torch.no_grad():
        source = [s.detach() for s in source]
        if all(t.device.type == "cpu" for t in (*target, *source)):
            torch._foreach_mul_(target, momentum)
            torch._foreach_add_(target, source, alpha=1.0 - momentum)
            return
        for t, s in zip(target, source, strict=True):
            t.mul_(momentum).add_(s, alpha=1.0 - momentum)


def stochastic_restore(w: torch.Tensor, w_src: torch.Tensor, prob: float,
                       generator: torch.Generator) -> torch.Tensor:
    """Each element of ``w`` replaced by ``w_src``'s with probability ``prob`` (CoTTA).

    The mask is drawn on the CPU from ``generator`` (reproducible on every device).
    """
    check_same_shape(("w", "w_src"), w, w_src)
    prob = check_number("prob", prob, 0.0, 1.0)
    check_generator(generator)
    mask = torch.rand(w.shape, generator=generator, dtype=torch.float64) < prob
    return torch.where(mask.to(w.device), w_src, w)


#: elements whose restore masks :func:`stochastic_restore_all` draws in one call (memory bound)
RESTORE_CHUNK = 1 << 22


def stochastic_restore_all(weights: Sequence[torch.Tensor], sources: Sequence[torch.Tensor],
                           prob: float, generator: torch.Generator) -> None:
    """In place, :func:`stochastic_restore` of each tensor of ``weights`` in turn, bit for bit.

    The same masks as calling ``w.copy_(stochastic_restore(w, src, prob, generator))`` for
    each pair in order: the CPU generator's uniform draws are made one per element, in order
    (one 64-bit draw per float64), so one ``torch.rand`` over the elements of several tensors
    is the concatenation of their separate draws (tested). Tensors are grouped so that one
    call draws at most :data:`RESTORE_CHUNK` elements (or one tensor, if larger), and each
    tensor is restored in place (``torch.where(..., out=w)``), without a temporary copy.
    """
    weights, sources = check_tensor_pairs(("weights", "sources"), weights, sources)
    prob = check_number("prob", prob, 0.0, 1.0)
    check_generator(generator)
    with torch.no_grad():
        for group in _element_groups([w.numel() for w in weights], RESTORE_CHUNK):
            sizes = [weights[i].numel() for i in group]
            mask = torch.rand(sum(sizes), generator=generator, dtype=torch.float64) < prob
            for i, m in zip(group, mask.split(sizes), strict=True):
                w = weights[i]
                torch.where(m.view(w.shape).to(w.device), sources[i], w, out=w)


def _element_groups(sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Consecutive indices grouped so each group's total size is ≤ ``limit`` (or one item)."""
    groups: list[list[int]] = []
    total = limit + 1
    for i, n in enumerate(sizes):
        if total + n > limit:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups


def _uses_batch_statistics(bn: nn.modules.batchnorm._BatchNorm) -> bool:
    """Whether ``bn`` normalises with its input's statistics (torch's own rule)."""
    return bn.training or (bn.running_mean is None and bn.running_var is None)


@contextlib.contextmanager
def per_copy_batch_norm(model: nn.Module, copies: int):
    """While active, ``model(x)`` on ``copies`` stacked batches equals one forward per batch.

    ``x`` is ``copies`` batches of equal size stacked along the batch dimension
    (``(copies·B, ...)``, copy-major). Layers that treat samples one by one (convolution,
    linear, pooling, activations, GroupNorm, LayerNorm, BatchNorm with running statistics)
    give each sample what it gets in its own batch, up to float round-off of another batch
    size. BatchNorm with batch statistics would mix the copies' statistics: while the context
    is active, each such layer (``BatchNorm1d/2d/3d`` and subclasses) runs its own forward once
    per copy's block of ``B`` rows and concatenates the results, so every copy is normalised
    by its own mean and biased variance, and a layer that updates running statistics updates
    them once per copy, in order, as separate forwards would. The layers' ``forward`` is
    replaced by an instance attribute and restored on exit, even on error; nothing else of
    ``model`` changes.

    Assumes the model keeps the batch as the leading dimension of every BatchNorm input (each
    copy's rows contiguous; a BatchNorm input whose leading size is not a multiple of
    ``copies`` raises ``ValueError``) and that BatchNorm is its only layer mixing samples.
    """
    check_module("model", model)
    positive_int("copies", copies)
    layers = [bn for _, bn in batchnorm_layers(model) if _uses_batch_statistics(bn)]
    if copies == 1:
        layers = []
    with _replaced_forwards(layers, lambda bn: _per_copy_forward(bn.forward, copies)):
        yield model


@contextlib.contextmanager
def _replaced_forwards(layers: Sequence[nn.Module], make: Callable):
    """While active, each layer's ``forward`` is ``make(layer)`` (an instance attribute,
    restored on exit, even on error)."""
    saved = [layer.__dict__.get("forward") for layer in layers]
    try:
        for layer in layers:
            layer.forward = make(layer)
        yield
    finally:
        for layer, own in zip(layers, saved, strict=True):
            if own is None:
                del layer.forward
            else:
                layer.forward = own


#: Fewest channels at which torch's channels-last CPU max-pooling kernel, layout copies
#: included, beats its default-layout one (torch 2.13, one thread, 8×8 to 112×112 maps:
#: 0.7× at 2 channels, 1.7–2.0× at 4, 3.5–4.2× at 8, up to 5.9× at 64; docs/tta.md).
MAX_POOL_CHANNELS_LAST_MIN = 8


@contextlib.contextmanager
def max_pool_channels_last(model: nn.Module):
    """While active, ``model``'s ``nn.MaxPool2d`` layers (that class, not subclasses) pool
    a default-layout 4-D input of at least :data:`MAX_POOL_CHANNELS_LAST_MIN` channels in
    channels-last layout and return it in the default layout again: the same values bit for
    bit (a maximum involves no rounding; NaN and the sign of zero are kept, tested), 3–6×
    faster on the CPU, where torch's default-layout kernel also computes the indices. Only
    where no gradient flows (every adapter's forwards under ``no_grad``, CoTTA's teacher and
    anchor): with autograd, which of tied inputs receives the gradient is the kernel's
    choice. Layers asked for indices, other inputs, and an input that autograd is tracking
    run as before.
    """
    check_module("model", model)
    with _replaced_forwards(_plain_max_pools(model), _channels_last_pool):
        yield model


def _plain_max_pools(model: nn.Module) -> list[nn.MaxPool2d]:
    """``model``'s ``nn.MaxPool2d`` layers without indices, each once; not a subclass (its
    forward may be its own) nor inside a ``torch.compile``d module (whose compiled code
    guards on its modules: a replaced forward would recompile it)."""
    found: list[nn.MaxPool2d] = []
    seen: set[int] = set()
    stack = [model]
    while stack:
        module = stack.pop()
        if id(module) in seen or getattr(module, "_orig_mod", None) is not None:
            continue
        seen.add(id(module))
        if type(module) is nn.MaxPool2d and not module.return_indices:
            found.append(module)
        stack.extend(module.children())
    return found


def _channels_last_pool(layer: nn.MaxPool2d) -> Callable:
    plain = layer.forward

    def pool(x: torch.Tensor) -> torch.Tensor:
        tracked = torch.is_grad_enabled() and x.requires_grad
        if (tracked or x.ndim != 4 or x.shape[1] < MAX_POOL_CHANNELS_LAST_MIN
                or not x.is_contiguous() or x.device.type != "cpu" or not x.is_floating_point()):
            return plain(x)
        y = torch.nn.functional.max_pool2d(
            x.contiguous(memory_format=torch.channels_last), layer.kernel_size, layer.stride,
            layer.padding, layer.dilation, ceil_mode=layer.ceil_mode)
        return y.contiguous()
    return pool


def _per_copy_forward(forward: Callable, copies: int) -> Callable:
    def per_copy(x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[0] % copies:
            raise ValueError(f"per_copy_batch_norm: a BatchNorm input of shape "
                             f"{tuple(x.shape)} does not split into {copies} copies along "
                             "its leading (batch) dimension")
        return torch.cat([forward(block) for block in x.chunk(copies)])
    return per_copy


def channels_last_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` computed in channels-last memory format: the same values up to round-off.

    A 4-D ``x`` and ``net``'s 4-D parameters (2-D convolution weights) are passed in
    ``torch.channels_last`` layout, the parameters through :func:`torch.func.functional_call`
    (``net`` itself is not changed); the layers then keep that layout, where torch's CPU
    convolution, batch norm and pooling kernels are faster on small images. Other inputs:
    plain ``net(x)``. The layout changes the summation order of some kernels (float32
    round-off, ≈ 1e-6 on logits of order 1).
    """
    check_module("net", net)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        return checked_forward("channels_last_forward", net, x)
    layout = torch.channels_last
    params = {name: p.contiguous(memory_format=layout)
              for name, p in net.named_parameters() if p.ndim == 4}
    return torch.func.functional_call(net, params, (x.contiguous(memory_format=layout),))


class GeneratorState(nn.Module):
    """A torch random generator whose state is a buffer (saved, snapshotted and reset).

    ``with rng.generator() as g: ...`` draws from ``g`` and stores its new state.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.register_buffer("state", torch.Generator().manual_seed(seed).get_state())

    def generator(self):
        return _GeneratorContext(self)


class _GeneratorContext:
    def __init__(self, owner: GeneratorState) -> None:
        self.owner = owner
        self.gen = torch.Generator()

    def __enter__(self) -> torch.Generator:
        self.gen.set_state(self.owner.state)
        return self.gen

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.owner.state = self.gen.get_state()


# ------------------------------------------------------------------------ configure
def configure_model(model: nn.Module, selected: Sequence[nn.Parameter], bn_stats: str) -> None:
    """Freeze all but ``selected``, eval mode, and BatchNorm statistics per ``bn_stats``."""
    check_module("model", model)
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
    model.eval()
    model.requires_grad_(False)
    for p in selected:
        p.requires_grad_(True)
    if bn_stats == "batch":
        for _, bn in batchnorm_layers(model):
            bn.track_running_stats = False
            bn.running_mean = None
            bn.running_var = None


# ---------------------------------------------------------------------------- check
def checked_forward(method: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``; a model that refuses the input is a ``ValueError`` naming ``method`` and
    the input's shape."""
    try:
        return model(x)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{method}: the model rejected input of shape {tuple(x.shape)}: "
                         f"{err}") from err


def check_samples(name: str, x) -> None:
    """A ``ValueError`` naming the argument unless ``x`` is a batch tensor ``(N, ...)``,
    ``N >= 1`` (source-like samples for a statistic)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) < 1:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor (N, ...) with N >= 1, got {got}")


def check_module(name: str, value) -> None:
    """A ``TypeError`` naming the argument unless ``value`` is a ``torch.nn.Module``."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")


def check_optimizer(optimizer) -> None:
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got "
                        f"{type(optimizer).__name__}")


def check_model(model: nn.Module, selected: Sequence[nn.Parameter], *, needs_params: bool,
                method: str, adapts: str | None = None) -> None:
    """Raise ``ValueError`` when ``model`` lacks what ``method`` adapts (``adapts``: what
    its parameter selector looks for, named in the message)."""
    check_module("model", model)
    if needs_params and not selected:
        hint = f" ({method} adapts {adapts})" if adapts else ""
        raise ValueError(f"{method}: the parameter selector found no parameters to adapt in "
                         f"{type(model).__name__}{hint}")
    if not all(p.is_floating_point() for p in selected):
        raise TypeError(f"{method}: every adapted parameter must be floating point")


# ------------------------------------------------------------------ snapshot/restore
def snapshot(modules: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    """Deep copy of every parameter, buffer and the optimizer state (for bit-exact reset)."""
    check_module("modules", modules)
    check_optimizer(optimizer)
    return {"modules": copy_module.deepcopy(modules.state_dict()),
            "optimizer": None if optimizer is None else copy_module.deepcopy(
                optimizer.state_dict())}


def restore(modules: nn.Module, optimizer: torch.optim.Optimizer | None, saved: dict) -> None:
    """Copy a :func:`snapshot` back in place (``strict=True``)."""
    check_module("modules", modules)
    check_optimizer(optimizer)
    if not isinstance(saved, dict) or not {"modules", "optimizer"} <= saved.keys():
        raise TypeError("saved must be the dict snapshot() returned")
    modules.load_state_dict(saved["modules"], strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(copy_module.deepcopy(saved["optimizer"]))


def refuse_fixed(method: str, options: dict, fixed: dict[str, str]) -> None:
    """A clear ``TypeError`` where ``options`` (an adapter's ``**options``) sets an
    :class:`Adapter` argument that ``method`` fixes itself (``fixed``: name -> why). Python's
    own "got multiple values for keyword argument" says neither that it is fixed nor why."""
    for name, why in fixed.items():
        if name in options:
            raise TypeError(f"{method} does not take {name}: {why} (got {name}="
                            f"{options[name]!r})")


def _optional_count(name: str, value, minimum: int = 1) -> int | None:
    return None if value is None else count(name, value, low=minimum)


def _scalar_loss(method: str, loss) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{method}: loss must return a torch.Tensor (a scalar or one value "
                        f"per sample, computed from the logits), got {type(loss).__name__}")
    return loss.mean() if loss.ndim else loss


def check_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Raise ``_Skip`` when any gradient of ``optimizer``'s parameters is non-finite."""
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
        raise _Skip("non-finite gradient")  # one device sync for all gradients


class _Skip(Exception):
    """Raised inside a step to abandon it (the reason is the message)."""


# -------------------------------------------------------------------------- adapter
class Adapter(nn.Module):
    """Wrap a trained classifier and adapt it on unlabelled test batches.

    Parameters
    ----------
    model : nn.Module mapping a batch ``(B, ...)`` to logits ``(B, n_classes)``.
    params_selector : callable ``model -> iterable of (name, Parameter)`` — what the loss adapts
        (e.g. :func:`bn_affine_params`). Applied to the (copied) model and to ``extra_modules``.
    loss : ``"entropy"`` (mean softmax entropy), a callable ``logits -> scalar or (B,)``, or
        ``None`` for no gradient adaptation (BN adaptation, source).
    optimizer_factory : callable ``params -> Optimizer``; default Adam lr 1e-3 (Tent).
    steps : adaptation steps per batch, ≥ 1 (``steps=0`` is refused, as in Tent).
    episodic : reset before every batch.
    reset_every : reset after every K adapted batches (``None``: never).
    predict_after_update : return ``model(x)`` after the updates instead of the logits of the
        last step's forward (computed before that step's update; Tent's choice).
    bn_stats : ``"batch"`` or ``"source"`` (see module docstring).
    single_sample_window : keep the last N samples and adapt on them with each batch (N ≥ 2);
        ``predict`` prepends them too.
    local_updates : modules with ``.layer`` (the layer whose input they need) and
        ``.update(x_in) -> bool`` (applies an in-place update under no_grad; False = skipped),
        ``.saved()``/``.load(saved)`` (tensors to roll back), e.g. the NHL Hebbian conv1.
    hebb_first : run local updates before (default) or after the gradient step.
    extra_modules : added modules (e.g. NHL's modulator) that are adapted, snapshotted and
        saved with the model.
    aux_modules : modules that are part of the state (snapshotted, saved, reset) but not
        adapted by the optimizer (e.g. CoTTA's EMA teacher and source anchor).
    copy : deep-copy ``model`` (default); ``False`` adapts the caller's model in place.
    max_pool_channels_last : the adapter's forwards without autograd (predictions after the
        update, BN adaptation, CoTTA's teacher and anchor) pool through
        :func:`max_pool_channels_last`: the same numbers bit for bit, faster on the CPU
        (default True; ``False`` keeps torch's default-layout pooling, for comparison).
    method : name used in messages.
    """

    #: what the method's parameter selector adapts, for the message when it finds nothing
    _adapts: str | None = None

    def __init__(self, model: nn.Module, params_selector: ParamsSelector = no_params, *,
                 loss: str | Callable | None = "entropy",
                 optimizer_factory: Callable | None = None, steps: int = 1,
                 episodic: bool = False, reset_every: int | None = None,
                 predict_after_update: bool = False, bn_stats: str = "batch",
                 single_sample_window: int | None = None, local_updates: Sequence = (),
                 hebb_first: bool = True, extra_modules: dict[str, nn.Module] | None = None,
                 aux_modules: dict[str, nn.Module] | None = None, copy: bool = True,
                 max_pool_channels_last: bool = True, method: str = "Adapter") -> None:
        super().__init__()
        check_model(model, [], needs_params=False, method=method)
        self.method = method
        self.steps = count("steps", steps, low=1)
        self.reset_every = _optional_count("reset_every", reset_every)
        self.single_sample_window = _optional_count("single_sample_window",
                                                    single_sample_window, minimum=2)
        self.episodic = bool(episodic)
        self.predict_after_update = bool(predict_after_update)
        self.hebb_first = bool(hebb_first)
        self.bn_stats = bn_stats
        self.max_pool_channels_last = bool(max_pool_channels_last)
        self.loss = self._check_loss(loss)
        self.model = copy_module.deepcopy(model) if copy else model
        self.extra = nn.ModuleDict(extra_modules or {})
        self.local = nn.ModuleList(local_updates)
        self.aux = nn.ModuleDict(aux_modules or {})
        self._setup(params_selector, optimizer_factory)
        self.updates = 0                 # adapted batches since the last reset
        self.skipped: dict[str, int] = {}
        self._warned: set[str] = set()
        self._window: torch.Tensor | None = None
        self._initial = self._snapshot()

    def _snapshot(self) -> dict:
        """The state ``reset()`` returns to (a subclass that adds state re-takes it)."""
        saved = snapshot(self._stateful(), self.optimizer)
        saved["method"] = copy_module.deepcopy(self._method_state())
        return saved

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _check_loss(loss):
        if loss is None or callable(loss):
            return loss
        if loss == "entropy":
            return lambda logits: softmax_entropy(logits).mean()
        raise ValueError(f"loss must be 'entropy', a callable or None, got {loss!r}")

    def _setup(self, params_selector, optimizer_factory) -> None:
        if not callable(params_selector):
            raise TypeError("params_selector must be a callable model -> (name, param) pairs")
        named = list(params_selector(self.model))
        for module in self.extra.values():
            named += list(module.named_parameters())
        named = unique_params(named)   # a tied parameter once (optimizer, restore, names)
        self.adapted_names = [n for n, _ in named]
        selected = [p for _, p in named]
        check_model(self.model, selected, needs_params=self.loss is not None,
                    method=self.method, adapts=self._adapts)
        configure_model(self.model, selected, self.bn_stats)
        for p in selected:  # extra modules live outside the model; configure_model missed them
            p.requires_grad_(True)
        self.batch_stats = self.bn_stats == "batch" and bool(batchnorm_layers(self.model))
        self.optimizer = None
        if self.loss is not None:
            factory = optimizer_factory or default_optimizer
            if not callable(factory):
                raise TypeError("optimizer_factory must be a callable params -> Optimizer")
            self.optimizer = factory(selected)

    def _stateful(self) -> nn.Module:
        return nn.ModuleDict({"model": self.model, "extra": self.extra, "local": self.local,
                              "aux": self.aux})

    @classmethod
    def disabled(cls, model: nn.Module, **kwargs) -> Adapter:
        """The no-adaptation baseline: source statistics, no loss; outputs equal ``model``'s."""
        from .bn import Source  # the class lives beside BN adapt; Source subclasses Adapter

        return Source(model, **kwargs)

    # ------------------------------------------------------------------- public API
    def train(self, mode: bool = True) -> Adapter:
        """Record the flag only: the wrapped model keeps its configured modes."""
        self.training = mode
        return self

    def reset(self) -> None:
        """Restore the construction snapshot bit for bit (parameters, buffers, optimizer)."""
        if self._initial is None:
            raise RuntimeError("no snapshot was saved; cannot reset")
        restore(self._stateful(), self.optimizer, self._initial)
        self.updates = 0
        self._window = None
        self._load_method_state(copy_module.deepcopy(self._initial["method"]))

    def get_extra_state(self) -> dict:
        """What is not a parameter or buffer: optimizer state, counters, window, method state.

        Saved under the key ``<prefix>_extra_state`` of the standard ``state_dict()``, so an
        adapter inside a parent module contributes its full state to the parent's.
        """
        return {"optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "updates": self.updates, "window": self._window,
                "method": self._method_state()}

    def set_extra_state(self, state: dict) -> None:  # noqa: D102
        if not isinstance(state, dict) or {"optimizer", "updates", "window"} - set(state):
            raise ValueError("extra state is missing optimizer/updates/window; pass the "
                             "state_dict() of an adapter of the same kind")
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(copy_module.deepcopy(state["optimizer"]))
        self.updates = int(state["updates"])
        self._window = None if state["window"] is None else state["window"].clone()
        self._load_method_state(copy_module.deepcopy(state.get("method", {})))

    def _method_state(self) -> dict:
        """Non-tensor state of a method (subclasses; e.g. SAR's moving loss average)."""
        return {}

    def _load_method_state(self, state: dict) -> None:
        """Inverse of :meth:`_method_state`."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({type(self.model).__name__}, {fields})"

    def _repr_fields(self) -> dict:
        """The settings shown by ``repr`` (subclasses add their own)."""
        fields = {"adapts": len(self.adapted_names), "steps": self.steps,
                  "episodic": self.episodic}
        if self.reset_every is not None:
            fields["reset_every"] = self.reset_every
        fields.update(bn_stats=self.bn_stats, predict_after_update=self.predict_after_update)
        if self.single_sample_window is not None:
            fields["single_sample_window"] = self.single_sample_window
        if not self.max_pool_channels_last:
            fields["max_pool_channels_last"] = False
        fields["updates"] = self.updates
        return fields

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Adapt on the batch ``x`` (B, ...) and return logits (B, n_classes)."""
        x = self._check_input(x, None if self.episodic else self._window)
        if self.episodic:
            self.reset()
        with torch.inference_mode(False), torch.enable_grad():
            # detach: the loss must never write a gradient into the caller's tensor
            x = x.clone() if x.is_inference() else x.detach()
            handles = self._attach()
            try:
                logits = self._adapt_batch(x)
            finally:
                for h in handles:
                    h.remove()
        if self.reset_every is not None and self.updates >= self.reset_every:
            self.reset()
        return logits

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the adapted model as it is now, for batch ``x``; nothing is adapted.

        Equals ``self.model(x)`` plus the method's hooks (NHL's modulator), under no_grad;
        with ``single_sample_window`` the stored samples are prepended, as a call does (so
        the batch statistics are those of window + ``x``), and ``x``'s rows returned.
        """
        x = self._check_input(x, self._window)
        x_all = x if self._window is None else torch.cat([self._window, x])
        handles = self._attach()
        try:
            with torch.no_grad():
                return self._forward_checked(x_all)[-x.shape[0]:]
        finally:
            for h in handles:
                h.remove()

    def _attach(self) -> list:
        """Hooks the method needs on the model, registered for one call only (subclasses).

        Hooks live only while ``adapter(x)`` runs, so the model (the caller's, with
        ``copy=False``) carries none between calls, after ``reset()`` or after deletion, and a
        ``copy.deepcopy`` of the adapter cannot share a hook with the original.
        """
        return []

    # ----------------------------------------------------------------- adapt step
    def _check_input(self, x, window: torch.Tensor | None) -> torch.Tensor:
        """``x`` checked; ``window``: the stored samples the forward will prepend."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor batch (B, ...), got {type(x).__name__}")
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"x must be a non-empty batch (B, ...), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be floating point, got {x.dtype}")
        if self.batch_stats and x.shape[0] + (0 if window is None else len(window)) < 2:
            empty = ("" if self.single_sample_window is None else
                     " (the sample window is empty: the first batch after construction or "
                     "reset(), and every batch with episodic=True, needs 2 samples or more)")
            raise ValueError("batch size 1 with bn_stats='batch' gives degenerate statistics; "
                             f"set single_sample_window=N or bn_stats='source'{empty}")
        return x

    def _with_window(self, x: torch.Tensor) -> torch.Tensor:
        if self.single_sample_window is None:
            return x
        new = x.detach()
        new = new[torch.isfinite(new.flatten(1)).all(1)]   # one NaN sample must not stay
        window = new if self._window is None else torch.cat([self._window, new])
        x_adapt = x if self._window is None else torch.cat([self._window, x])
        self._window = window[-self.single_sample_window:].clone()
        return x_adapt

    def _adapt_batch(self, x: torch.Tensor) -> torch.Tensor:
        n_new = x.shape[0]
        x_adapt = self._with_window(x)
        logits = None
        adapting = self.loss is not None or len(self.local) > 0
        if not bool(torch.isfinite(x_adapt).all()):
            self._skip("non-finite input")
            adapting = False
        # without a loss, the local updates may precede the only forward (which checks the
        # model's output): keep what they change, to roll it back if that forward raises
        local_saved = [lu.saved() for lu in self.local] if self.loss is None else None
        for _ in range(self.steps if adapting else 0):
            logits = self._transactional_step(x_adapt)
        if logits is None or self.predict_after_update:
            try:
                with torch.no_grad():
                    logits = self._forward_checked(x_adapt)
            except BaseException:
                if local_saved is not None:
                    self._rollback(local_saved)
                raise
        if adapting:
            self.updates += 1
        return logits[-n_new:].detach()

    def _pooling(self, net: nn.Module):
        """:func:`max_pool_channels_last` of ``net`` if the option is on: the same numbers,
        faster for the forwards without autograd (the others run as before)."""
        return (max_pool_channels_last(net) if self.max_pool_channels_last
                else contextlib.nullcontext())

    def _forward_checked(self, x: torch.Tensor) -> torch.Tensor:
        """``self.model(x)``; a model that refuses the input, or returns anything but logits
        ``(B, n_classes, ...)`` (a method with a loss) or a tensor ``(B, ...)`` (one without),
        is a ``ValueError`` naming the method."""
        with self._pooling(self.model):
            out = checked_forward(self.method, self.model, x)
        (check_outputs if self.loss is None else check_logits)(self.method, out, x.shape[0])
        return out

    def _transactional_step(self, x: torch.Tensor) -> torch.Tensor | None:  # None: no logits
        """One step; on any failure the local updates of this step are rolled back.

        Every skip is decided before ``optimizer.step()`` (input, loss and gradients are
        checked first), so the gradient-adapted parameters need no copy; the only in-place
        change that can precede a failure is a local (Hebbian) update.
        """
        local_saved = [lu.saved() for lu in self.local]
        try:
            return self._step(x)
        except _Skip as reason:
            self._rollback(local_saved)
            self._skip(str(reason))
            return None
        except BaseException:
            self._rollback(local_saved)
            raise

    def _rollback(self, local_saved) -> None:
        with torch.no_grad():
            for lu, s in zip(self.local, local_saved, strict=True):
                lu.load(s)
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        if self.hebb_first:
            self._run_local_updates(self._layer_inputs_before(x))
        if self.loss is None and self.hebb_first and self.predict_after_update:
            return None   # local updates only: the prediction forward comes after the step
        captured: dict = {}
        hooks = [lu.layer.register_forward_pre_hook(self._capture(captured, i))
                 for i, lu in enumerate(self.local)] if not self.hebb_first else []
        try:
            logits = self._forward_checked(x)
        finally:
            for h in hooks:
                h.remove()
        if self.loss is not None:   # _forward_checked has checked the logits
            prediction = self._gradient_step(logits, x)
            logits = logits if prediction is None else prediction
        if not self.hebb_first:
            self._run_local_updates([captured[i] for i in range(len(self.local))])
        return logits

    def _gradient_step(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """Loss on ``logits`` of batch ``x`` → backward → checked step (Tent).

        Subclasses override this to compose another method (EATA, SAR, CoTTA); they may return
        the logits to report instead of ``logits`` (CoTTA's teacher prediction).
        """
        self._backward(_scalar_loss(self.method, self.loss(logits)))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return None

    def _backward(self, loss: torch.Tensor) -> None:
        """Zero the gradients, check ``loss``, backward, check the gradients (or ``_Skip``)."""
        if not bool(torch.isfinite(loss)):
            raise _Skip("non-finite loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        check_gradients(self.optimizer)

    @staticmethod
    def _capture(store: dict, index: int):
        def hook(module, inputs):
            store[index] = inputs[0].detach()
        return hook

    def _layer_inputs_before(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Inputs of each local-update layer for batch ``x``: a forward stopped at the layer."""
        inputs = []
        for i, lu in enumerate(self.local):
            store: dict = {}

            def stop(module, args, store=store):
                store[0] = args[0].detach()
                raise _Captured

            handle = lu.layer.register_forward_pre_hook(stop)
            try:
                with torch.no_grad():
                    self._forward_checked(x)
            except _Captured:
                pass
            finally:
                handle.remove()
            if 0 not in store:
                raise ValueError(f"{self.method}: local update {i} never saw its layer run")
            inputs.append(store[0])
        return inputs

    def _run_local_updates(self, inputs: Sequence[torch.Tensor]) -> None:
        with torch.no_grad():
            for lu, x_in in zip(self.local, inputs, strict=True):
                if not lu.update(x_in):
                    raise _Skip("non-finite local (Hebbian) update")

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"{self.method}: {reason}; the update was skipped and the model "
                          "kept (warned once per adapter)", RuntimeWarning, stacklevel=4)


class _Captured(Exception):
    """Stops a forward pass once a layer's input has been captured."""
