"""Bad input to the torch front ends, found in a user test: each case failed on the code before
the fix (torch's own RuntimeError naming no argument, a silently accepted value, or a value the
kernel refuses that the torch module took), and now raises a TypeError or ValueError naming
the argument (docs/bad_input.md)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import warnings  # noqa: E402

import bioplastic as bp  # noqa: E402
from bioplastic.nn import (  # noqa: E402
    LIF,
    PCNN,
    STCLIF,
    HebbianConv2d,
    HebbianLinear,
    LIFConvCell,
    PCNNConv2d,
    SpikingPredictor,
    STCDense,
    TimeBatchNorm,
)
from bioplastic.nn.functional import lif_prepare  # noqa: E402

torch.set_num_threads(1)


# --------------------------------------------------------- input shapes named, not torch's
def test_pcnn_conv_input_with_the_wrong_channel_count_names_x_and_the_shape():
    # Before: RuntimeError "Given groups=1, weight of size [4, 2, 3, 3], expected
    # input[3, 3, 8, 8] to have 2 channels" from inside conv2d.
    layer = PCNNConv2d(2, 4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 2, H, W\), got "
                                         r"\(3, 1, 3, 8, 8\)"):
        layer(torch.rand(3, 1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 2, H, W\)"):
        layer(torch.rand(1, 2, 8, 8))                      # one step, not a sequence
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer(np.zeros((3, 1, 2, 8, 8), dtype=np.float32))
    assert layer(torch.rand(3, 1, 2, 8, 8))[0].shape == (3, 1, 4, 8, 8)


@pytest.mark.parametrize("make, shape", [
    (lambda: PCNN(2), (2, 1, 3, 4, 4)),
    (lambda: LIFConvCell(2, 16, 3), (2, 1, 3, 4, 4)),
    (lambda: STCLIF(2, 16, 3), (2, 1, 3, 4, 4)),
])
def test_spiking_conv_modules_name_x_and_the_step_shape(make, shape):
    # The sibling modules share one check (before: three messages, one naming x_t for x).
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2, H, W\) per step, got "
                                         r"\(1, 3, 4, 4\)"):
        make()(torch.rand(shape))


def test_hebbian_linear_forward_checks_x_like_plasticity_step():
    # Before: RuntimeError "mat1 and mat2 shapes cannot be multiplied (2x7 and 8x4)" from
    # forward, while plasticity_step named x and the shape.
    layer = HebbianLinear(8, 4)
    for call in (layer, layer.plasticity_step, layer.delta):
        with pytest.raises(ValueError, match=r"x must have shape \(batch >= 1, 8\), got "
                                             r"\(2, 7\)"):
            call(torch.rand(2, 7))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer([[0.0] * 8])
    assert layer(torch.rand(2, 8)).shape == (2, 4)


def test_hebbian_conv_forward_checks_x():
    # forward already shared plasticity_step's check (the gap was only in HebbianLinear);
    # a non-tensor was an AttributeError.
    layer = HebbianConv2d(2, 4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(batch >= 1, 2, H, W\)"):
        layer(torch.rand(1, 3, 6, 6))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer(np.zeros((1, 2, 6, 6), dtype=np.float32))


# --------------------------------------------------------- sizes checked before torch
@pytest.mark.parametrize("kwargs, name", [
    (dict(in_channels=0), "in_channels"),            # was accepted
    (dict(out_channels=0), "out_channels"),          # was refused after a torch UserWarning
    (dict(stride=0), "stride"),
])
def test_pcnn_conv_sizes_are_checked_before_torch_warns(kwargs, name):
    args = dict(in_channels=2, out_channels=4, kernel_size=3) | kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # no torch warning first
        with pytest.raises(ValueError, match=f"{name} must be a positive integer.*, got 0"):
            PCNNConv2d(**args)


# --------------------------------------------------------- True is not a count
@pytest.mark.parametrize("make, name", [
    (lambda: PCNNConv2d(2, 4, 3, norm="rftd", time_steps=True), "time_steps"),  # was 1
    (lambda: PCNNConv2d(True, 4, 3), "in_channels"),
    (lambda: PCNNConv2d(2, True, 3), "out_channels"),
    (lambda: PCNNConv2d(2, 4, 3, stride=True), "stride"),
    (lambda: PCNNConv2d(2, 4, True), "kernel_size"),
    (lambda: PCNN(True), "channels"),
    (lambda: PCNN(2, kernel_size=True), "kernel_size"),
    (lambda: TimeBatchNorm(2, True, "bn_per_timestep"), "time_steps"),
    (lambda: LIF(n_recurrent=True), "n_recurrent"),
    (lambda: STCLIF(True, 16, 3), "in_channels"),                                # was 1
    (lambda: STCLIF(1, 16, True), "kernel_size"),                                # was 1
    (lambda: LIFConvCell(1, 16, 3, groups=True), "groups"),                      # was 1
    (lambda: STCDense(True), "n"),                                               # was 1
    (lambda: SpikingPredictor(1, (16,), groups=4, patch=True), "patch"),         # was 1
    (lambda: SpikingPredictor(True, (16,), groups=4), "channels"),               # was 1
    (lambda: HebbianLinear(True, 4), "in_features"),                             # was 1
    (lambda: HebbianConv2d(2, 4, True), "kernel_size"),                          # was 1
    (lambda: HebbianConv2d(2, 4, 3, padding=(True, 0)), "padding"),              # was 1
    (lambda: HebbianConv2d(2, 4, 3, stride=True), "stride"),                     # was 1
])
def test_true_is_refused_as_a_count(make, name):
    with pytest.raises(TypeError, match=f"{name} must be an? (positive |non-negative )?integer"):
        make()


def test_true_is_refused_as_the_predictors_n_in():
    model = SpikingPredictor(1, (16,), kernel_size=3, groups=4, patch=2)
    with pytest.raises(TypeError, match="n_in must be an integer"):
        model(torch.rand(4, 1, 1, 8, 8), True)                                   # was 1


def test_a_float_stc_dense_size_is_refused():
    with pytest.raises(TypeError, match="n must be a positive integer"):
        STCDense(2.5)                                                             # was 2


# ------------------------------------------------ LIF parameters the kernel refuses
@pytest.mark.parametrize("fields", [
    dict(v_reset_mv=-40.0),                                   # above the default v_th -50
    dict(v_reset_mv=np.array([-65.0, -40.0])),                # one neuron is enough
    dict(v_th_mv=np.array([[-50.0], [-70.0]])),               # broadcast against the reset
])
def test_torch_lif_refuses_a_reset_above_threshold_like_the_kernel(fields):
    params = bp.LIFParams(**fields)
    if np.ndim(params.v_th_mv) < 2:                           # the kernel takes (n,) only
        with pytest.raises(ValueError, match="v_reset_mv must be <= v_th_mv"):
            bp.run_lif(np.zeros((3, 2)), params)
    for make in (lambda: LIF(**fields), lambda: LIF(params), lambda: lif_prepare(params)):
        with pytest.raises(ValueError, match="v_reset_mv must be <= v_th_mv"):
            make()
    LIF(v_reset_mv=-50.0)                                     # at threshold: allowed


def test_torch_lif_parameters_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match="v_reset_mv and v_th_mv must broadcast"):
        LIF(v_reset_mv=np.full(3, -65.0), v_th_mv=np.full(2, -50.0))


def test_torch_lif_refuses_a_negative_threshold_increment_like_the_kernel():
    # docs/bad_input.md: theta_plus_mv < 0 is refused; the torch module took it.
    with pytest.raises(ValueError, match="theta_plus_mv"):
        LIF(theta_plus_mv=-0.5)


@pytest.mark.parametrize("name", ["v_rest_mv", "v_reset_mv", "v_th_mv", "theta_plus_mv"])
def test_torch_lif_refuses_true_as_a_voltage_like_the_kernel(name):
    # docs/bad_input.md: LIFParams(v_th_mv=True) is a TypeError naming the field; the torch
    # module took True as 1 mV.
    with pytest.raises(TypeError, match=name):
        LIF(**{name: True})
