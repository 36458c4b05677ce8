"""bioplastic.tta: the wrapper contract (spec nhl_tta.md §5), Tent, BN adapt, source and NHL."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import bioplastic.tta as tta  # noqa: E402
from bioplastic.rules import SoftHebbParams, soft_hebb_conv_dw  # noqa: E402
from bioplastic.tta.nhl import soft_hebb_conv_dw_torch  # noqa: E402

torch.set_num_threads(1)


def small_net(dtype=torch.float64, seed=0) -> nn.Module:
    """conv1 → BN → ReLU → conv → BN → ReLU → pool → linear: every layer a method touches."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    # non-trivial source statistics and affine, so "source" and "batch" BN differ
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.to(dtype).eval()


def batch(seed, n=16, dtype=torch.float64, channels=1) -> torch.Tensor:
    return torch.rand(n, channels, 8, 8, generator=torch.Generator().manual_seed(seed),
                      dtype=dtype)


def state_equal(a: dict, b: dict) -> bool:
    """Bit-for-bit equality of two (nested) state dicts."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(state_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(state_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a, b))
    return a == b


def module_tensors(adapter) -> dict:
    """Every parameter and buffer of an adapter's state dict (without ``_extra_state``)."""
    return {k: v for k, v in adapter.state_dict().items() if k != "_extra_state"}


def without_extra(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "_extra_state"}


METHODS = {"tent": lambda m, **k: tta.Tent(m, **k), "nhl": lambda m, **k: tta.NHL(m, **k)}


# ------------------------------------------------------------------ contract §5 tests
@pytest.mark.parametrize("method", METHODS)
def test_reset_restores_bit_for_bit(method):
    adapter = METHODS[method](small_net(), lr=1e-2)
    initial = copy.deepcopy(adapter.state_dict())
    for seed in range(3):
        adapter(batch(seed))
    assert not state_equal(adapter.state_dict(), initial)   # it did adapt
    adapter.reset()
    assert state_equal(adapter.state_dict(), initial)


@pytest.mark.parametrize("method", METHODS)
def test_episodic_output_does_not_depend_on_history(method):
    fresh = METHODS[method](small_net(), episodic=True, lr=1e-2)
    used = METHODS[method](small_net(), episodic=True, lr=1e-2)
    for seed in range(3):
        used(batch(seed))
    assert torch.equal(fresh(batch(9)), used(batch(9)))


