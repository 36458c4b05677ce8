"""Brian2 quantities in unit-suffixed parameters are converted to the unit in the name.

Before this conversion ``LIFParams(dt_ms=0.1*ms)`` silently became 1e-4 ms (Brian2 stores SI
values) and ``v_th_mv=-50*mV`` became -0.05, so a network never fired.
"""

import numpy as np
import pytest

import bioplastic as bp
from bioplastic._validate import finite_float, positive, unitless, unitless_params

b2 = pytest.importorskip("brian2")


@pytest.mark.parametrize(("name", "quantity", "expected"), [
    ("dt_ms", 0.1 * b2.ms, 0.1),
    ("v_th_mv", -50 * b2.mV, -50.0),
    ("rate_hz", 5 * b2.Hz, 5.0),
    ("tau_s", 20 * b2.ms, 0.02),
    ("tau_m_ms", 1 * b2.second, 1000.0),
    ("beta", b2.ms / b2.ms, 1.0),            # dimensionless quantity in a unitless field
])
def test_a_quantity_becomes_the_number_in_the_named_unit(name, quantity, expected):
    assert unitless(name, quantity) == expected        # exact: rounded to the written decimal


def test_quantity_arrays_convert_elementwise():
    values = unitless("tau_m_ms", np.array([5.0, 12.5, 20.0]) * b2.ms)
    np.testing.assert_array_equal(values, [5.0, 12.5, 20.0])
    np.testing.assert_array_equal(unitless("x_mv", [1 * b2.mV, 2 * b2.mV]), [1.0, 2.0])


@pytest.mark.parametrize(("name", "quantity", "words"), [
    ("dt_ms", 0.1 * b2.mV, "dt_ms must be a time"),
    ("v_th_mv", 1 * b2.ms, "v_th_mv must be a voltage"),
    ("rates_hz", 1 * b2.ms, "rates_hz must be a frequency"),
    ("dt_ms", b2.ms / b2.ms, "dimensionless"),
    ("beta", 2 * b2.ms, "beta is dimensionless"),
])
def test_a_quantity_of_the_wrong_dimension_is_an_error_naming_the_field(name, quantity, words):
    with pytest.raises(TypeError, match=words):
        unitless(name, quantity)


def test_plain_values_pass_through_untouched():
    array = np.arange(3.0)
    assert unitless("tau_ms", array) is array
    assert unitless("tau_ms", 2.0) == 2.0
    params = bp.LIFParams()
    assert unitless_params(params) is params


def test_lif_with_brian2_units_equals_plain_numbers_bit_for_bit():
    plain = bp.LIFParams(tau_m_ms=np.array([8.0, 12.0, 20.0]), v_th_mv=-52.0, dt_ms=0.1,
                         t_ref_ms=0.3)
    units = bp.LIFParams(tau_m_ms=np.array([8.0, 12.0, 20.0]) * b2.ms, v_th_mv=-52 * b2.mV,
                         dt_ms=0.1 * b2.ms, t_ref_ms=0.3 * b2.ms)
    for a, b in zip(bp.lif_prepare(plain, 3), bp.lif_prepare(units, 3), strict=True):
        np.testing.assert_array_equal(a, b)
    drive = np.random.default_rng(0).uniform(10, 20, (300, 3))        # mV, some spikes
    ours, theirs = bp.run_lif(drive, plain), bp.run_lif(drive, units)
    assert ours.spikes.sum() > 0
    np.testing.assert_array_equal(ours.spikes, theirs.spikes)
    np.testing.assert_array_equal(ours["v"], theirs["v"])


def test_lif_wrong_dimension_names_the_field():
    with pytest.raises(TypeError, match="tau_m_ms must be a time"):
        bp.lif_prepare(bp.LIFParams(tau_m_ms=0.1 * b2.mV), 4)
    with pytest.raises(TypeError, match="dt_ms must be a time"):
        bp.run_lif(np.zeros((3, 2)), bp.LIFParams(dt_ms=0.1 * b2.mV))


def test_wta_and_stdp_accept_units():
    plain = bp.wta_prepare(bp.WTAParams(), bp.STDPParams())
    units = bp.wta_prepare(bp.WTAParams(dt_ms=0.5 * b2.ms, tau_exc_ms=100 * b2.ms,
                                        v_th_exc_mv=-52 * b2.mV),
                           bp.STDPParams(tau_pre_ms=20 * b2.ms))
    assert plain == units
    with pytest.raises(TypeError, match="tau_post_ms must be a time"):
        bp.wta_prepare(bp.WTAParams(), bp.STDPParams(tau_post_ms=20 * b2.mV))


def test_validators_convert_named_arguments():
    # the helpers every front end uses (e.g. bioplastic.nn.LIF(tau_m_ms=...), delay_ms=...)
    assert positive("tau_m_ms", 10 * b2.ms) == 10.0
    assert finite_float("v0_mv", -70 * b2.mV) == -70.0
    conn = bp.connectivity(np.ones((2, 2)), delay_ms=0.2 * b2.ms, dt_ms=0.1 * b2.ms)
    np.testing.assert_array_equal(conn.delay_steps, 2)


def test_scalar_errors_do_not_echo_the_broadcast_array():
    """A scalar broadcast to 10,000 neurons used to print all 10,000 copies."""
    with pytest.raises(ValueError) as info:
        bp.lif_prepare(bp.LIFParams(tau_m_ms=-5.0), 10_000)
    message = str(info.value)
    assert "tau_m_ms" in message and "-5.0" in message and len(message) < 200
    tau = np.full(10_000, 10.0)
    tau[[7, 99]] = -1.0
    with pytest.raises(ValueError, match=r"2 of 10000 elements .* index 7: -1.0") as info:
        bp.lif_prepare(bp.LIFParams(tau_m_ms=tau), 10_000)
    assert len(str(info.value)) < 200


def test_torch_lif_accepts_units():
    torch = pytest.importorskip("torch")
    from bioplastic.nn import LIF

    plain = LIF(tau_m_ms=10.0, v_th_mv=-52.0, dt_ms=0.1, t_ref_ms=0.5)
    units = LIF(tau_m_ms=10 * b2.ms, v_th_mv=-52 * b2.mV, dt_ms=0.1 * b2.ms,
                t_ref_ms=0.5 * b2.ms)
    for (name, a), (_, b) in zip(plain.state_dict().items(), units.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(TypeError, match="v_rest_mv must be a voltage"):
        LIF(v_rest_mv=-65 * b2.ms)


@pytest.mark.parametrize("field, value", [("v_th_mv", True), ("dt_ms", True),
                                          ("tau_m_ms", np.ones(3, dtype=bool)),
                                          ("theta_plus_mv", np.bool_(False))])
def test_a_boolean_in_a_numbers_place_is_a_type_error_naming_the_field(field, value):
    # before: True was taken as 1.0 (a flag passed where a number belongs)
    with pytest.raises(TypeError, match=field):
        bp.lif_prepare(bp.LIFParams(**{field: value}), 3)
