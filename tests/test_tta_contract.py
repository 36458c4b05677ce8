"""One wrapper contract for every adapter (docs/tta.md), and the wrapper-state bugs of issue 14.

Each adapter is built with settings that make it adapt on the tiny test batches (e.g. a large
entropy margin for EATA and SAR, whose defaults are tuned for 1000 classes), so that "reset
restores" and "a skipped step changes nothing" are tested on an adapter that really moves.
"""

from __future__ import annotations

import copy
import gc
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import bioplastic.tta as tta  # noqa: E402

from .test_tta import batch, module_tensors, small_net, state_equal  # noqa: E402

torch.set_num_threads(1)

# margins of 10 nats exceed the 4-class maximum entropy ln 4 ≈ 1.39: every sample is reliable
ADAPTERS = {
    "tent": lambda m, **k: tta.Tent(m, lr=1e-2, **k),
    "nhl": lambda m, **k: tta.NHL(m, lr=1e-2, **k),
    "nhl_anchored": lambda m, **k: tta.NHL(m, lr=1e-2, anchor=0.1, restore_prob=0.05,
                                           max_angle_deg=5.0, **k),
    "eata": lambda m, **k: tta.EATA(m, fisher_x=batch(50, n=12), e_margin=10.0,
                                    d_margin=1.01, lr=0.05, **k),
    "sar": lambda m, **k: tta.SAR(m, margin=10.0, lr=0.05, reset_constant=0.0, **k),
    "cotta": lambda m, **k: tta.CoTTA(m, n_augment=2, ap=1.0, rst=0.1, **k),
    # a confident anchor: the copies are not made, only their random draws
    "cotta_confident": lambda m, **k: tta.CoTTA(m, n_augment=2, ap=0.0, rst=0.1, **k),
    # the cost options: stacked copies (per-copy BatchNorm), channels-last teacher and anchor
    "cotta_copies_channels_last": lambda m, **k: tta.CoTTA(
        m, n_augment=2, ap=1.0, rst=0.1, teacher_batch="copies", channels_last=True, **k),
}


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("name", ADAPTERS)
def test_is_a_real_adapter_class_with_an_informative_repr(name):
    adapter = ADAPTERS[name](small_net())
    assert isinstance(adapter, tta.Adapter)
    cls = type(adapter)
    assert cls is not tta.Adapter and isinstance(adapter, cls)
    text = repr(adapter)
    assert text.startswith(f"{cls.__name__}(Sequential, ") and "updates=0" in text
    assert len(text) < 400


def test_factory_names_are_classes():
    """Issue 15: ``isinstance(a, tta.Tent)`` used to raise (Tent was a function)."""
    net = small_net()
    for cls in (tta.Tent, tta.NHL, tta.BNAdapt, tta.Source, tta.EATA, tta.SAR, tta.CoTTA):
        assert isinstance(cls, type) and issubclass(cls, tta.Adapter)
    assert isinstance(tta.Tent(net), tta.Tent) and not isinstance(tta.Tent(net), tta.NHL)
    assert isinstance(tta.Adapter.disabled(net), tta.Source)


@pytest.mark.parametrize("name", ADAPTERS)
def test_copies_by_default(name):
    net = small_net()
    before = copy.deepcopy(net.state_dict())
    adapter = ADAPTERS[name](net)
    for seed in range(2):
        adapter(batch(seed))
    assert state_equal(net.state_dict(), before)
    assert all(p.grad is None for p in net.parameters())
    assert no_hooks(net)


@pytest.mark.parametrize("name", ADAPTERS)
def test_reset_restores_bit_for_bit(name):
    adapter = ADAPTERS[name](small_net())
    initial = copy.deepcopy(adapter.state_dict())
    first = [adapter(batch(seed)) for seed in range(3)]
    assert not state_equal(module_tensors(adapter), {k: v for k, v in initial.items()
                                                     if k != "_extra_state"})
    adapter.reset()
    assert state_equal(adapter.state_dict(), initial)
    # and the same stream gives the same outputs again (random state included)
    assert all(torch.equal(a, adapter(batch(seed))) for seed, a in enumerate(first))


@pytest.mark.parametrize("name", ADAPTERS)
def test_non_finite_input_skips_the_step(name):
    adapter = ADAPTERS[name](small_net())
    adapter(batch(0))
    before = copy.deepcopy(adapter.state_dict())
    bad = batch(1)
    bad[2, 0, 3, 3] = float("nan")
    with pytest.warns(RuntimeWarning, match="non-finite input"):
        adapter(bad)
    after = adapter.state_dict()
    assert state_equal(module_tensors(adapter), {k: v for k, v in before.items()
                                                 if k != "_extra_state"})
    assert state_equal(after["_extra_state"]["optimizer"], before["_extra_state"]["optimizer"])
    assert adapter.skipped == {"non-finite input": 1}


@pytest.mark.parametrize("name", ADAPTERS)
def test_batch_size_one(name):
    with pytest.raises(ValueError, match="single_sample_window"):
        ADAPTERS[name](small_net())(batch(0, n=1))
    adapter = ADAPTERS[name](small_net(), single_sample_window=4)
    x = batch(0, n=6)
    outs = [adapter(x[i:i + 1]) for i in range(6)]
    assert all(o.shape == (1, 4) and bool(torch.isfinite(o).all()) for o in outs)
    assert adapter.updates == 6


