"""Bad input found in a user tour of the event streams and the E/I network (2026-12-04).

Each case crashed, read or wrote out of bounds, or gave a silently wrong result before: the
denoise filter wrote outside its grid on negative coordinates (heap corruption), AEDAT wrote a
polarity of 2 into the y bits, ``make_events`` wrapped and truncated values, labels and
hyperparameters went unchecked.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from bioplastic.data.events import (
    EventDataset,
    denoise,
    events_to_spikes,
    frame_slices,
    load_dvs_gesture,
    make_events,
    read_aedat31,
    time_grid_steps,
    time_jitter,
    to_frame,
    write_aedat31,
)
from bioplastic.neurons.rsnn import (
    DEFAULT_RSNN_STDP,
    RSNNParams,
    rsnn_init,
    rsnn_topology,
    run_rsnn,
)
from bioplastic.neurons.rsnn_train import (
    RDL,
    class_groups,
    decide,
    learner_init,
    present,
)
from bioplastic.rules.delay_learning import apply_delay_update, stopped_neurons
from bioplastic.sklearn import RSNNClassifier

from .test_events_io import write_tonic_layout

INT_DTYPES = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "<i1"), ("t", "<i8")])


def _events(x, y, p=None, t=None, dtype=INT_DTYPES):
    n = len(x)
    return make_events(x, y, np.ones(n, int) if p is None else p,
                       np.arange(n) if t is None else t, dtype=dtype)


# --------------------------------------------------------------------- coordinates, polarity
@pytest.mark.parametrize("field", ["x", "y", "p"])
def test_negative_coordinates_or_polarity_are_refused_without_a_sensor(field):
    # before: denoise sized its grid from the maxima and wrote memory[-300, y] out of bounds
    columns = {"x": [5, 2, 3], "y": [1, 2, 1], "p": [1, 0, 1]}
    columns[field][1] = -300 if field != "p" else -1
    events = _events(columns["x"], columns["y"], columns["p"])
    with pytest.raises(ValueError, match=rf"^events\['{field}'\] must be >= 0, got a minimum"):
        denoise(events, 1000)


def test_denoise_refuses_a_grid_no_sensor_has():
    # int16's largest coordinates make a 32,768² float64 grid, 8.6 GB
    events = _events([1, 32767], [1, 32767])
    with pytest.raises(ValueError, match="denoise sizes its grid .* 32768 x 32768"):
        denoise(events, 1000)


def test_aedat_refuses_a_polarity_it_cannot_store(tmp_path):
    # before: p = 2 was shifted into bit 1 and spilled into y's bits: read back (3, 1, False)
    with pytest.raises(ValueError, match=r"events\['p'\] must be 0 or 1 for AEDAT 3.1"):
        write_aedat31(tmp_path / "a.aedat", _events([3], [0], [2], [10]))
    write_aedat31(tmp_path / "b.aedat", _events([3], [0], [1], [10]))
    back = read_aedat31(tmp_path / "b.aedat")
    assert (int(back["x"][0]), int(back["y"][0]), bool(back["p"][0])) == (3, 0, True)


@pytest.mark.parametrize("columns, match", [
    (([40000], [1], [1], [0]), r"^x must lie in \[-32768, 32767\] for the int16 field"),
    (([65541], [1], [1], [0]), r"^x must lie in"),                   # wrapped to x = 5 before
    (([1.7], [1], [1], [0]), r"^x must hold whole numbers for the int16 field"),
    (([1], [1], [1], [np.nan]), r"^t must be finite"),               # INT64_MIN before
    (([1], [1], [2], [0]), r"^p must lie in \[0, 1\] for the bool field"),
    (([1], [1], [1], [1.5]), r"^t must hold whole numbers for the int64 field"),
])
def test_make_events_refuses_values_its_fields_would_change(columns, match):
    with pytest.raises(ValueError, match=match):
        make_events(*columns)


def test_make_events_keeps_whole_floats_and_float_times():
    events = make_events([1.0], [2], [True], [3.0])
    assert (int(events["x"][0]), int(events["t"][0])) == (1, 3)
    float_t = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<f8")])
    assert make_events([1], [2], [0], [2.5], dtype=float_t)["t"][0] == 2.5


# ---------------------------------------------------------------------------------- timing
def test_events_to_spikes_after_the_last_event_is_an_empty_raster():
    events = _events([5, 1], [1, 1], [1, 0], [0, 10])
    spikes = events_to_spikes(events, (8, 8, 2), t_start_us=1e6)     # "negative dimensions"
    assert spikes.shape == (0, 128)
    assert events_to_spikes(events, (8, 8, 2), t_start_us=1e6, n_steps=3).sum() == 0


@pytest.mark.parametrize("kwargs, error, match", [
    ({"t_start_us": np.nan}, ValueError, "^t_start_us must be finite"),
    ({"t_start_us": "a"}, TypeError, "^t_start_us must be a real scalar"),
    ({"n_steps": True}, TypeError, "^n_steps must be a non-negative integer"),
    ({"n_steps": 5.0}, TypeError, "^n_steps must be a non-negative integer"),
])
def test_events_to_spikes_names_bad_grid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        events_to_spikes(_events([5, 1], [1, 1]), (8, 8, 2), **kwargs)


def test_time_grid_steps_refuses_a_zero_step():
    # before: floor(t / 0) cast to int64 gave INT64_MIN for every event
    with pytest.raises(ValueError, match="^dt_us must be > 0"):
        time_grid_steps(_events([1, 2], [1, 1]), 0)


def test_time_jitter_on_an_unsigned_time_field_never_wraps():
    unsigned = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<u8")])
    events = make_events(np.zeros(200, int), np.zeros(200, int), np.ones(200, int),
                         np.arange(200), dtype=unsigned)
    kept = time_jitter(events, 100.0, seed=0)
    # before: negative times wrapped to ~1.8e19 and clip_negative could not see them
    assert kept["t"].max() < 1000 and kept.size < events.size
    signed = time_jitter(events.astype(INT_DTYPES.descr[:3] + [("t", "<i8")]), 100.0, seed=0)
    assert np.array_equal(kept["t"].astype(np.int64), signed["t"])
    with pytest.raises(ValueError, match=r"events\['t'\] is unsigned .* clip_negative=True"):
        time_jitter(events, 100.0, seed=0, clip_negative=False)


# ------------------------------------------------------------------------- frame slicing
def test_frame_slices_checks_its_events_and_takes_an_empty_stream():
    empty = _events([], [])
    for kwargs, n in (({"time_window": 10}, 1), ({"n_time_bins": 3}, 3)):
        starts, ends = frame_slices(empty, **kwargs)       # IndexError before
        assert starts.shape == ends.shape == (n,) == to_frame(empty, (4, 4, 2), **kwargs).shape[:1]
    with pytest.raises(TypeError, match="^events must be a structured numpy array"):
        frame_slices(np.arange(5), time_window=10)
    unsorted = _events([1, 2], [1, 1], t=[5, 1])
    with pytest.raises(ValueError, match=r"must be non-decreasing"):
        frame_slices(unsorted, time_window=10)


@pytest.mark.parametrize("value, error", [("0", TypeError), (np.nan, ValueError)])
def test_to_frame_names_a_bad_start_time(value, error):
    with pytest.raises(error, match="^start_time must be"):
        to_frame(_events([1, 2], [1, 1]), (4, 4, 2), time_window=10, start_time=value)


# ------------------------------------------------------------------------------- data sets
@pytest.mark.parametrize("name", ["11.npy", "readme.npy"])
def test_tonic_layout_refuses_a_file_that_is_not_a_class(tmp_path, name):
    write_tonic_layout(tmp_path, trials=("user01_natural",), labels=range(3))
    np.save(tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_natural" / name,
            np.zeros((1, 4), np.int64))
    # before: 11.npy became target 11 (there are 11 classes, 0..10), readme.npy a bare
    # "invalid literal for int()"
    with pytest.raises(ValueError, match=re.escape(name) + ".* class 0..10"):
        load_dvs_gesture(tmp_path, layout="tonic")


@pytest.mark.parametrize("targets, error, match", [
    ([0, -1], ValueError, "class indices >= 0"),       # repr() crashed in bincount before
    ([0, 0.7], ValueError, "whole numbers"),           # truncated to class 0 before
    (["a", "b"], TypeError, "integer class indices"),
])
def test_event_dataset_refuses_targets_that_are_not_classes(targets, error, match):
    events = [_events([1], [1]), _events([2], [2])]
    with pytest.raises(error, match=match):
        EventDataset.from_arrays(events, targets, (4, 4, 2))


def test_event_dataset_refuses_a_float_index():
    data = EventDataset.from_arrays([_events([1], [1]), _events([2], [2])], [0, 1], (4, 4, 2))
    assert data[np.int64(1)][1] == 1
    with pytest.raises(TypeError, match="^index must be an int or a slice"):
        data[1.5]                                      # silently sample 1 before


# --------------------------------------------------------------------------- E/I network
def _network(seed=0):
    rng = np.random.default_rng(seed)
    n_in, n_exc = 6, 6
    synapses = {"input_exc": (rng.integers(0, n_in, 30), rng.integers(0, n_exc, 30),
                              rng.uniform(0.5, 4.0, 30), 1.0)}
    topo, w, d = rsnn_topology(n_in, n_exc, 0, synapses)
    params = RSNNParams(dt_ms=1.0, max_delay_ms=4.0)
    return rng, topo, params, rsnn_init(topo, params, w, d)


def test_a_network_without_inhibitory_neurons_runs():
    # before: with n_inh = 0 every LIF parameter was uniform, lif_prepare handed stride-0
    # views and the E/I kernel's check refused them ("params.lif.decay_m must be C-contiguous")
    rng, topo, params, state = _network()
    trace = run_rsnn(rng.random((30, topo.n_in)) < 0.5, state, topo, params)
    assert trace.spikes.shape == (30, 6) and trace.spikes.any()


def _present(label, *, w_max=1.0, **kwargs):
    rng, topo, params, state = _network()
    learning = RDL._replace(bounds=RDL.bounds._replace(d_max_ms=4.0, w_max=w_max))
    stdp = DEFAULT_RSNN_STDP._replace(w_max=max(w_max, 4.0))
    x = rng.random((30, topo.n_in)) < 0.3
    return present(x, label, state, topo, learner_init(topo, learning), class_groups(2, 3), 2,
                   params, stdp, learning, **kwargs)


def test_weights_the_update_would_clip_are_announced():
    # the docs' quick start drew 0.5-4 mV weights against the bounds' default w_max = 1: 82 %
    # of them were cut to 1 at the first stimulus, without a word
    with pytest.warns(RuntimeWarning, match=r"learned weights lie outside learning.bounds"):
        state = _present(1)[0]
    assert state.w.max() == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = _present(1, w_max=8.0)[0]
    assert state.w.max() > 1.0


@pytest.mark.parametrize("label, error", [(99, ValueError), (-1, ValueError),
                                          (1.0, TypeError), (True, TypeError)])
def test_present_refuses_a_label_that_is_not_a_class(label, error):
    with pytest.raises(error, match="^label must be"):
        _present(label, w_max=8.0)


def test_the_docs_quick_start_runs_without_clipping_its_weights():
    text = (Path(__file__).parents[1] / "docs" / "action_recognition.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace: dict = {}
        exec(block, namespace)
    learned = namespace["topo"].pathway < 2           # input_exc and exc_exc
    assert namespace["state"].w[learned].max() > 1.0


@pytest.mark.parametrize("args, error", [((2.5, 2), TypeError), ((2, 0), ValueError),
                                         ((True, 2), TypeError)])
def test_class_groups_takes_whole_counts(args, error):
    with pytest.raises(error, match="^(n_classes|per_class) must be"):
        class_groups(*args)


@pytest.mark.parametrize("window, match", [
    ({"start_step": -10}, "^start_step must be a non-negative integer"),
    ({"start_step": 40}, r"must hold at least one of the stimulus' 30 steps"),
    ({"start_step": 5, "stop_step": 5}, r"must hold at least one"),
])
def test_decide_refuses_a_window_outside_the_stimulus(window, match):
    spikes = np.zeros((30, 6), bool)
    spikes[-10:, 0] = True
    error = TypeError if "integer" in match else ValueError
    with pytest.raises((error, ValueError), match=match):
        decide(spikes, class_groups(2, 3), 2, **window)
    assert decide(spikes, class_groups(2, 3), 2, stop_step=100) == 0     # clipped as slicing


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_delay_ms": 0.4}, ValueError, "^max_delay_ms must be at least one step"),
    ({"dt_ms": 0}, ValueError, "^dt_ms must be > 0"),
    ({"w_input": -3}, ValueError, "^w_input must be finite and >= 0"),
    ({"p_input": 2}, ValueError, r"^p_input must lie in \[0.0, 1.0\]"),
    ({"p_recurrent": np.nan}, ValueError, "^p_recurrent must not be NaN"),
    ({"stdp": "no"}, TypeError, "^stdp must be a bool"),
    ({"n_per_class": 2.7}, TypeError, "^n_per_class must be a positive integer"),
    ({"decision_window_ms": (-10, None)}, ValueError, r"^decision_window_ms\[0\] must be"),
    ({"decision_window_ms": (10, 5)}, ValueError, "stop > start"),
    ({"decision_window_ms": (500, None)}, ValueError, "must hold at least one"),
])
def test_rsnn_classifier_names_bad_hyperparameters(kwargs, error, match):
    rng = np.random.default_rng(0)
    X = [rng.random((40, 5)) < 0.2 for _ in range(4)]
    with pytest.raises(error, match=match):
        RSNNClassifier(random_state=0, **{"max_delay_ms": 4.0, **kwargs}).fit(X, [0, 1, 0, 1])


# --------------------------------------------------------------------- update front ends
def test_delay_rule_front_ends_name_mismatched_lengths():
    d = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^post must have shape \(3,\)"):
        stopped_neurons(d, np.array([0, 1]), 2, 0.5)       # a boolean IndexError before
    with pytest.raises(ValueError, match=r"^dd_ms must be a scalar or have shape \(3,\)"):
        apply_delay_update(d, d, np.zeros(2), 0.0, np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match=r"^synapses\['input_exc'\] weight must be a scalar"):
        rsnn_topology(2, 2, 0, {"input_exc": ([0, 1], [0, 1], [1.0, 2.0, 3.0], 1.0)})
    with pytest.raises(ValueError, match=r"^synapses\['input_exc'\] must be a \(pre, post, "
                                         r"weight, delay_ms\) tuple, got tuple of 3 items"):
        rsnn_topology(2, 2, 0, {"input_exc": ([0, 1], [0, 1], 1.0)})


def test_rsnn_classifier_can_bin_event_streams_from_one_origin():
    # by default each stream is binned from its own first event: an onset is lost
    early = _events([1, 2], [1, 1], t=[1000, 3000])
    late = _events([1, 2], [1, 1], t=[5000, 7000])
    own = RSNNClassifier(sensor_size=(4, 4, 2))._rasters([early, late])
    assert np.array_equal(own[0], own[1])
    common = RSNNClassifier(sensor_size=(4, 4, 2), events_t_start_us=0.0)._rasters([early,
                                                                                  late])
    assert common[0].shape == (4, 32) and common[1].shape == (8, 32)
    assert np.flatnonzero(common[1].any(axis=1)).tolist() == [5, 7]
