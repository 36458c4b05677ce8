"""Synthetic gestures and spike encoders (issue 11)."""

import numpy as np
import pytest

from bioplastic.data.events import (
    DVS128_SENSOR_SIZE,
    EVENT_DTYPE,
    SYNTHETIC_CLASSES,
    denoise,
    downsample,
    events_to_spikes,
    latency_encode,
    make_events,
    poisson_encode,
    synthetic_gesture,
    synthetic_gesture_dataset,
)


# ----------------------------------------------------------------------- synthetic gestures
@pytest.mark.parametrize("label", range(len(SYNTHETIC_CLASSES)))
def test_synthetic_gesture_is_a_valid_dvs128_stream(label):
    events = synthetic_gesture(label, 3, duration_ms=400)
    assert events.dtype == EVENT_DTYPE
    assert np.all(np.diff(events["t"]) >= 0)
    assert np.all(events["t"] % 1000 == 0)              # tonic's DVSGesture 1 ms grid
    assert events["t"].min() >= 0 and events["t"].max() < 400 * 1000
    for field, size in zip("xy", DVS128_SENSOR_SIZE[:2], strict=True):
        assert events[field].min() >= 0 and events[field].max() < size
    assert 0.3 < events["p"].mean() < 0.7                # ON and OFF edges both present


def test_synthetic_gesture_is_deterministic_per_label_and_seed():
    a = synthetic_gesture(4, 7, duration_ms=300)
    assert np.array_equal(a, synthetic_gesture(4, 7, duration_ms=300))
    assert not np.array_equal(a, synthetic_gesture(4, 8, duration_ms=300))
    assert not np.array_equal(a, synthetic_gesture(3, 7, duration_ms=300))


def test_event_count_follows_rate_and_noise_fraction():
    # mean edge events = rate_hz * duration; noise adds noise_frac of them (module docstring)
    events = synthetic_gesture(1, 0, duration_ms=1000, rate_hz=10_000.0, noise_frac=0.1)
    assert 0.9 * 11_000 < events.size < 1.1 * 11_000


def _angular_velocity_sign(events, centre, window_us=20_000):
    """Sign of the mean angular step of the event centroid around ``centre`` (image axes)."""
    bins = events["t"] // window_us
    angles = [np.arctan2(events["y"][bins == b].mean() - centre[1],
                         events["x"][bins == b].mean() - centre[0]) for b in np.unique(bins)]
    steps = np.angle(np.exp(1j * np.diff(angles)))       # wrapped to (-pi, pi]
    return np.sign(np.mean(steps))


@pytest.mark.parametrize(("label", "sign", "centre"), [(3, 1, (88, 64)), (4, -1, (88, 64)),
                                                       (5, 1, (40, 64)), (6, -1, (40, 64))])
def test_circles_turn_the_documented_way(label, sign, centre):
    # clockwise on the image (y down) is increasing atan2(y, x); centres from the docstring
    # layout (the per-sample offset is at most 5 px, much less than the 22 px radius)
    events = synthetic_gesture(label, 0, duration_ms=800, noise_frac=0.0)
    assert _angular_velocity_sign(events, centre) == sign


def test_on_events_lead_off_events_trail():
    # a horizontal wave: in each window the ON centroid lies ahead of the OFF centroid
    events = synthetic_gesture(1, 2, duration_ms=1000, noise_frac=0.0)
    bins = events["t"] // 20_000
    ahead = []
    centroid = []
    for b in np.unique(bins):
        sel = events[bins == b]
        centroid.append(sel["x"].mean())
        ahead.append(sel["x"][sel["p"]].mean() - sel["x"][~sel["p"]].mean())
    velocity = np.gradient(np.asarray(centroid))
    agree = np.sign(velocity) == np.sign(ahead)
    assert agree.mean() > 0.8


def test_waves_sit_on_their_half_of_the_sensor():
    right, left = synthetic_gesture(1, 0, noise_frac=0.0), synthetic_gesture(2, 0, noise_frac=0.0)
    assert right["x"].mean() > 64 > left["x"].mean()


def test_denoise_removes_mostly_the_noise_events():
    clean = synthetic_gesture(3, 1, duration_ms=500, noise_frac=0.0)
    noisy = synthetic_gesture(3, 1, duration_ms=500, noise_frac=0.2)
    # the clean stream is a prefix-consistent subset: same draws, then noise appended
    removed_clean = clean.size - denoise(clean, 10_000).size
    removed_noisy = noisy.size - denoise(noisy, 10_000).size
    n_noise = noisy.size - clean.size
    assert removed_noisy - removed_clean > 0.5 * n_noise


def test_synthetic_gesture_scales_to_other_sensor_sizes():
    events = synthetic_gesture(0, 0, duration_ms=200, sensor_size=(32, 32, 2))
    assert events["x"].max() < 32 and events["y"].max() < 32


def test_synthetic_gesture_bad_input():
    with pytest.raises(ValueError, match="label"):
        synthetic_gesture(11, 0)
    with pytest.raises(ValueError, match="seed"):
        synthetic_gesture(0, -1)
    with pytest.raises(ValueError, match="P = 2"):
        synthetic_gesture(0, 0, sensor_size=(128, 128, 1))
    with pytest.raises(ValueError, match="noise_frac"):
        synthetic_gesture(0, 0, noise_frac=2.0)


