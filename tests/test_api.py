"""One contract for every model: front-end shapes, argument orders, integer checks, exports."""

import inspect
from typing import NamedTuple

import numba
import numpy as np
import pytest

import bioplastic as bp
from bioplastic import _state
from bioplastic.neurons import LIFParams, PCNNParams, WTAParams
from bioplastic.reference.lif import random_network, unpack


@pytest.mark.parametrize("front_end", [bp.run_lif, bp.run_pcnn, bp.run_wta])
def test_run_front_ends_share_one_shape(front_end):
    params = list(inspect.signature(front_end).parameters.values())
    assert params[1].name == "params" and params[1].default is None
    assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]
               if p.name != "params")
    names = [p.name for p in params]
    assert "record" in names and names[-1] in ("record_units", "allow_negative")
    assert inspect.signature(front_end).parameters["record_units"].default is None


@pytest.mark.parametrize("front_end", [bp.neurons.present_blocks, bp.train_wta])
def test_wta_protocols_share_the_front_end_shape(front_end):
    # present_blocks and train_wta took (x, w0, params, stdp) positionally, unlike run_wta
    params = list(inspect.signature(front_end).parameters.values())
    assert params[1].name == "params" and params[1].default is None
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])
    assert {"w0", "stdp"} <= {p.name for p in params}


def test_old_positional_w0_is_named():
    w0 = np.full((2, 3), 0.1)
    with pytest.raises(TypeError, match="w0 as a keyword argument"):
        bp.neurons.present_blocks(np.zeros((1, 2, 3), bool), w0)
    with pytest.raises(TypeError, match="w0 as a keyword argument"):
        bp.train_wta(np.zeros((1, 3)), w0)


@pytest.mark.parametrize("prepare, kind", [
    (lambda: bp.lif_prepare(LIFParams(), 3), "LIFKernelParams"),
    (lambda: bp.pcnn_prepare(PCNNParams(), (1, 4, 4)), "PCNNKernelParams"),
    (lambda: bp.wta_prepare(WTAParams()), "WTAKernelParams"),
    (lambda: bp.neurons.stc_prepare(bp.neurons.STCParams(), 3), "STCKernelParams"),
])
def test_prepare_returns_the_models_kernel_params(prepare, kind):
    # pcnn_prepare returned a 3-tuple (kernel params, feeding kernel, linking kernel)
    assert type(prepare()) is getattr(bp.neurons, kind)


@pytest.mark.parametrize("init", [bp.lif_init, bp.pcnn_init, bp.wta_init])
def test_init_takes_size_then_params(init):
    names = list(inspect.signature(init).parameters)
    assert names[1] == "params"


@pytest.mark.parametrize("call", [
    lambda: bp.lif_prepare(LIFParams(), True),
    lambda: bp.lif_init(True),
    lambda: bp.run_pcnn(np.ones((3, 3)), PCNNParams(), n_steps=True),
    lambda: bp.poisson_spikes(np.ones(3), True),
    lambda: bp.lif_prepare(LIFParams(), 2.0),
])
def test_integer_arguments_reject_bool_and_float(call):
    with pytest.raises(TypeError, match="integer"):
        call()


def test_run_pcnn_record_units_subset_equals_full_record():
    image = np.random.default_rng(0).uniform(0, 1, (6, 5))
    full = bp.run_pcnn(image, n_steps=12, record=("e", "u"))
    units = np.array([0, 7, 29])
    part = bp.run_pcnn(image, n_steps=12, record=("e", "u"), record_units=units)
    np.testing.assert_array_equal(part.spikes, full.spikes)
    for name in ("e", "u"):
        np.testing.assert_array_equal(part[name], full[name].reshape(12, -1)[:, units])


def test_run_wta_defaults_are_the_parameter_defaults():
    w0 = np.full((2, 3), 0.2)
    spikes = np.zeros((4, 3), bool)
    default = bp.run_wta(spikes, w0=w0)
    explicit = bp.run_wta(spikes, WTAParams(), w0=w0, stdp=bp.STDPParams())
    np.testing.assert_array_equal(default["v"], explicit["v"])