def changed_tensors(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_tent_changes_only_bn_affine():
    net = small_net()
    adapter = tta.Tent(net, lr=1e-2)
    before = copy.deepcopy(adapter.model.state_dict())
    adapter(batch(0))
    changed = changed_tensors(before, adapter.model.state_dict())
    assert changed == {"1.weight", "1.bias", "4.weight", "4.bias"}


def test_nhl_changes_only_conv1_and_modulator():
    adapter = tta.NHL(small_net(), lr=1e-2)
    before = copy.deepcopy(module_tensors(adapter))
    adapter(batch(0))
    changed = changed_tensors(before, module_tensors(adapter))
    assert changed == {"model.0.weight", "extra.modulator.gamma", "extra.modulator.beta",
                       "local.0.n_updates"}


@pytest.mark.parametrize("method", METHODS)
def test_caller_model_never_touched(method):
    net = small_net()
    before = copy.deepcopy(net.state_dict())
    adapter = METHODS[method](net, lr=1e-2)
    adapter(batch(0))
    assert state_equal(net.state_dict(), before)
    assert all(not p.requires_grad or p.grad is None for p in net.parameters())


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("method", METHODS)
def test_adapts_under_callers_no_grad(method, context):
    adapter = METHODS[method](small_net(), lr=1e-2)
    before = copy.deepcopy(module_tensors(adapter))
    with context():
        adapter(batch(0))
    assert changed_tensors(before, module_tensors(adapter))


def test_entropy_non_negative_and_decreases_with_tent():
    logits = torch.randn(32, 5, dtype=torch.float64) * 3
    assert (tta.softmax_entropy(logits) >= 0).all()
    # uniform logits have entropy log(C) (definition)
    assert torch.allclose(tta.softmax_entropy(torch.zeros(2, 5)), torch.full((2,), np.log(5.0)))
    adapter = tta.Tent(small_net(), lr=1e-3)
    x = batch(0)
    first = tta.softmax_entropy(adapter(x)).mean()
    for _ in range(10):
        last = tta.softmax_entropy(adapter(x)).mean()
    assert last < first


@pytest.mark.parametrize("method", METHODS)
def test_predict_before_update_returns_pre_step_outputs(method):
    adapter = METHODS[method](small_net(), predict_after_update=False, lr=1e-2,
                              **({"hebb_first": False} if method == "nhl" else {}))
    adapter(batch(0))
    x = batch(1)
    with torch.no_grad():
        expected = adapter.predict(x)   # the current (pre-step) model
    out = adapter(x)
    assert torch.equal(out, expected)
    with torch.no_grad():
        assert not torch.equal(adapter.predict(x), expected)   # and it did update


@pytest.mark.parametrize("method", METHODS)
def test_predict_after_update_returns_post_step_outputs(method):
    adapter = METHODS[method](small_net(), predict_after_update=True, lr=1e-2)
    x = batch(1)
    with torch.no_grad():
        before = adapter.predict(x)
    out = adapter(x)
    with torch.no_grad():
        after = adapter.predict(x)
    assert torch.equal(out, after) and not torch.equal(out, before)


def test_nhl_default_predicts_after_update():
    assert tta.NHL(small_net()).predict_after_update
    assert not tta.Tent(small_net()).predict_after_update


def test_batch_statistics_are_used_in_eval_mode():
    x, other = batch(0), batch(1)
    mixed = torch.cat([x[:1], other[1:]])
    batch_stats = tta.Adapter(small_net(), loss=None, bn_stats="batch")
    source_stats = tta.Adapter(small_net(), loss=None, bn_stats="source")
    # batch: sample 0's output changes when its batch-mates change; source: it cannot
    assert not torch.allclose(batch_stats(x)[0], batch_stats(mixed)[0])
    torch.testing.assert_close(source_stats(x)[0], source_stats(mixed)[0], rtol=1e-12, atol=0)
    bn = tta.BNAdapt(small_net())
    assert not torch.allclose(bn(x)[0], bn(mixed)[0])
    assert all(m.running_mean is None for _, m in tta.batchnorm_layers(bn.model))


def test_source_equals_the_model():
    net = small_net()
    x = batch(0)
    with torch.no_grad():
        expected = net.eval()(x)
    assert torch.equal(tta.Source(net)(x), expected)
    assert torch.equal(tta.Adapter.disabled(net)(x), expected)


def test_bn_adapt_equals_train_mode_forward_without_stats():
    net = small_net()
    reference = copy.deepcopy(net)
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    x = batch(0)
    with torch.no_grad():
        assert torch.equal(tta.BNAdapt(net)(x), reference(x))


# --------------------------------------------------------------------- steps & options
def test_steps_zero_rejected():
    with pytest.raises(ValueError, match="steps"):
        tta.Tent(small_net(), steps=0)
    with pytest.raises(TypeError, match="steps"):
        tta.NHL(small_net(), steps=1.5)


def test_steps_repeat_the_update():
    one = tta.Tent(small_net(), steps=1, lr=1e-2)
    two = tta.Tent(small_net(), steps=2, lr=1e-2)
    x = batch(0)
    one(x)
    one(x)
    two(x)
    assert state_equal(module_tensors(one), module_tensors(two))


def test_reset_every():
    adapter = tta.Tent(small_net(), reset_every=2, lr=1e-2)
    initial = copy.deepcopy(adapter.state_dict())
    adapter(batch(0))
    assert not state_equal(adapter.state_dict(), initial)
    adapter(batch(1))
    assert state_equal(adapter.state_dict(), initial)


def test_default_optimizer_is_tent_adam():
    opt = tta.Tent(small_net()).optimizer
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 0.0)
    custom = tta.NHL(small_net(), optimizer_factory=lambda p: torch.optim.SGD(p, lr=0.5))
    assert isinstance(custom.optimizer, torch.optim.SGD)