def test_dataset_is_balanced_and_interleaved():
    events, targets = synthetic_gesture_dataset(3, labels=(3, 4), seed=10, duration_ms=100)
    assert targets.tolist() == [3, 4, 3, 4, 3, 4]
    assert np.array_equal(events[2], synthetic_gesture(3, 11, duration_ms=100))
    all_events, all_targets = synthetic_gesture_dataset(1, duration_ms=50)
    assert sorted(all_targets.tolist()) == list(range(11))
    with pytest.raises(ValueError, match="distinct"):
        synthetic_gesture_dataset(1, labels=(1, 1))


# ----------------------------------------------------------------------------- encoders
def _naive_spikes(events, sensor_size, dt_us, n_steps, t_start):
    width, height, n_pol = sensor_size
    out = np.zeros((n_steps, n_pol * height * width), dtype=np.int64)
    for e in events:
        step = int((e["t"] - t_start) // dt_us)
        if 0 <= step < n_steps:
            out[step, (int(e["p"]) * height + e["y"]) * width + e["x"]] += 1
    return out


def test_events_to_spikes_matches_a_python_loop():
    events = synthetic_gesture(7, 0, duration_ms=120, sensor_size=(16, 16, 2))
    counts = events_to_spikes(events, (16, 16, 2), dt_us=5000, binary=False)
    t0 = int(events["t"][0])
    n_steps = (int(events["t"][-1]) - t0) // 5000 + 1      # default: up to the last event
    expected = _naive_spikes(events, (16, 16, 2), 5000, n_steps, t0)
    assert counts.dtype == np.int32 and np.array_equal(counts, expected)
    assert counts.sum() == events.size                     # nothing dropped by default
    spikes = events_to_spikes(events, (16, 16, 2), dt_us=5000)
    assert spikes.dtype == bool and np.array_equal(spikes, expected > 0)


def test_events_to_spikes_grid_options_and_layout():
    events = make_events([1, 2, 0], [0, 3, 1], [1, 0, 1], [1000, 2500, 9000])
    spikes = events_to_spikes(events, (4, 4, 2), dt_us=1000, n_steps=5, t_start_us=0)
    assert spikes.shape == (5, 2 * 4 * 4)
    frames = spikes.reshape(5, 2, 4, 4)                    # (T, P, H, W)
    assert frames[1, 1, 0, 1] and frames[2, 0, 3, 2] and frames.sum() == 2   # t=9000 past T
    assert events_to_spikes(events[:0], (4, 4, 2)).shape == (0, 32)


def test_events_to_spikes_feeds_simulate():
    import bioplastic as bp

    events, _ = downsample(synthetic_gesture(3, 0, duration_ms=50), DVS128_SENSOR_SIZE,
                           spatial_factor=0.25)
    spikes = events_to_spikes(events, (32, 32, 2))
    weight = np.random.default_rng(0).random((20, spikes.shape[1])) * 40.0   # (n_post, n_pre)
    drive = spikes.astype(float) @ weight.T                # (T, 20) input from the events
    trace = bp.run_lif(drive, bp.LIFParams())
    assert trace.spikes.shape == (50, 20) and trace.spikes.any()


def test_poisson_encode_rate_and_determinism():
    x = np.full((50, 40), 0.5)
    spikes = poisson_encode(x, 400, max_rate_hz=200.0, dt_ms=1.0, seed=1)
    assert spikes.shape == (400, 50, 40) and spikes.dtype == bool
    # p = 0.5 * 200 Hz * 1 ms = 0.1 per step; 800,000 draws -> sd of the mean ~ 3.4e-4
    assert abs(spikes.mean() - 0.1) < 0.002
    assert np.array_equal(spikes, poisson_encode(x, 400, max_rate_hz=200.0, seed=1))
    rates = np.linspace(0, 1, 6)[None, :].repeat(300, axis=0)   # time-major input
    assert poisson_encode(rates, None, seed=0).shape == (300, 6)
    assert not poisson_encode(np.zeros(5), 100, seed=0).any()
    with pytest.raises(ValueError, match="probability"):
        poisson_encode(x, 10, max_rate_hz=2000.0)
    with pytest.raises(ValueError, match="x must lie"):
        poisson_encode(x + 1, 10)


def test_latency_encode_brighter_fires_earlier_and_once():
    x = np.array([1.0, 0.5, 0.0, 0.02])
    spikes = latency_encode(x, 11)
    assert spikes.sum(axis=0).tolist() == [1, 1, 0, 1]
    assert np.argmax(spikes[:, 0]) == 0 and np.argmax(spikes[:, 1]) == 5   # round(0.5 * 10)
    log = latency_encode(x, 50, method="log", tau_steps=20.0, threshold=0.1)
    first = np.argmax(log, axis=0)
    assert log.sum(axis=0).tolist() == [1, 1, 0, 0]
    # t = tau ln(x / (x - thr)): 20 ln(1 / 0.9) = 2.1 -> 2; 20 ln(0.5 / 0.4) = 4.46 -> 4
    assert first[:2].tolist() == [2, 4]
    with pytest.raises(ValueError, match="method"):
        latency_encode(x, 5, method="rate")
