"""CoTTA's cheaper paths compute what the one-copy-at-a-time path computed (issue 16).

The reference below is the augmentation as it was before it was vectorised (one copy per call,
one ``torch.rand(())`` per scalar draw): every fast path is checked against it in float64
with the same random draws.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import warnings

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import bioplastic.tta as tta  # noqa: E402

from .test_tta import batch, module_tensors, small_net, state_equal  # noqa: E402

torch.set_num_threads(1)

# float64 round-off of a few dozen operations on values in [0, 1]
TOL = 1e-12


# ------------------------------------------------------- the one-copy reference path
def _ref_uniform(gen, low, high):
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _ref_colour_jitter(x, gen):
    x = x * _ref_uniform(gen, 0.6, 1.4)
    grey = x.mean(1, keepdim=True)
    x = (x - grey.mean((2, 3), keepdim=True)) * _ref_uniform(gen, 0.7, 1.3) \
        + grey.mean((2, 3), keepdim=True)
    if x.shape[1] == 3:
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * _ref_uniform(gen, 0.5, 1.5)
    return x.clamp(0.0, 1.0) ** _ref_uniform(gen, 0.7, 1.3)


def _ref_random_affine(x, gen):
    angle = math.radians(_ref_uniform(gen, -15.0, 15.0))
    scale = _ref_uniform(gen, 0.9, 1.1)
    tx, ty = (_ref_uniform(gen, -1 / 16, 1 / 16) * 2 for _ in range(2))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _ref_gaussian_blur(x, gen, kernel=5):
    sigma = _ref_uniform(gen, 0.001, 0.5)
    taps = torch.arange(kernel, dtype=x.dtype) - kernel // 2
    k1 = torch.exp(-0.5 * (taps / sigma) ** 2)
    k1 = k1 / k1.sum()
    c, pad = x.shape[1], kernel // 2
    if min(x.shape[2:]) <= pad:
        return x
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k1.reshape(1, 1, 1, -1).expand(c, 1, 1, kernel).contiguous(), groups=c)
    return F.conv2d(x, k1.reshape(1, 1, -1, 1).expand(c, 1, kernel, 1).contiguous(), groups=c)


def reference_augment(x, generator, *, hflip_p=0.5, noise_std=0.005):
    """One augmented copy, written as before vectorisation."""
    x = _ref_colour_jitter(x.clamp(0.0, 1.0), generator)
    x = _ref_gaussian_blur(_ref_random_affine(x, generator), generator)
    if float(torch.rand((), generator=generator, dtype=torch.float64)) < hflip_p:
        x = x.flip(-1)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return (x + noise_std * noise.to(dtype=x.dtype)).clamp(0.0, 1.0)


def images(shape, seed=1):
    return torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def same_state(a: torch.Generator, b: torch.Generator) -> bool:
    return torch.equal(a.get_state(), b.get_state())


# ----------------------------------------------------------------- the augmentation
@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (5, 3, 12, 10), (3, 1, 2, 2)])
@pytest.mark.parametrize("hflip_p", [0.5, 0.0])
def test_copies_equal_one_copy_at_a_time(shape, hflip_p):
    """(3, 1, 2, 2): too small to blur; the blur's σ is drawn all the same."""
    x = images(shape)
    g_ref, g_new, g_skip = (torch.Generator().manual_seed(7) for _ in range(3))
    expected = torch.stack([reference_augment(x, g_ref, hflip_p=hflip_p) for _ in range(12)])
    aug = tta.CoTTAAugment(hflip_p=hflip_p)
    got = aug.copies(x, g_new, 12)
    assert got.shape == (12, *shape) and got.dtype == x.dtype
    assert float((got - expected).abs().max()) <= TOL
    assert same_state(g_ref, g_new)            # the same draws, in the same order
    aug.skip(x, g_skip, 12)
    assert same_state(g_ref, g_skip)           # skip: only the draws
    assert not torch.equal(got[0], got[1])     # each copy has its own draw


def test_one_call_and_cotta_augment_equal_the_reference():
    x = images((8, 3, 8, 8))
    g_ref, g_call, g_fn = (torch.Generator().manual_seed(3) for _ in range(3))
    expected = reference_augment(x, g_ref, hflip_p=1.0, noise_std=0.01)
    one = tta.CoTTAAugment(hflip_p=1.0, noise_std=0.01)(x, g_call)
    fn = tta.cotta_augment(x, g_fn, hflip_p=1.0, noise_std=0.01)
    assert one.shape == x.shape and float((one - expected).abs().max()) <= TOL
    assert torch.equal(one, fn) and same_state(g_ref, g_call)


def test_float32_copies_are_close_to_the_reference():
    x = images((16, 1, 8, 8)).float()
    g_ref, g_new = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    expected = torch.stack([reference_augment(x, g_ref) for _ in range(4)])
    got = tta.CoTTAAugment().copies(x, g_new, 4)
    assert got.dtype == torch.float32
    assert float((got - expected).abs().max()) <= 1e-5   # float32 round-off, values in [0, 1]


