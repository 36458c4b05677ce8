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
    x = batch(0, n=7)
    # the window starts empty: one sample alone would be normalised by its own statistics
    with pytest.raises(ValueError, match="the sample window is empty"):
        adapter(x[:1])
    outs = [adapter(x[:2])] + [adapter(x[i:i + 1]) for i in range(2, 7)]
    assert all(bool(torch.isfinite(o).all()) for o in outs)
    assert [o.shape[0] for o in outs] == [2, 1, 1, 1, 1, 1] and adapter.updates == 6


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
    adapter(x[0:2])
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


# ------------------------------------------------------- second user tour (issue notes)
class TiedNet(nn.Module):
    """Two BatchNorms sharing their affine, two linears sharing their weight."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.bn2.weight, self.bn2.bias = self.bn1.weight, self.bn1.bias
        self.a, self.b, self.fc = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.b.weight = self.a.weight

    def forward(self, x):
        h = self.bn2(self.c2(self.bn1(self.c1(x)).relu())).relu().mean((2, 3))
        return self.fc(self.b(self.a(h).relu()))


@pytest.mark.parametrize("name", ADAPTERS)
def test_a_tied_parameter_is_adapted_once(name):
    # Before: CoTTA raised KeyError 'b.weight' (listed under both names, looked up in
    # named_parameters(), which lists it once); Tent, EATA and SAR gave the optimizer the
    # shared BatchNorm affine twice (torch's duplicate-parameter warning, here an error).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adapter = ADAPTERS[name](TiedNet().double())
        initial = copy.deepcopy(adapter.state_dict())
        for seed in range(2):
            adapter(batch(seed))
    params = [p for g in adapter.optimizer.param_groups for p in g["params"]]
    assert len({id(p) for p in params}) == len(params) == len(adapter.adapted_names)
    assert "bn2.weight" not in adapter.adapted_names and "b.weight" not in adapter.adapted_names
    if name.startswith("cotta"):
        teacher = adapter.aux["teacher"]
        assert {"a.weight", "bn1.weight"} <= set(adapter.adapted_names)
        assert teacher.b.weight is teacher.a.weight                # the tie survives the copy
        assert not torch.equal(teacher.a.weight, initial["aux.teacher.a.weight"])  # EMA ran
    adapter.reset()
    assert state_equal(adapter.state_dict(), initial)


def weight_norm_net() -> nn.Module:
    torch.manual_seed(0)
    conv = torch.nn.utils.parametrizations.weight_norm(nn.Conv2d(1, 6, 3, padding=1))
    return nn.Sequential(conv, nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 4)).double()


def test_nhl_refuses_a_parametrized_conv1():
    # Before: the Hebbian update was copied into the recomputed weight and lost, while
    # n_updates counted it.
    with pytest.raises(ValueError, match="conv1's weight must be a plain nn.Parameter.*"
                                         "weight_norm"):
        tta.NHL(weight_norm_net(), modulator=None)


def test_cotta_adapts_a_parametrized_weight_by_its_originals():
    # Before: adapted_names left conv1's weight out (it is no parameter of the conv).
    adapter = tta.CoTTA(weight_norm_net(), n_augment=2, ap=1.0, lr=0.05)
    originals = ["0.parametrizations.weight.original0", "0.parametrizations.weight.original1"]
    assert set(originals) <= set(adapter.adapted_names)
    before = adapter.model[0].weight.detach().clone()
    initial = copy.deepcopy(adapter.state_dict())
    adapter(batch(0))
    assert not torch.equal(adapter.model[0].weight, before)
    assert not torch.equal(adapter.aux["teacher"][0].weight, before)   # the EMA reached it
    adapter.reset()
    assert state_equal(adapter.state_dict(), initial)


class TupleNet(nn.Module):
    def __init__(self, as_dict: bool = False) -> None:
        super().__init__()
        self.net, self.as_dict = small_net(), as_dict

    def forward(self, x):
        logits = self.net(x)
        return {"logits": logits} if self.as_dict else (logits, x)


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("make", [tta.BNAdapt, tta.Source,
                                  lambda m: tta.NHL(m, modulator=None, eta=0.5)])
def test_loss_free_methods_name_a_model_output_that_is_not_a_tensor(make, as_dict):
    # Before: a bare AttributeError ('tuple' object has no attribute 'detach') or
    # TypeError from slicing a dict in _adapt_batch; the Hebbian step had already run.
    adapter = make(TupleNet(as_dict))
    before = copy.deepcopy(adapter.state_dict())
    got = "dict" if as_dict else "tuple"
    for call in (adapter, adapter.predict):
        with pytest.raises(ValueError, match=r"must return a tensor of per-sample outputs "
                                             rf"\(B, \.\.\.\), B = 16; got {got}"):
            call(batch(0))
    assert state_equal(adapter.state_dict(), before) and adapter.updates == 0


def test_predict_with_a_window_normalises_with_the_window():
    # Before: predict(x[:1]) passed the batch-size check (the window counted) but ran the
    # model on the one sample alone, so BatchNorm used one sample's statistics.
    adapter = tta.Tent(small_net(), single_sample_window=3, lr=1e-2)
    x = batch(0, n=5)
    adapter(x[:3])
    window = adapter.state_dict()["_extra_state"]["window"].clone()
    with torch.no_grad():
        expected = adapter.model(torch.cat([window, x[3:4]]))[-1:]
    assert torch.equal(adapter.predict(x[3:4]), expected)
    assert torch.equal(adapter.state_dict()["_extra_state"]["window"], window)   # unchanged
    with pytest.raises(ValueError, match="batch size 1"):
        tta.Tent(small_net()).predict(x[:1])            # no window: the documented error


def test_an_empty_window_refuses_one_sample():
    # Before: the first call, and every call with episodic=True (whose reset empties the
    # window), adapted on and normalised by the one sample alone.
    fresh = tta.Tent(small_net(), single_sample_window=3)
    episodic = tta.Tent(small_net(), single_sample_window=3, episodic=True)
    x = batch(0, n=4)
    episodic(x[:2])
    for adapter in (fresh, episodic, fresh.predict):
        with pytest.raises(ValueError, match="batch size 1.*the sample window is empty"):
            adapter(x[2:3])
    fresh(x[:2])
    fresh.reset()
    with pytest.raises(ValueError, match="the sample window is empty"):
        fresh(x[2:3])


@pytest.mark.parametrize("value, error", [(-1, ValueError), (0, ValueError),
                                          (1.5, TypeError), (True, TypeError)])
def test_eata_fisher_batch_is_a_positive_integer(value, error):
    # Before: -1 gave an all-NaN Fisher (EATA silently off), 0 range()'s "arg 3 must not be
    # zero", and without fisher_x nothing was checked.
    for fisher_x in (batch(50, n=12), None):
        with pytest.raises(error, match="fisher_batch"):
            tta.EATA(small_net(), fisher_x=fisher_x, fisher_batch=value)


def test_cotta_threshold_restores_every_submodule_mode():
    # Before: model.train(was_training) put the BatchNorm that the caller had in eval mode
    # back into train mode.
    net = small_net(dtype=torch.float32)
    net.train()
    net[1].eval()
    modes = [m.training for m in net.modules()]
    tta.cotta_threshold(net, batch(0, dtype=torch.float32))
    assert [m.training for m in net.modules()] == modes


def test_nhl_copies_a_caller_modulator():
    # Before: the caller's module was adapted in place, converted to the model's dtype in
    # place, and shared by every adapter given it.
    modulator = tta.ChannelAffine(6)                  # float32; the model is float64
    reference = copy.deepcopy(modulator.state_dict())
    a = tta.NHL(small_net(), modulator=modulator, lr=0.1)
    b = tta.NHL(small_net(), modulator=modulator, lr=0.1)
    initial = copy.deepcopy(a.state_dict())
    b_before = b.predict(batch(9))
    for seed in range(3):
        a(batch(seed))
    assert a.extra["modulator"] is not modulator and a.extra["modulator"] is not b.extra[
        "modulator"]
    assert state_equal(modulator.state_dict(), reference)          # not adapted, still float32
    assert torch.equal(b.predict(batch(9)), b_before)
    assert not state_equal(a.state_dict(), initial)
    a.reset()
    assert state_equal(a.state_dict(), initial)
    in_place = tta.NHL(small_net(), modulator=modulator, copy=False)
    assert in_place.extra["modulator"] is modulator                # copy=False: the caller's


@pytest.mark.parametrize("make, error, name", [
    (lambda m: tta.SAR(m, rho=-1), ValueError, "rho"),
    (lambda m: tta.SAR(m, reset_constant="x"), TypeError, "reset_constant"),
    (lambda m: tta.SAR(m, margin=float("nan")), ValueError, "margin"),
    (lambda m: tta.EATA(m, d_margin=float("nan")), ValueError, "d_margin"),
    (lambda m: tta.EATA(m, fisher_alpha=-5), ValueError, "fisher_alpha"),
    (lambda m: tta.EATA(m, e_margin="x"), TypeError, "e_margin"),
    (lambda m: tta.CoTTA(m, ap=True), TypeError, "ap"),
    (lambda m: tta.CoTTA(m, mt="x"), TypeError, "mt"),
])
def test_method_settings_are_checked_at_construction(make, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        make(small_net())


def test_numpy_integers_are_counts():
    import numpy as np

    adapter = tta.Tent(small_net(), steps=np.int64(2), reset_every=np.int32(3),
                       single_sample_window=np.int64(4))
    assert (adapter.steps, adapter.reset_every, adapter.single_sample_window) == (2, 3, 4)
    assert type(adapter.steps) is int
    adapter(batch(0))
    with pytest.raises(TypeError, match="steps"):
        tta.Tent(small_net(), steps=np.float64(2))


def test_a_loss_that_returns_no_tensor_is_named_and_rolled_back():
    adapter = tta.Tent(small_net(), loss=lambda logits: 0.5)
    before = copy.deepcopy(adapter.state_dict())
    with pytest.raises(TypeError, match="Tent: loss must return a torch.Tensor.*got float"):
        adapter(batch(0))
    assert state_equal(adapter.state_dict(), before)


@pytest.mark.parametrize("make, method", [(tta.SAR, "SAR"), (tta.EATA, "EATA"),
                                          (tta.CoTTA, "CoTTA")])
def test_a_model_without_what_the_method_adapts_names_that_method(make, method):
    bare = nn.Sequential(nn.Flatten(), nn.ReLU())     # no norm layer, no weight
    with pytest.raises(ValueError, match=rf"^{method}: .*found no parameters") as info:
        make(bare)
    assert "Tent" not in str(info.value) and f"({method} adapts " in str(info.value)


def test_repr_shows_a_zero_margin():
    assert "margin=0.0," in repr(tta.SAR(small_net(), margin=0.0))
    assert "e_margin=0.0," in repr(tta.EATA(small_net(), e_margin=0.0))
    assert "margin='0.4 ln C'" in repr(tta.SAR(small_net()))


def test_cotta_reset_restores_its_augmented_batch_count():
    adapter = tta.CoTTA(small_net(), n_augment=2, ap=1.0)
    for seed in range(2):
        adapter(batch(seed))
    assert adapter.augmented_batches == 2
    saved = copy.deepcopy(adapter.state_dict())
    adapter.reset()
    assert adapter.augmented_batches == 0 and adapter.updates == 0
    adapter.load_state_dict(saved)
    assert adapter.augmented_batches == 2
