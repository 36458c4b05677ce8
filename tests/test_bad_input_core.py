"""Bad input found in a user tour of the core kernels and front ends (2026-12-04).

Each case was silently wrong or raised a NumPy error naming nothing before: a drive given in
mV as a Brian2 quantity was read as volts, ``SoftHebb(anti_hebbian="no")`` learned
anti-Hebbian, a wrong-shape ``theta0_mv`` failed in a broadcast, a loaded homogeneous
population fell back to the per-neuron kernel path.
"""

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.neurons import run_wta
from bioplastic.neurons.lif import is_homogeneous, lif_prepare
from bioplastic.rules import UpdateParams, apply_update
from bioplastic.rules.inhibition import triangle
from bioplastic.sklearn import SoftHebb


def test_run_lif_converts_a_drive_given_in_millivolts():
    brian2 = pytest.importorskip("brian2")
    drive = np.random.default_rng(0).uniform(16, 20, (300, 5))
    plain = bp.run_lif(drive)
    # before: np.asarray stripped the quantity to volts (0.016-0.02), read as mV: no spike
    converted = bp.run_lif(drive * brian2.mV)
    assert plain.spikes.sum() > 0
    assert np.array_equal(plain.spikes, converted.spikes)
    with pytest.raises(TypeError, match="^inputs must be a voltage"):
        bp.run_lif(drive * brian2.ms)


@pytest.mark.parametrize("flag", ["anti_hebbian", "max_normalise", "shuffle"])
def test_softhebb_refuses_a_flag_that_is_not_a_bool(flag):
    data = np.random.default_rng(0).normal(size=(20, 6))
    # before: bool("no") is True, so the option was silently switched on
    with pytest.raises(TypeError, match=f"^{flag} must be a bool, got 'no'"):
        SoftHebb(3, **{flag: "no"}).fit(data)


@pytest.mark.parametrize("params, error, match", [
    ({"temperature": "1"}, TypeError, "^temperature must be a real scalar"),   # ufunc error
    ({"temperature": None}, TypeError, "^temperature must be a real scalar"),
    ({"learning_rate": [0.1] * 6}, TypeError, "^learning_rate must be a real scalar"),
    ({"power_lr": -1.0}, ValueError, "^power_lr must be finite and >= 0"),
])
def test_softhebb_names_a_bad_number(params, error, match):
    data = np.random.default_rng(0).normal(size=(20, 6))
    with pytest.raises(error, match=match):
        SoftHebb(3, **params).fit(data)


def test_apply_update_names_an_empty_weight_array():
    # before: NumPy's "zero-size array to reduction operation maximum which has no identity"
    with pytest.raises(ValueError, match=r"^w must hold at least one weight, got shape \(0, 3\)"):
        apply_update(np.zeros((0, 3)), np.zeros((0, 3)), UpdateParams(0.1, max_normalise=True))


def test_run_wta_names_a_theta0_of_the_wrong_shape():
    spikes = np.zeros((5, 4), bool)
    w0 = np.full((2, 4), 0.1)
    with pytest.raises(ValueError, match=r"^theta0_mv must have shape \(2,\), got \(3,\)"):
        run_wta(spikes, w0=w0, theta0_mv=np.zeros(3))
    trace = run_wta(spikes, w0=w0, theta0_mv=np.array([20.0, 21.0]), record=("theta",))
    assert trace["theta"].shape == (5, 2)


@pytest.mark.parametrize("axis", [5, -3, 1.0, True])
def test_triangle_names_a_bad_axis(axis):
    with pytest.raises(ValueError, match=r"^axis must be an int in \[-2, 2\)"):
        triangle(np.ones((3, 4)), axis=axis)       # NumPy's AxisError before


def test_a_saved_homogeneous_population_loads_homogeneous(tmp_path):
    kernel_params = lif_prepare(bp.LIFParams(), 7)
    assert is_homogeneous(kernel_params)
    bp.save(tmp_path / "m.npz", {"kp": kernel_params, "w": np.ones(3)})
    loaded = bp.load(tmp_path / "m.npz")
    # before: the stride-0 views came back as per-neuron arrays (the slower kernel path)
    assert is_homogeneous(loaded["kp"])
    for saved, back in zip(kernel_params, loaded["kp"], strict=True):
        assert back.dtype == saved.dtype and np.array_equal(back, saved)
    assert loaded["w"].flags.writeable                # ordinary arrays stay ordinary
    drive = np.random.default_rng(1).uniform(10, 20, (50, 7))
    state = bp.lif_init(7)
    runs = [bp.simulate(bp.lif_advance, drive, state, kp, bp.no_connectivity(7)).spikes
            for kp in (kernel_params, loaded["kp"])]
    assert np.array_equal(*runs)


def test_record_units_edge_cases_are_named():
    drive = np.full((10, 4), 20.0)
    with pytest.raises(ValueError, match="^record_units selects units of the recorded fields, "
                                         "but record names none"):
        bp.run_lif(drive, record=(), record_units=[3])
    # before: [] became a float64 array and was refused as "not an integer array"
    trace = bp.run_lif(drive, record=("v",), record_units=[])
    assert trace["v"].shape == (10, 0)


def test_hebbian_plasticity_names_a_non_finite_input():
    torch = pytest.importorskip("torch")
    from bioplastic.nn import HebbianLinear

    layer = HebbianLinear(4, 3)
    x = torch.rand(5, 4, dtype=layer.weight.dtype)
    x[2, 1] = float("nan")
    before = layer.weight.detach().clone()
    # before: DivergenceError "dw contains non-finite values: the update diverged"
    with pytest.raises(ValueError, match="^x must contain only finite values"):
        layer.plasticity_step(x)
    assert torch.equal(layer.weight, before)