def test_augment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="hflip_p"):
        tta.CoTTAAugment(hflip_p=1.5)
    with pytest.raises(ValueError, match="noise_std"):
        tta.CoTTAAugment(noise_std=-1.0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        tta.CoTTAAugment()(torch.rand(4, 8), torch.Generator())


# ------------------------------------------------------------------------- the teacher
def strongly_different_copies(n=6, b=10):
    """Copies whose scales and offsets differ by copy: pooled statistics are far from each
    copy's own."""
    scale = torch.linspace(0.2, 3.0, n, dtype=torch.float64).view(n, 1, 1, 1, 1)
    offset = torch.linspace(-1.0, 2.0, n, dtype=torch.float64).view(n, 1, 1, 1, 1)
    return images((n, b, 1, 8, 8)) * scale + offset


def loop_and_naive(net, copies):
    with torch.no_grad():
        loop = torch.stack([net(c) for c in copies])
        naive = net(copies.flatten(0, 1)).view(*copies.shape[:2], -1)
    assert float((naive - loop).abs().max()) > 1e-2   # pooled statistics: another result
    return loop


@pytest.mark.parametrize("batched", ["vmap", "per_copy_batch_norm"])
def test_batched_teacher_keeps_per_copy_batch_statistics(batched):
    """vmap over the copies, and one stacked forward under per_copy_batch_norm, equal one
    forward per copy; a plain stacked forward would not."""
    teacher = tta.CoTTA(small_net()).aux["teacher"]
    copies = strongly_different_copies()
    loop = loop_and_naive(teacher, copies)
    with torch.no_grad():
        if batched == "vmap":
            got = torch.func.vmap(teacher)(copies)
        else:
            with tta.per_copy_batch_norm(teacher, 6):
                got = teacher(copies.flatten(0, 1)).view(6, 10, -1)
    assert float((got - loop).abs().max()) <= TOL


def test_per_copy_batch_norm_restores_the_layers_even_on_error():
    net = tta.CoTTA(small_net()).aux["teacher"]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    copies = strongly_different_copies()
    with pytest.raises(ValueError, match="does not split into 7 copies"), \
            tta.per_copy_batch_norm(net, 7):   # 60 rows do not split into 7 equal copies
        assert all("forward" in bn.__dict__ for bn in bns)
        net(copies.flatten(0, 1))
    assert all("forward" not in bn.__dict__ for bn in bns)
    loop = loop_and_naive(net, copies)         # the plain forward is back
    with torch.no_grad():
        assert torch.equal(torch.stack([net(c) for c in copies]), loop)
    with pytest.raises(ValueError, match="copies"):
        with tta.per_copy_batch_norm(net, 0):
            pass


def test_per_copy_batch_norm_updates_running_statistics_copy_by_copy():
    """A BatchNorm in training mode with running statistics: the stacked forward updates
    them once per copy, in order, as separate forwards do (momentum and cumulative mean);
    BatchNorm with running statistics in eval mode is per-sample and left alone."""
    copies = strongly_different_copies(4, 5).flatten(2)            # (4, 5, 64): BatchNorm1d
    for momentum in (0.1, None):
        torch.manual_seed(0)
        sep = nn.Sequential(nn.Linear(64, 7), nn.BatchNorm1d(7, momentum=momentum),
                            nn.Linear(7, 3), nn.BatchNorm1d(3).eval()).double()
        with torch.no_grad():
            sep[3].running_mean.uniform_(-1, 1)
        stacked = copy.deepcopy(sep)
        with torch.no_grad():
            loop = torch.stack([sep(c) for c in copies])
            with tta.per_copy_batch_norm(stacked, 4):
                assert "forward" not in stacked[3].__dict__   # eval, running statistics
                got = stacked(copies.flatten(0, 1)).view(4, 5, -1)
        assert float((got - loop).abs().max()) <= TOL
        for a, b in zip(sep.state_dict().values(), stacked.state_dict().values(), strict=True):
            assert float((a.double() - b.double()).abs().max()) <= TOL
        assert int(stacked[1].num_batches_tracked) == 4


# ------------------------------------------------------------------------- the adapter
def stream(n=6):
    """Batches whose source (anchor) confidence straddles a threshold."""
    return [batch(s) * (0.2 + 0.3 * (s % 3)) for s in range(n)]


def threshold(net) -> float:
    """An ``ap`` between the anchor confidences of the stream (some batches each side)."""
    anchor = tta.CoTTA(net).aux["anchor"]
    with torch.no_grad():
        conf = sorted(float(anchor(x).softmax(1).max(1).values.mean()) for x in stream())
    assert conf[0] < conf[-1]
    return (conf[2] + conf[3]) / 2


def run(adapter):
    return [adapter(x) for x in stream()], adapter


@pytest.fixture(scope="module")
def ap():
    return threshold(small_net())


def test_default_equals_computing_every_copy_every_batch(ap):
    """The default draws every batch's copies (the authors compute them all); computing only
    the used ones gives the same outputs and state."""
    options = {"n_augment": 5, "ap": ap, "rst": 0.1, "lr": 1e-2}
    eager_outs, eager = run(tta.CoTTA(small_net(), augment=reference_augment, **options))
    fast_outs, fast = run(tta.CoTTA(small_net(), **options))
    assert 0 < fast.augmented_batches < len(stream())       # both branches were taken
    assert fast.augmented_batches == eager.augmented_batches
    for a, b in zip(eager_outs, fast_outs, strict=True):
        assert float((a - b).abs().max()) <= 1e-9           # round-off, through 6 updates
    assert torch.equal(eager.aux["rng"].state, fast.aux["rng"].state)


def test_when_used_skips_the_draws_and_changes_the_stream(ap):
    options = {"n_augment": 5, "ap": ap, "rst": 0.1, "lr": 1e-2}
    always_outs, always = run(tta.CoTTA(small_net(), **options))
    lazy_outs, lazy = run(tta.CoTTA(small_net(), augment_draws="when_used", **options))
    assert "augment_draws='when_used'" in repr(lazy)
    first_confident = next(i for i, x in enumerate(stream()) if not _unconfident(always, x, ap))
    # identical until the first confident batch, then another random stream
    for i in range(first_confident + 1):
        assert torch.equal(always_outs[i], lazy_outs[i])
    assert not torch.equal(always.aux["rng"].state, lazy.aux["rng"].state)


def _unconfident(adapter, x, ap) -> bool:
    with torch.no_grad():
        return float(adapter.aux["anchor"](x).softmax(1).max(1).values.mean()) < ap


@pytest.mark.parametrize("options", [{"augment_chunk": 2}, {"augment_chunk": None},
                                     {"teacher_batch": "vmap"}, {"teacher_batch": "loop"},
                                     {"augment": lambda x, g: reference_augment(x, g)}])
def test_chunks_vmap_and_plain_callables_give_the_same_result(options):
    outs_default, default = run(tta.CoTTA(small_net(), n_augment=5, ap=1.0, rst=0.1))
    outs, other = run(tta.CoTTA(small_net(), n_augment=5, ap=1.0, rst=0.1, **options))
    assert other.augmented_batches == len(stream())
    for a, b in zip(outs_default, outs, strict=True):
        assert float((a - b).abs().max()) <= 1e-9
    assert torch.equal(default.aux["rng"].state, other.aux["rng"].state)


def test_partial_of_cotta_augment_is_vectorised():
    from functools import partial

    adapter = tta.CoTTA(small_net(), augment=partial(tta.cotta_augment, hflip_p=0.0))
    assert isinstance(adapter.augment, tta.CoTTAAugment) and adapter.augment.hflip_p == 0.0


@pytest.mark.parametrize("kwargs, error", [
    ({"augment_draws": "never"}, ValueError), ({"augment_chunk": 0}, ValueError),
    ({"n_augment": 0}, ValueError), ({"augment": 3}, TypeError),
    ({"teacher_batch": "stacked"}, ValueError)])
def test_cotta_rejects_bad_options(kwargs, error):
    with pytest.raises(error):
        tta.CoTTA(small_net(), **kwargs)


def test_skipped_step_leaves_the_random_stream_unchanged():
    """A non-finite loss skips the step: the draws of the skipped step are undone too."""
    net = small_net()
    with torch.no_grad():
        net[-1].bias[0] = float("inf")        # finite input, non-finite logits and loss
    adapter = tta.CoTTA(net, n_augment=3)
    before = copy.deepcopy(module_tensors(adapter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        adapter(batch(0))
    assert adapter.skipped == {"non-finite loss": 1}
    assert state_equal(module_tensors(adapter), before)   # aux.rng.state among them
    assert adapter.augmented_batches == 0


def test_model_without_batchnorm_runs_under_vmap():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4)).double()
    outs, adapter = run(tta.CoTTA(net, n_augment=3, ap=1.0, teacher_batch="vmap"))
    loop_outs, _ = run(tta.CoTTA(net, n_augment=3, ap=1.0, teacher_batch="loop"))
    assert all(float((a - b).abs().max()) <= 1e-9 for a, b in zip(outs, loop_outs, strict=True))


def group_and_layer_norm_net() -> nn.Module:
    """Per-sample normalisation only (nothing for per_copy_batch_norm to change)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.GroupNorm(2, 6), nn.ReLU(),
                         nn.Flatten(), nn.Linear(384, 8), nn.LayerNorm(8), nn.ReLU(),
                         nn.Linear(8, 4)).double()


def adapted_state(adapter) -> dict:
    """Predictions aside, what a batch changes: student, teacher and the random stream."""
    return {k: v for k, v in module_tensors(adapter).items() if not k.startswith("aux.anchor")}


def assert_close_runs(a, b, tol):
    (outs_a, adapter_a), (outs_b, adapter_b) = a, b
    assert adapter_a.augmented_batches == adapter_b.augmented_batches > 0
    for x, y in zip(outs_a, outs_b, strict=True):
        assert float((x - y).abs().max()) <= tol
    state_a, state_b = adapted_state(adapter_a), adapted_state(adapter_b)
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        if value.is_floating_point():
            assert float((value - state_b[key]).abs().max()) <= tol, key
        else:
            assert torch.equal(value, state_b[key]), key   # the random stream


def cotta_runs(net, dtype, ap, **more):
    """Predictions and adapter after the 6-batch stream (both branches taken for small_net)."""
    xs = [x.to(dtype) for x in stream()]
    options = {"n_augment": 6, "augment_chunk": 3, "rst": 0.1, "lr": 1e-2,
               "ap": ap if net is small_net else 1.0}
    adapter = tta.CoTTA(net().to(dtype), **options, **more)
    return [adapter(x) for x in xs], adapter


@pytest.mark.parametrize("net", [small_net, group_and_layer_norm_net])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 2e-5)])
def test_stacked_teacher_equals_the_loop_over_a_stream(net, dtype, tol, ap):
    """teacher_batch="copies" (one forward of the stacked copies, per-copy BatchNorm
    statistics) against the per-copy loop, over 6 batches with both branches taken:
    predictions, student and teacher weights and the random stream agree to round-off
    (float32: a few ulps of values of order 1, through 6 Adam steps)."""
    assert_close_runs(cotta_runs(net, dtype, ap, teacher_batch="copies"),
                      cotta_runs(net, dtype, ap, teacher_batch="loop"), tol)


@pytest.mark.parametrize("teacher_batch", ["loop", "copies"])
def test_channels_last_teacher_and_anchor_are_close_to_the_default_layout(teacher_batch, ap):
    """Channels-last teacher and anchor forwards: predictions equal to round-off over the
    stream (float64). The weights only to 1e-7: the round-off of the teacher's logits moves
    the gradients by as much, and Adam's step divides by the root of the second moment, so
    an element whose gradient is near zero takes a different step of up to ``lr``. In
    float32 the first batch (before any update reaches the prediction) agrees to 1e-5."""
    fast, exact = (cotta_runs(small_net, torch.float64, ap, teacher_batch=teacher_batch, **cl)
                   for cl in ({"channels_last": True}, {}))
    assert_close_runs(fast, exact, 1e-7)
    assert max(float((a - b).abs().max()) for a, b in zip(fast[0], exact[0],
                                                            strict=True)) <= 1e-9
    x = stream()[0].float()
    first = [tta.CoTTA(small_net().float(), n_augment=6, ap=1.0, channels_last=cl)(x)
             for cl in (True, False)]
    assert float((first[0] - first[1]).abs().max()) <= 1e-5


def test_channels_last_forward_changes_the_layout_only():
    net = small_net()
    x = batch(0)
    with torch.no_grad():
        got = tta.channels_last_forward(net, x)
        assert float((got - net(x)).abs().max()) <= TOL
        flat = nn.Sequential(nn.Linear(5, 3)).double()
        v = torch.rand(4, 5, dtype=torch.float64)
        assert torch.equal(tta.channels_last_forward(flat, v), flat(v))   # not 4-D: plain
    assert all(p.is_contiguous() for p in net.parameters())            # net unchanged
    with pytest.raises(ValueError, match="channels_last"):
        tta.CoTTA(small_net(), channels_last=True, teacher_batch="vmap")


def test_stacked_teacher_without_per_copy_statistics_would_differ(monkeypatch):
    """The adapter-level check has teeth: a naive stacked teacher forward (pooled BatchNorm
    statistics) gives other predictions on copies that differ strongly."""
    from bioplastic.tta import cotta

    xs = [x * (1 + 4 * (i % 2)) for i, x in enumerate(stream(4))]
    options = {"n_augment": 6, "augment_chunk": 6, "ap": 1.0, "teacher_batch": "copies"}
    loop = tta.CoTTA(small_net(), **{**options, "teacher_batch": "loop"})
    expected = [loop(x) for x in xs]
    stacked = tta.CoTTA(small_net(), **options)
    assert all(float((stacked(x) - e).abs().max()) <= 1e-9 for x, e in zip(xs, expected,
                                                                             strict=True))
    monkeypatch.setattr(cotta, "per_copy_batch_norm", lambda net, n: contextlib.nullcontext())
    naive = tta.CoTTA(small_net(), **options)
    assert max(float((naive(x) - e).abs().max()) for x, e in zip(xs, expected,
                                                                 strict=True)) > 1e-3


# ------------------------------------- the cost work changed no number (frozen reference)
def mixed_stream(dtype):
    """Batches of three shapes: noise sizes a multiple of 16 (16×1×8×8), not (5×1×7×7 = 245),
    and below 16 (2×1×2×3 = 6: the skip makes the real draws); contrasts spread the anchor's
    confidence across ``ap``."""
    shapes = [(16, 1, 8, 8), (5, 1, 7, 7), (2, 1, 2, 3)]
    return [(images(shapes[s % 3], seed=s) * (0.2 + 0.3 * (s % 4) / 3)).to(dtype)
            for s in range(12)]


def middle_confidence(net, xs) -> float:
    anchor = tta.CoTTA(net).aux["anchor"]
    with torch.no_grad():
        conf = sorted(float(anchor(x).softmax(1).max(1).values.mean()) for x in xs)
    return (conf[len(conf) // 2 - 1] + conf[len(conf) // 2]) / 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [
    {}, {"augment_draws": "when_used"}, {"augment": tta.CoTTAAugment(hflip_p=0.0)},
    {"n_augment": 3, "augment_chunk": 2}, {"rst": 0.0}])
def test_cotta_equals_its_frozen_reference_bit_for_bit(dtype, options):
    """Today's CoTTA against ``tests/cotta_reference.py`` (CoTTA at 46ae4a3, before the cost
    work: per-tensor EMA and restore, Adam's per-tensor loop, real draws for unused copies):
    every prediction, every weight of student, teacher and anchor, the optimizer state and
    the random stream are equal bit for bit, over a stream where both branches are taken."""
    from . import cotta_reference as reference

    xs = mixed_stream(dtype)
    ap = middle_confidence(small_net(dtype), xs)
    options = {"n_augment": 8, "rst": 0.1, "lr": 1e-2, "ap": ap, **options}
    ref_options = dict(options)
    options["teacher_batch"] = "loop"   # the exact per-copy path
    if "augment" in options:
        ref_options["augment"] = reference.CoTTAAugment(hflip_p=options["augment"].hflip_p)
    new, old = tta.CoTTA(small_net(dtype), **options), reference.CoTTA(small_net(dtype),
                                                                        **ref_options)
    for x in xs:
        assert torch.equal(new(x), old(x))
    assert 0 < new.augmented_batches < len(xs)             # both branches were taken
    assert new.augmented_batches == old.augmented_batches
    assert state_equal(module_tensors(new), module_tensors(old))   # model, teacher, anchor, rng
    new_opt, old_opt = new.optimizer.state_dict(), old.optimizer.state_dict()
    assert state_equal(new_opt["state"], old_opt["state"])  # steps, both Adam moments
    assert new_opt["param_groups"][0]["foreach"] and not old_opt["param_groups"][0]["foreach"]


def test_the_fast_skip_is_in_use_and_matches_the_real_draws():
    """On this torch the skip advances the generator by uniform draws (the exactness check
    holds), for grey and RGB batches of every noise size class."""
    from bioplastic.tta import cotta

    assert cotta._uniform_skip_is_exact()
    aug = tta.CoTTAAugment()
    for shape in [(64, 1, 8, 8), (7, 3, 5, 5), (1, 1, 4, 4), (1, 1, 3, 3)]:
        x = torch.zeros(shape)
        real, fast = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        torch.randn(3, generator=real)   # a spare normal is kept in the state: still equal
        torch.randn(3, generator=fast)
        aug.copies(x, real, 4)
        aug.skip(x, fast, 4)
        assert same_state(real, fast)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ema_update_equals_the_per_tensor_update(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = [(6, 1, 3, 3), (6,), (), (4, 8), (0, 3)]
    target = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    source = [torch.randn(s, generator=gen, dtype=dtype, requires_grad=True) for s in shapes]
    expected = [t.clone() for t in target]
    for t, s in zip(expected, source, strict=True):
        t.mul_(0.999).add_(s.detach(), alpha=1.0 - 0.999)
    tta.ema_update(target, source, 0.999)
    assert all(torch.equal(a, b) for a, b in zip(target, expected, strict=True))
    tta.ema_update([], [], 0.5)
    with pytest.raises(ValueError, match="target has 5 tensors but source 2"):
        tta.ema_update(target, source[:2], 0.5)


@pytest.mark.parametrize("chunk", [1 << 22, 40])
def test_stochastic_restore_all_equals_restoring_tensor_by_tensor(chunk, monkeypatch):
    """One draw over several tensors is the concatenation of their draws; chunk 40 splits the
    tensors into groups (one tensor larger than a chunk alone)."""
    from bioplastic.tta import base

    monkeypatch.setattr(base, "RESTORE_CHUNK", chunk)
    gen = torch.Generator().manual_seed(0)
    shapes = [(6, 1, 3, 3), (6,), (), (4, 8), (0, 3), (5,)]
    weights = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    sources = [torch.randn(s, generator=gen) for s in shapes]
    expected = [w.detach().clone() for w in weights]
    g_ref, g_new = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for i, (w, src) in enumerate(zip(expected, sources, strict=True)):
        expected[i] = tta.stochastic_restore(w, src, 0.3, g_ref)
    tta.stochastic_restore_all(weights, sources, 0.3, g_new)
    assert all(torch.equal(w, e) for w, e in zip(weights, expected, strict=True))
    assert same_state(g_ref, g_new)
    assert any(not torch.equal(w, src) for w, src in zip(weights, sources, strict=True))
    with pytest.raises(ValueError, match="sources"):
        tta.stochastic_restore_all(weights, sources[:1], 0.3, g_new)


# ------------------------------------------------------------------------ the experiment
def test_experiment_methods_and_draws_flags():
    from .conftest import load_experiment

    experiment = load_experiment("tta_digits_c")
    config = experiment.parse_args(["--methods", "tent,cotta", "--cotta-augment-draws",
                                    "when_used", "--out", "x"])
    assert config.methods == ("tent", "cotta") and config.ablations == ()
    assert config.cotta_augment_draws == "when_used"
    assert experiment.parse_args(["--out", "x"]).cotta_augment_draws == "always"
    with pytest.raises(SystemExit):
        experiment.parse_args(["--methods", "tent,nope", "--out", "x"])
    adapter = experiment.make_adapter("cotta", small_net().float(), config)
    assert adapter.augment_draws == "when_used"
    assert isinstance(adapter.augment, tta.CoTTAAugment) and adapter.augment.hflip_p == 0.0
    default = experiment.make_adapter("cotta", small_net().float(),
                                      experiment.parse_args(["--out", "x"]))
    reference = tta.CoTTA(small_net())
    assert (default.teacher_batch, default.channels_last) == (reference.teacher_batch,
                                                              reference.channels_last)
    other = experiment.parse_args(["--cotta-teacher-batch", "loop", "--no-cotta-channels-last",
                                   "--out", "x"])
    adapter = experiment.make_adapter("cotta", small_net().float(), other)
    assert (adapter.teacher_batch, adapter.channels_last) == ("loop", False)
    on = experiment.parse_args(["--cotta-channels-last", "--out", "x"])
    assert experiment.make_adapter("cotta", small_net().float(), on).channels_last
    with pytest.raises(SystemExit):
        experiment.parse_args(["--cotta-teacher-batch", "stacked", "--out", "x"])


# -------------------------------------------------- ap: the authors' rule, tuned default
def test_cotta_threshold_is_the_authors_quantile_rule():
    """5 % quantile of the source model's max-softmax on source images, minus 0.05
    (qinenergy/cotta issue #16); checked against NumPy's quantile of the same confidences."""
    import numpy as np

    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(0)) * 3
    model = nn.Sequential(nn.Identity()).train()
    conf = logits.softmax(1).max(1).values.double().numpy()
    expected = float(np.quantile(conf, 0.05)) - 0.05
    got = tta.cotta_threshold(model, logits, batch_size=64)
    assert got == pytest.approx(expected, abs=1e-7)   # float32 softmax, float64 quantile
    assert model.training                              # the mode is restored
    assert tta.cotta_threshold(model, logits, quantile=0.5, margin=0.0) == pytest.approx(
        float(np.quantile(conf, 0.5)), abs=1e-7)
    # a model that is sure of everything gives 1 - margin; clipped at 0 from below
    sure = torch.zeros(8, 3)
    sure[:, 0] = 100.0
    assert tta.cotta_threshold(model, sure) == pytest.approx(0.95)
    assert tta.cotta_threshold(model, sure, margin=2.0) == 0.0


def test_cotta_threshold_uses_running_statistics_and_changes_nothing():
    net = small_net().float()
    x = batch(32).float()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    a = tta.cotta_threshold(net, x, batch_size=5)
    b = tta.cotta_threshold(net, x, batch_size=32)   # eval mode: no batch statistics
    assert a == pytest.approx(b, abs=1e-6)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("kwargs", [{"x_source": torch.zeros(0, 3)}, {"quantile": 1.5},
                                    {"batch_size": 0}, {"x_source": "images"}])
def test_cotta_threshold_rejects_bad_arguments(kwargs):
    args = {"x_source": torch.zeros(4, 3), **kwargs}
    with pytest.raises(ValueError):
        tta.cotta_threshold(nn.Identity(), **args)


def test_experiment_cotta_ap_flags_and_bench_constant():
    from bioplastic._bench.tta import DIGITS_C_AP

    from .conftest import load_experiment

    experiment = load_experiment("tta_digits_c")
    default = experiment.parse_args(["--out", "x"])
    # the bench's digits-C row times the experiment's (tuned) default
    assert default.cotta_ap == DIGITS_C_AP
    assert experiment.parse_args(["--cotta-ap", "0.92", "--out", "x"]).cotta_ap == 0.92
    assert experiment.parse_args(["--cotta-ap", "rule", "--out", "x"]).cotta_ap == "rule"
    assert experiment.parse_args(["--cotta-n-augment", "4", "--out", "x"]).cotta_n_augment == 4
    for bad in (["--cotta-ap", "1.5"], ["--cotta-ap", "high"], ["--cotta-n-augment", "0"]):
        with pytest.raises(SystemExit):
            experiment.parse_args([*bad, "--out", "x"])
    net = small_net().float()
    adapter = experiment.make_adapter("cotta", net, default, ap=0.5, n_augment=2)
    assert (adapter.ap, adapter.n_augment) == (0.5, 2)
    with pytest.raises(ValueError, match="resolve"):
        experiment.make_adapter("cotta", net, dataclasses.replace(default, cotta_ap="rule"))


# ------------------------------------------- channels-last max pooling (same bits, faster)
def bits(t: torch.Tensor) -> torch.Tensor:
    """The IEEE bit patterns (NaN payloads and the sign of zero included)."""
    return t.contiguous().view(torch.int64 if t.dtype == torch.float64 else torch.int32)


POOLS = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
         dict(kernel_size=2, stride=1, ceil_mode=True),
         dict(kernel_size=3, stride=3, padding=1, dilation=2, ceil_mode=True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool", POOLS)
def test_channels_last_max_pool_gives_the_same_bits(pool, dtype):
    # values with ties of +0 and -0, NaN and infinities, where a kernel could differ
    gen = torch.Generator().manual_seed(7)
    special = torch.tensor([0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 0.5],
                           dtype=dtype)
    layer = nn.MaxPool2d(**pool)
    for shape in [(3, 8, 9, 7), (2, 16, 4, 5), (1, 64, 6, 6), (4, 3, 8, 8)]:
        for x in (special[torch.randint(0, 8, shape, generator=gen)],
                  torch.randn(shape, generator=gen, dtype=dtype).round() * 0.0):   # ±0 only
            with torch.no_grad():
                plain = layer(x)
                with tta.max_pool_channels_last(layer):
                    assert "forward" in layer.__dict__
                    fast = layer(x)
            assert fast.is_contiguous() and torch.equal(bits(fast), bits(plain)), shape
    assert "forward" not in layer.__dict__


def test_channels_last_max_pool_is_used_and_leaves_tracked_inputs_alone(monkeypatch):
    layouts = []
    pool2d = F.max_pool2d

    def spy(x, *args, **kwargs):
        layouts.append(x.is_contiguous(memory_format=torch.channels_last) and
                       not x.is_contiguous())
        return pool2d(x, *args, **kwargs)
    monkeypatch.setattr(F, "max_pool2d", spy)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with tta.max_pool_channels_last(net):
        with torch.no_grad():
            net(x)                           # no gradient: channels-last
        out = net(x)                         # autograd tracking: torch's own path
        out.sum().backward()
        thin = nn.MaxPool2d(2)(torch.rand(4, 4, 8, 8))   # not inside the context
    assert layouts == [True, False, False]
    assert net[0].weight.grad is not None and thin.shape == (4, 4, 4, 4)
    with pytest.raises(RuntimeError, match="boom"), tta.max_pool_channels_last(net):
        raise RuntimeError("boom")
    assert "forward" not in net[1].__dict__  # restored, even on error
    indices = nn.MaxPool2d(2, return_indices=True)

    class OwnPool(nn.MaxPool2d):
        def forward(self, x):
            return super().forward(x) + 1.0
    own = OwnPool(2)
    shared = nn.MaxPool2d(2)                       # one layer in two places: replaced once
    twice = nn.Sequential(shared, nn.Sequential(shared))
    compiled = nn.Sequential(nn.MaxPool2d(2))
    compiled._orig_mod = compiled[0]               # as torch.compile's wrapper holds a model
    with tta.max_pool_channels_last(indices), tta.max_pool_channels_last(own), \
            tta.max_pool_channels_last(twice), tta.max_pool_channels_last(compiled):
        assert "forward" not in indices.__dict__   # asked for indices: left alone
        assert "forward" not in own.__dict__       # a subclass's own forward: left alone
        assert "forward" in shared.__dict__
        assert "forward" not in compiled[0].__dict__   # compiled code guards on its modules
    assert "forward" not in shared.__dict__


def pool_net(dtype=torch.float64) -> nn.Module:
    """small_net with a max pool over 8 channels (the channels-last pooling's case)."""
    net = small_net(dtype)
    return nn.Sequential(*net[:6], nn.MaxPool2d(2), *net[6:])


@pytest.mark.parametrize("teacher_batch", ["loop", "copies"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cotta_with_channels_last_pooling_changes_no_number(dtype, teacher_batch, monkeypatch):
    xs = mixed_stream(dtype)[:6]
    xs = [x for x in xs if x.shape[-1] >= 4]      # poolable maps
    options = {"n_augment": 4, "rst": 0.1, "lr": 1e-2, "teacher_batch": teacher_batch,
               "ap": middle_confidence(pool_net(dtype), xs)}
    fast_pools = []
    pool2d = F.max_pool2d

    def spy(x, *args, **kwargs):
        fast_pools.append(not x.is_contiguous())
        return pool2d(x, *args, **kwargs)
    monkeypatch.setattr(F, "max_pool2d", spy)
    fast = tta.CoTTA(pool_net(dtype), **options)
    plain = tta.CoTTA(pool_net(dtype), max_pool_channels_last=False, **options)
    assert "max_pool_channels_last=False" in repr(plain)
    for x in xs:
        assert torch.equal(fast(x), plain(x))
    assert 0 < fast.augmented_batches < len(xs)
    assert state_equal(module_tensors(fast), module_tensors(plain))
    assert any(fast_pools) and not all(fast_pools)   # the teacher's and anchor's, not the rest


@pytest.mark.parametrize("method", ["nhl", "bn_adapt", "tent_in_place"])
def test_adapters_with_channels_last_pooling_change_no_number(method):
    """Every adapter's forwards without autograd pool channels-last (same numbers); an
    adapter of the caller's own model (``copy=False``) leaves no trace on its layers."""
    def build(net, **options):
        if method == "nhl":
            return tta.NHL(net, predict_after_update=True, **options)
        if method == "bn_adapt":
            return tta.BNAdapt(net, **options)
        return tta.Tent(net, copy=False, predict_after_update=True, **options)
    xs = [x for x in mixed_stream(torch.float64)[:6] if x.shape[-1] >= 4]
    nets = pool_net(), pool_net()
    fast, plain = build(nets[0]), build(nets[1], max_pool_channels_last=False)
    for x in xs:
        assert torch.equal(fast(x), plain(x))
        assert torch.equal(fast.predict(x), plain.predict(x))
    assert state_equal(module_tensors(fast), module_tensors(plain))
    assert all("forward" not in m.__dict__ for m in nets[0].modules())


@pytest.mark.parametrize("call", [
    lambda: tta.max_pool_channels_last(5), lambda: tta.per_copy_batch_norm("net", 2),
    lambda: tta.channels_last_forward(None, torch.zeros(1, 1, 2, 2))])
def test_the_layout_helpers_name_an_argument_that_is_not_a_module(call):
    with pytest.raises(TypeError, match=r"(model|net) must be a torch.nn.Module"):
        with contextlib.ExitStack() as stack:
            made = call()
            if hasattr(made, "__enter__"):
                stack.enter_context(made)


def test_channels_last_forward_names_an_input_that_is_not_a_tensor():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        tta.channels_last_forward(nn.Identity(), [[1.0]])


def _bad_helper_calls():
    """Odd arguments to the composable helpers (each was an AttributeError, IndexError or
    a bare RuntimeError from inside torch before their checks), with the error expected."""
    w, g = torch.zeros(2, 3), torch.Generator()
    net = small_net()
    return [
        (lambda: tta.softmax_entropy(None), TypeError, "logits must be a floating-point"),
        (lambda: tta.softmax_entropy(torch.zeros(4)), ValueError, r"logits must have shape"),
        (lambda: tta.soft_cross_entropy(w, torch.zeros(2, 4)), ValueError,
         r"teacher must have the shape \(2, 3\)"),
        (lambda: tta.reliable([0.1], 0.4), TypeError, "entropy must be a torch.Tensor"),
        (lambda: tta.ema_update("ab", "cd", 0.5), TypeError, "target must be a sequence"),
        (lambda: tta.ema_update([1], [w], 0.5), TypeError, r"target\[0\] must be a torch"),
        (lambda: tta.ema_update([w], [torch.zeros(3)], 0.5), ValueError,
         r"target\[0\] has shape \(2, 3\) but source\[0\] \(3,\)"),
        (lambda: tta.stochastic_restore(torch.zeros(0), w, 0.1, g), ValueError, "w_src"),
        (lambda: tta.stochastic_restore_all(w, w, 0.1, g), TypeError,
         "weights must be a sequence of tensors"),
        (lambda: tta.interpolate_toward(1, w, 0.5), TypeError, "w must be a torch.Tensor"),
        (lambda: tta.bound_angle(torch.zeros(3), torch.zeros(3), 0.1), ValueError,
         "w must be floating-point filters"),
        (lambda: tta.bn_affine_params(None), TypeError, "model must be a torch.nn.Module"),
        (lambda: tta.all_weights_and_biases(None), TypeError, "model must be"),
        (lambda: tta.norm_affine_params(None), TypeError, "model must be"),
        (lambda: tta.batchnorm_layers(None), TypeError, "model must be"),
        (lambda: tta.snapshot(None, None), TypeError, "modules must be"),
        (lambda: tta.restore(net, None, torch.zeros(1)), TypeError, "saved must be the dict"),
        (lambda: tta.configure_model(None, [], "batch"), TypeError, "model must be"),
        (lambda: tta.cotta_threshold(None, torch.zeros(2, 1, 8, 8)), TypeError, "model must"),
        (lambda: tta.cotta_threshold(net, torch.zeros(2, 3, 8, 8)), ValueError,
         "cotta_threshold: the model rejected input of shape"),
        (lambda: tta.fisher_diagonal(net, [], [1.0]), ValueError, "x must be a tensor"),
        (lambda: tta.fisher_diagonal(net, [torch.zeros(1)], torch.zeros(2, 1, 8, 8)),
         ValueError, "params must be a list of tensors that require grad"),
        (lambda: tta.ema_update([w], [w], float("nan")), ValueError, "momentum must be in"),
        (lambda: tta.stochastic_restore(w, w, w, g), TypeError, "prob must be a number"),
        (lambda: tta.stochastic_restore(w, w, 1.5, g), ValueError, r"prob must be in \[0.0"),
        (lambda: tta.stochastic_restore_all([w], [w], 0.1, 0), TypeError,
         "generator must be a torch.Generator"),
        (lambda: tta.interpolate_toward(w, w, -0.1), ValueError, "strength must be in"),
        (lambda: tta.bound_angle(w, w, w), TypeError, "max_rad must be a number"),
        (lambda: tta.reliable(torch.zeros(3), "0.4"), TypeError, "margin must be a number"),
        (lambda: tta.sam_ascent("w", 0.05), TypeError, "params must be a list of tensors"),
        (lambda: tta.sam_ascent([w], -1.0), ValueError, "rho must be in"),
        (lambda: tta.snapshot(net, 3), TypeError, "optimizer must be a torch.optim.Optimizer"),
        (lambda: tta.soft_hebb_conv_dw_torch(torch.zeros(0), w), ValueError,
         "x must be a floating-point 4-D tensor"),
        (lambda: tta.soft_hebb_conv_dw_torch(torch.zeros(1, 2, 5, 5), torch.zeros(3, 1, 3, 3)),
         ValueError, "x has 2 channels but w expects 1"),
        (lambda: tta.channels_last_forward(net, torch.zeros(3)), ValueError,
         "channels_last_forward: the model rejected input"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_helper_calls())))
def test_the_composable_helpers_name_a_bad_argument(case):
    call, error, message = _bad_helper_calls()[case]
    with pytest.raises(error, match=message):
        call()