def test_state_helpers_follow_the_fields():
    conn = bp.input_connectivity(np.full((2, 3), 0.2), dt_ms=0.5)
    state = bp.wta_init(2, WTAParams(), conn)
    copy = _state.copy_state(state)
    for name in state._fields:
        a, b = getattr(state, name), getattr(copy, name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a is not b
    # every floating-point field is checked, including the ones the old hand list missed
    for name in ("x_post2", "gi_inh"):
        broken = state._replace(**{name: np.full_like(getattr(state, name), np.nan)})
        assert _state.non_finite_fields(broken) == [name]
    with pytest.raises(ValueError, match="unknown state fields"):
        _state.check_record(state, ("v", "nope"))


@pytest.mark.parametrize("jitted", [False, True], ids=["python", "numba"])
def test_copy_into_copies_same_shapes_and_refuses_others(jitted):
    copy = numba.njit(lambda target, values: _state.copy_into(target, values)) if jitted \
        else _state.copy_into
    values = np.arange(12.0).reshape(3, 4)
    target = np.zeros((3, 4))
    copy(target, values)
    np.testing.assert_array_equal(target, values)
    # a strided target (the general path in numba) still receives every value, in place
    wide = np.zeros((3, 8))
    copy(wide[:, ::2], values)
    np.testing.assert_array_equal(wide[:, ::2], values)
    assert not wide[:, 1::2].any()
    # no broadcasting, same rank or not
    for wrong in (np.ones(1), np.ones((3, 1)), np.ones((4, 3))):
        with pytest.raises(ValueError, match="copy_into"):
            copy(target, wrong)


class _ShrinkingState(NamedTuple):
    v: np.ndarray
    step: int


@numba.njit
def _shrinking_advance(x, state, params):
    # a broken user model: two units on the first step, one afterwards
    units = 2 if state.step == 0 else 1
    return np.ones(units, dtype=np.bool_), _state.with_step(state, state.step + 1)


def test_simulate_refuses_spikes_that_change_shape():
    # before copy_into the (1,) spikes of step 1 were broadcast into both units of the record
    state = _ShrinkingState(v=np.zeros(2), step=0)
    with pytest.raises(ValueError, match="differ in shape"):
        bp.simulate(_shrinking_advance, np.zeros((3, 2)), state, (), check=False)


def test_records_of_units_and_of_the_step_counter():
    inputs = random_network(7, n=50, n_steps=20, p=0.1, max_delay_steps=0)
    params, drive, conn = unpack(inputs)
    state, kernel = bp.lif_init(50, params, conn, v0_mv=inputs["v0_mv"]), bp.lif_prepare(params, 50)
    full = bp.simulate(bp.lif_advance, drive, state, kernel, conn, record=("v", "step", "history"))
    units = np.array([3, 1, 3])
    some = bp.simulate(bp.lif_advance, drive, state, kernel, conn, record=("v", "theta"),
                       record_units=units)
    np.testing.assert_array_equal(some.records["v"], full.records["v"][:, units])
    np.testing.assert_array_equal(full.records["history"][:, 0], full.spikes)
    np.testing.assert_array_equal(full.records["step"], np.arange(1, 21))
    # a scalar field has one unit, index 0 (this raised a TypingError before)
    step = bp.simulate(bp.lif_advance, drive, state, kernel, conn, record="step",
                       record_units=np.array([0, 0]))
    np.testing.assert_array_equal(step.records["step"], np.repeat(np.arange(1, 21)[:, None], 2, 1))


def test_helpers_users_need_are_exported():
    for name in ("no_connectivity", "dense_weights", "input_connectivity", "poisson_spikes",
                 "connectivity_from_arrays", "with_delays", "with_weights", "change_delays",
                 "simulate_blocks", "step_once", "lif_advance", "pcnn_advance", "wta_advance"):
        assert name in bp.__all__ and hasattr(bp, name)