@pytest.mark.parametrize("method", METHODS)
def test_state_dict_round_trip(method):
    a = METHODS[method](small_net(), lr=1e-2)
    for seed in range(2):
        a(batch(seed))
    b = METHODS[method](small_net(), lr=1e-2)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert torch.equal(a(batch(5)), b(batch(5)))
    assert state_equal(a.state_dict(), b.state_dict())
    with pytest.raises(RuntimeError, match="Missing key"):
        b.load_state_dict({"model.0.weight": a.model[0].weight})


def test_batch_size_one_needs_a_window():
    adapter = tta.Tent(small_net())
    with pytest.raises(ValueError, match="single_sample_window"):
        adapter(batch(0, n=1))
    windowed = tta.Tent(small_net(), single_sample_window=4, lr=1e-2)
    x = batch(0, n=6)
    outs = [windowed(x[:2])] + [windowed(x[i:i + 1]) for i in range(2, 6)]
    assert [o.shape for o in outs] == [(2, 4)] + [(1, 4)] * 4
    assert windowed.state_dict()["_extra_state"]["window"].shape[0] == 4   # bounded FIFO
    # "source" statistics never need a batch
    assert tta.Source(small_net())(batch(0, n=1)).shape == (1, 4)
    with pytest.raises(ValueError, match="single_sample_window"):
        tta.Tent(small_net(), single_sample_window=1)


def test_window_adapts_on_buffer_plus_new_sample():
    """With window N, a call equals a plain adapter's call on cat(last N, new) (last rows)."""
    windowed = tta.Tent(small_net(), single_sample_window=3, lr=1e-2)
    plain = tta.Tent(small_net(), lr=1e-2)
    x = batch(0, n=5)
    windowed(x[:3])
    plain(x[:3])
    assert torch.equal(windowed(x[3:4]), plain(x[0:4])[-1:])


# ------------------------------------------------------------------------ bad input
def test_methods_need_their_layers():
    no_bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 3))
    no_conv = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="BatchNorm"):
        tta.Tent(no_bn)
    with pytest.raises(ValueError, match="BatchNorm"):
        tta.BNAdapt(no_bn)
    with pytest.raises(ValueError, match="Conv2d"):
        tta.NHL(no_conv)
    with pytest.raises(ValueError, match="renorm"):
        tta.NHL(no_bn, norm_mode="renorm")
    with pytest.raises(TypeError, match="Module"):
        tta.Tent("not a model")
    with pytest.raises(ValueError, match="norm_mode"):
        tta.NHL(small_net(), norm_mode="sphere")
    with pytest.raises(ValueError, match="bn_stats"):
        tta.Tent(small_net(), bn_stats="ema")
    groups = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(144, 3))
    with pytest.raises(ValueError, match="groups"):
        tta.NHL(groups)


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_input_skips_update_and_warns_once(method):
    adapter = METHODS[method](small_net(), lr=1e-2)
    before = copy.deepcopy(adapter.state_dict())
    bad = batch(0)
    bad[3, 0, 2, 2] = float("nan")
    with pytest.warns(RuntimeWarning, match="non-finite input"):
        adapter(bad)
    assert state_equal(module_tensors(adapter), without_extra(before))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a second bad batch does not warn again
        adapter(bad)
    assert adapter.skipped["non-finite input"] == 2
    adapter(batch(1))   # and it still adapts afterwards
    assert not state_equal(module_tensors(adapter), without_extra(before))