@pytest.mark.parametrize("name", ADAPTERS)
def test_input_that_requires_grad_gets_no_grad(name):
    """Issue 14 (5): the entropy's backward wrote into the caller's ``x.grad``."""
    x = batch(0).requires_grad_(True)
    ADAPTERS[name](small_net())(x)
    assert x.grad is None


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_inside_a_parent_module_saves_with_it(name):
    """Issue 14 (5): an adapter in a parent module contributed no keys to its state_dict."""
    def parent():
        holder = nn.Module()
        holder.adapter = ADAPTERS[name](small_net())
        return holder

    a, b = parent(), parent()
    for seed in range(2):
        a.adapter(batch(seed))
    state = a.state_dict()
    assert "adapter._extra_state" in state and "adapter.model.0.weight" in state
    b.load_state_dict(copy.deepcopy(state))
    assert torch.equal(a.adapter(batch(7)), b.adapter(batch(7)))


@pytest.mark.parametrize("name", ADAPTERS)
def test_deepcopy_is_independent(name):
    adapter = ADAPTERS[name](small_net())
    adapter(batch(0))
    twin = copy.deepcopy(adapter)
    before = copy.deepcopy(adapter.state_dict())
    twin(batch(1))
    assert state_equal(adapter.state_dict(), before)
    assert not state_equal(twin.state_dict(), before)


def test_deepcopy_of_nhl_uses_its_own_modulator():
    """Issue 14 (5): the copy's hook called the *original's* modulator, so the copy's own
    modulator never changed and the original's collected the gradients."""
    original = tta.NHL(small_net(), lr=1e-2)
    twin = copy.deepcopy(original)
    start = copy.deepcopy(twin.extra["modulator"].state_dict())
    twin(batch(0))
    assert not state_equal(twin.extra["modulator"].state_dict(), start)
    assert all(p.grad is None for p in original.extra["modulator"].parameters())
    assert state_equal(original.extra["modulator"].state_dict(), start)


def test_nhl_in_place_leaves_no_hook_after_reset_or_deletion():
    """Issue 14 (5): with ``copy=False`` the modulator hook stayed on the caller's model."""
    net = small_net()
    x = batch(3)
    adapter = tta.NHL(net, copy=False, lr=1e-2)   # configures net in place (batch-stats BN)
    with torch.no_grad():
        expected = net(x)
    adapter(batch(0))
    assert no_hooks(net)              # hooks live only during a call
    adapter.reset()
    with torch.no_grad():
        assert torch.equal(net(x), expected)
    adapter(batch(1))
    del adapter
    gc.collect()
    assert no_hooks(net)


def test_nan_sample_does_not_poison_the_window():
    """Issue 14 (5): one NaN sample stayed in the window and the next W calls returned NaN."""
    adapter = tta.Tent(small_net(), single_sample_window=3, lr=1e-2)
    x = batch(0, n=5)
    adapter(x[0:1])
    bad = x[1:2].clone()
    bad[0, 0, 0, 0] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        adapter(bad)
    for i in range(2, 5):
        out = adapter(x[i:i + 1])
        assert bool(torch.isfinite(out).all())
    assert adapter.skipped == {"non-finite input": 1}
    assert bool(torch.isfinite(adapter.state_dict()["_extra_state"]["window"]).all())


@pytest.mark.parametrize("name", ADAPTERS)
def test_non_finite_logits_skip_the_step(name):
    """Finite input, but an infinite logit: the loss is not finite (or, for EATA and SAR, no
    sample is reliable), so nothing of the step may stay (weights, optimizer, method state)."""
    net = small_net()
    with torch.no_grad():
        net[-1].bias[0] = float("inf")
    adapter = ADAPTERS[name](net)
    before = copy.deepcopy(adapter.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        adapter(batch(0))
    after = adapter.state_dict()
    # EATA's Fisher, estimated through the infinite logit, is NaN: compare NaN equal to NaN
    assert before.keys() == after.keys()
    assert all(torch.allclose(after[k], before[k], rtol=0.0, atol=0.0, equal_nan=True)
               for k in module_tensors(adapter))
    assert state_equal(after["_extra_state"]["optimizer"], before["_extra_state"]["optimizer"])


def test_eata_skipped_step_keeps_no_mean_prediction():
    """EATA updated its running mean prediction before a step that was then skipped."""
    adapter = tta.EATA(small_net(), fisher_x=batch(50, n=12), e_margin=10.0, d_margin=1.01,
                       fisher_alpha=float("inf"))   # inf · 0 penalty: a NaN loss
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        adapter(batch(0))
    assert adapter.skipped == {"non-finite loss": 1}
    assert adapter.model_probs is None and adapter.n_reliable == adapter.n_selected == 0


@pytest.mark.parametrize("name", ADAPTERS)
def test_a_model_without_class_logits_is_named_and_left_unchanged(name):
    # Before: an IndexError from the loss's softmax over axis 1 ("Dimension out of range",
    # SAR: "tuple index out of range"); now a ValueError naming the method and the shape.
    base = small_net()
    score = nn.Linear(4, 1).to(next(base.parameters()).dtype)
    net = nn.Sequential(base, score, nn.Flatten(0))                     # scores (B,)
    reference = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match=r"must return logits \(B, n_classes\).*got \(\d+,\)"):
        adapter = ADAPTERS[name](net)
        adapter(batch(0))
    assert all(torch.equal(v, reference[k]) for k, v in net.state_dict().items())