def test_non_finite_loss_rolls_back_the_hebbian_step():
    adapter = tta.NHL(small_net(), lr=1e-2)
    adapter.loss = lambda logits: logits.sum() * float("nan")
    before = copy.deepcopy(module_tensors(adapter))
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        adapter(batch(0))
    assert state_equal(module_tensors(adapter), before)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_input_shapes(method):
    adapter = METHODS[method](small_net(), lr=1e-2)
    before = copy.deepcopy(adapter.state_dict())
    with pytest.raises(ValueError, match="shape"):
        adapter(batch(0, channels=3))
    with pytest.raises(ValueError, match="batch"):
        adapter(torch.zeros(5))
    with pytest.raises(TypeError, match="Tensor"):
        adapter(np.zeros((4, 1, 8, 8)))
    with pytest.raises(TypeError, match="floating"):
        adapter(torch.zeros(4, 1, 8, 8, dtype=torch.long))
    assert state_equal(adapter.state_dict(), before)   # never a corrupted model


def test_wrong_spatial_size_after_hebbian_step_rolls_back():
    """The Hebbian step runs before the failing layer: it must be undone."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * 64, 3)).double()
    adapter = tta.NHL(net)
    before = copy.deepcopy(adapter.state_dict())
    with pytest.raises(ValueError, match="shape"):
        adapter(torch.rand(4, 1, 6, 6, dtype=torch.float64))
    assert state_equal(adapter.state_dict(), before)


# ----------------------------------------------------------------------------- NHL
def conv_case(seed, *, stride=1, padding=0, padding_mode="zeros"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 2, 7, 6))
    w = rng.normal(size=(5, 2, 3, 3)) * 0.5
    return x, w, {"stride": (stride, stride), "padding": (padding, padding),
                  "dilation": (1, 1), "padding_mode": padding_mode}


@pytest.mark.parametrize("anti", [False, True])
@pytest.mark.parametrize("geometry", [dict(), dict(stride=2, padding=1),
                                      dict(padding=1, padding_mode="reflect")])
def test_torch_path_equals_numba_kernel_float64(anti, geometry):
    x, w, geo = conv_case(3, **geometry)
    params = SoftHebbParams(temperature=0.7, anti_hebbian=anti)
    kernel = soft_hebb_conv_dw(x, w, params, stride=geo["stride"], padding=geo["padding"],
                               padding_mode=geo["padding_mode"])
    torch_dw = soft_hebb_conv_dw_torch(torch.from_numpy(x), torch.from_numpy(w), 0.7,
                                       anti_hebbian=anti, **geo)
    assert torch_dw.dtype == torch.float64
    # same formula and order of rows; BLAS may sum in another order: float64 round-off
    np.testing.assert_allclose(torch_dw.numpy(), kernel, rtol=1e-12, atol=1e-12)
    numba_dw = tta.hebbian_conv_dw(torch.from_numpy(x), torch.from_numpy(w), 0.7,
                                   anti_hebbian=anti, geometry=geo, backend="numba")
    np.testing.assert_array_equal(numba_dw.numpy(), kernel)


@pytest.mark.parametrize("anti", [False, True])
@pytest.mark.parametrize("stride,padding,dilation,mode", [(1, 0, 1, "zeros"),
                                                          (2, 1, 2, "zeros"),
                                                          (1, 1, 1, "reflect")])
def test_torch_path_equals_naive_transcription(anti, stride, padding, dilation, mode):
    """Independent of the kernel: direct indexing of the padded input (tests/naive.py)."""
    from .naive import naive_conv_soft_hebb_dw

    x, w, _ = conv_case(5)
    expected = naive_conv_soft_hebb_dw(x, w, 0.8, anti, stride, padding, dilation, mode)
    got = soft_hebb_conv_dw_torch(torch.from_numpy(x), torch.from_numpy(w), 0.8,
                                  anti_hebbian=anti, stride=(stride, stride),
                                  padding=(padding, padding), dilation=(dilation, dilation),
                                  padding_mode=mode)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_hebbian_update_equals_kernel(backend):
    """'free' mode, sum reduction: w_new − w = η · soft_hebb_conv_dw(x, w)."""
    net = small_net()
    eta = 0.01
    adapter = tta.NHL(net, eta=eta, norm_mode="free", reduction="sum", modulator=None,
                      backend=backend, bn_stats="source")
    x = batch(0)
    w = net[0].weight.detach().numpy().copy()
    adapter(x)
    expected = w + eta * soft_hebb_conv_dw(x.numpy(), w, SoftHebbParams(1.0, False), padding=1)
    np.testing.assert_allclose(adapter.model[0].weight.detach().numpy(), expected,
                               rtol=1e-12, atol=1e-14)


def test_hebbian_mean_reduction_divides_by_rows():
    conv = small_net()[0]
    x = batch(0)
    mean = tta.HebbianConv1(conv, reduction="mean").delta(x, conv.weight.detach())
    total = tta.HebbianConv1(conv, reduction="sum").delta(x, conv.weight.detach())
    torch.testing.assert_close(mean, total / (16 * 64), rtol=1e-14, atol=0)  # B·H·W rows


def test_hebb_after_gradient_step_uses_the_captured_input():
    net = small_net()
    adapter = tta.NHL(net, hebb_first=False, eta=0.05, norm_mode="free", lr=1e-2)
    x = batch(0)
    expected = tta.HebbianConv1(copy.deepcopy(net)[0], eta=0.05, norm_mode="free").new_weight(x)
    adapter(x)
    torch.testing.assert_close(adapter.model[0].weight.detach(), expected, rtol=1e-12, atol=0)


def filter_norms(w: torch.Tensor) -> torch.Tensor:
    return w.detach().flatten(1).norm(dim=1)


def test_norm_mode_direction_keeps_filter_norms():
    net = small_net()
    with torch.no_grad():
        net[0].weight.mul_(3.0)   # pretrained norms far from 1
    adapter = tta.NHL(net, eta=0.5, norm_mode="direction")
    before = adapter.model[0].weight.detach().clone()
    for seed in range(3):
        adapter(batch(seed))
    after = adapter.model[0].weight.detach()
    assert not torch.equal(before, after)
    torch.testing.assert_close(filter_norms(after), filter_norms(before), rtol=1e-13, atol=0)


def test_norm_mode_free_moves_norms_toward_one():
    net = small_net()
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    adapter = tta.NHL(net, eta=0.2, norm_mode="free", modulator=None)
    start = (filter_norms(adapter.model[0].weight) - 1).abs()
    # w·Δw = E[y u](1 − ‖w‖²): the norm moves toward 1 only where E[y u] > 0, which holds for
    # zero-mean symmetric input (y = softmax(u) grows with u); for non-negative pixels a filter
    # with negative weights has u < 0 and is pushed *away* from 1 (why "direction" is default).
    for seed in range(20):
        adapter(torch.randn(16, 1, 8, 8, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(seed)))
    end = (filter_norms(adapter.model[0].weight) - 1).abs()
    assert (end < start).all()


def test_norm_mode_renorm_needs_bn_and_absorbs_scale():
    adapter = tta.NHL(small_net(), eta=0.5, norm_mode="renorm")
    adapter(batch(0))
    assert adapter.local[0].norm_mode == "renorm"
    with pytest.raises(ValueError, match="renorm"):
        tta.NHL(small_net(), norm_mode="renorm", bn_stats="source")


def test_zero_eta_leaves_conv1_bit_identical():
    adapter = tta.NHL(small_net(), eta=0.0)
    before = adapter.model[0].weight.detach().clone()
    for seed in range(3):
        adapter(batch(seed))
    assert torch.equal(adapter.model[0].weight, before)


def test_max_steps_stops_hebbian_updates_until_reset():
    adapter = tta.NHL(small_net(), eta=0.5, max_steps=1, modulator=None)
    adapter(batch(0))
    after_one = adapter.model[0].weight.detach().clone()
    adapter(batch(1))
    assert torch.equal(adapter.model[0].weight, after_one)
    adapter.reset()
    adapter(batch(1))
    assert not torch.equal(adapter.model[0].weight, after_one)


def test_max_normalise_bounds_the_step():
    conv = small_net()[0]
    dw = tta.HebbianConv1(conv, max_normalise=True).delta(batch(0), conv.weight.detach())
    assert dw.abs().max() == pytest.approx(1.0, abs=1e-12)


def test_modulator_sits_after_conv1_batchnorm_and_starts_as_identity():
    net = small_net()
    adapter = tta.NHL(net, eta=0.0)
    mod = adapter.extra["modulator"]
    assert isinstance(mod, tta.ChannelAffine) and mod.gamma.shape == (6,)
    x = batch(0)
    with torch.no_grad():
        assert torch.equal(adapter.predict(x), tta.BNAdapt(net).model(x))   # identity at start
        mod.beta.fill_(1.0)
        shifted = adapter.predict(x)
    assert not torch.equal(shifted, tta.BNAdapt(net).model(x))


def test_hebbian_module_rejects_bad_options():
    conv = nn.Conv2d(1, 2, 3)
    with pytest.raises(ValueError, match="eta"):
        tta.HebbianConv1(conv, eta=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        tta.HebbianConv1(conv, temperature=0.0)
    with pytest.raises(ValueError, match="backend"):
        tta.HebbianConv1(conv, backend="cuda")
    with pytest.raises(TypeError, match="Conv2d"):
        tta.HebbianConv1(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="padding_mode"):
        tta.HebbianConv1(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"))


def test_float32_model_works_with_numba_backend():
    adapter = tta.NHL(small_net(dtype=torch.float32))
    out = adapter(batch(0, dtype=torch.float32))
    assert out.dtype == torch.float32 and adapter.model[0].weight.dtype == torch.float32
    assert adapter.local[0].n_updates == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_torch_path_equals_cpu_numba_path():
    cpu = tta.NHL(small_net(), lr=1e-2, modulator=None)
    gpu = tta.NHL(small_net().cuda(), lr=1e-2, modulator=None)
    for seed in range(3):
        cpu(batch(seed))
        gpu(batch(seed).cuda())
    torch.testing.assert_close(gpu.model[0].weight.cpu(), cpu.model[0].weight,
                               rtol=1e-10, atol=1e-12)


# ------------------------------------------- arguments an adapter fixes (user test)
@pytest.mark.parametrize("make, name, match", [
    (tta.BNAdapt, "bn_stats", "always normalises with the statistics of each test batch"),
    (tta.BNAdapt, "loss", "trains nothing"),
    (tta.BNAdapt, "params_selector", "trains nothing"),
    (tta.Source, "bn_stats", "source statistics"),
    (tta.Source, "loss", "trains nothing"),
    (tta.Tent, "params_selector", "BatchNorm affine"),
    (tta.EATA, "params_selector", "BatchNorm affine"),
    (tta.CoTTA, "params_selector", "every weight and bias"),
    (tta.NHL, "params_selector", "Hebbian"),
    (tta.NHL, "loss", "entropy"),
    (tta.NHL, "local_updates", "Hebbian"),
    (tta.NHL, "extra_modules", "modulator"),
])
def test_an_argument_the_adapter_fixes_is_refused_by_name(make, name, match):
    # Before: "TypeError: Adapter.__init__() got multiple values for keyword argument
    # 'bn_stats'" (BNAdapt(model, bn_stats="source")), naming neither the adapter nor why.
    value = {"bn_stats": "source", "loss": "entropy", "params_selector": tta.no_params,
             "local_updates": (), "extra_modules": {}}[name]
    with pytest.raises(TypeError, match=f"{make.__name__} does not take {name}: .*{match}"):
        make(small_net(), **{name: value})


@pytest.mark.parametrize("call, name", [
    (lambda: tta.CoTTA(small_net(), n_augment=True), "n_augment"),
    (lambda: tta.CoTTA(small_net(), augment_chunk=True), "augment_chunk"),
    (lambda: tta.NHL(small_net(), max_steps=True), "max_steps"),
    (lambda: tta.cotta_threshold(small_net(), batch(0), batch_size=True), "batch_size"),
    (lambda: tta.per_copy_batch_norm(small_net(), True).__enter__(), "copies"),
])
def test_true_is_a_type_error_as_a_count(call, name):
    # These were ValueErrors; the library's counts refuse True with a TypeError
    # (bioplastic._validate.count; Adapter's steps, reset_every).
    with pytest.raises(TypeError, match=f"{name} must be an? (positive |non-negative )?integer"):
        call()
