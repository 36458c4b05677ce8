"""Event arrays, validation and transforms; equality with tonic's transforms (issue 11)."""

import numpy as np
import pytest

from bioplastic.data.events import (
    EVENT_DTYPE,
    TONIC_DTYPE,
    check_events,
    crop,
    denoise,
    downsample,
    frame_slices,
    make_events,
    sort_events,
    synthetic_gesture,
    time_jitter,
    to_frame,
)

SENSOR = (128, 128, 2)


@pytest.fixture
def tonic():
    return pytest.importorskip("tonic")


def random_events(rng, n, *, sensor=(16, 12, 2), t_max=50_000, dtype=EVENT_DTYPE, grid=1):
    """Sorted random events; ``grid`` > 1 puts times on a coarse grid (many equal times)."""
    t = np.sort(rng.integers(0, t_max // grid + 1, n)) * grid
    return make_events(rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n),
                       rng.integers(0, sensor[2], n), t, dtype=dtype)


def edge_case_streams():
    """The edge cases the transforms must agree with tonic on (name, events, sensor)."""
    rng = np.random.default_rng(11)
    one = make_events([3], [4], [1], [5000])
    same_t = make_events(rng.integers(0, 16, 30), rng.integers(0, 12, 30),
                         rng.integers(0, 2, 30), np.full(30, 7000))
    # t_last - t_first = 40,000 is divisible by 4 and 8 bins: tonic drops the last event
    divisible = random_events(rng, 200, t_max=40_000)
    divisible["t"][0], divisible["t"][-1] = 0, 40_000
    duplicates = make_events([5] * 6 + [6], [5] * 7, [1] * 7, [1000, 1000, 1000, 2000, 2000,
                                                               3000, 3000])
    return [
        ("one_event", one, (16, 12, 2)),
        ("one_timestamp", same_t, (16, 12, 2)),
        ("divisible_span", divisible, (16, 12, 2)),
        ("duplicates", duplicates, (16, 12, 2)),
        ("random", random_events(rng, 2000), (16, 12, 2)),
        ("coarse_grid", random_events(rng, 3000, grid=1000), (16, 12, 2)),
        ("tonic_field_order", random_events(rng, 500, dtype=TONIC_DTYPE), (16, 12, 2)),
        ("one_polarity", random_events(rng, 300, sensor=(9, 7, 1)), (9, 7, 1)),
        ("gesture", synthetic_gesture(5, 0, duration_ms=300), SENSOR),
    ]


EDGE_CASES = edge_case_streams()
FRAME_SETTINGS = [
    {"n_time_bins": 1}, {"n_time_bins": 4}, {"n_time_bins": 8}, {"n_time_bins": 7},
    {"n_time_bins": 5, "overlap": 0.3},
    {"n_event_bins": 3}, {"n_event_bins": 6, "overlap": 0.5},
    {"time_window": 5000}, {"time_window": 3000, "overlap": 1000},
    {"time_window": 7000, "include_incomplete": True},
    {"time_window": 4000, "overlap": 500.5, "include_incomplete": True},
    {"time_window": 2500, "start_time": 0, "end_time": 60_000},
    {"event_count": 50}, {"event_count": 64, "overlap": 16},
    {"event_count": 70, "include_incomplete": True},
    {"event_count": 5000},
]


# ------------------------------------------------------------------------------ validation
def test_make_events_uses_tonic_names_and_dtype():
    events = make_events([1, 2], [3, 4], [True, False], [10, 20])
    assert events.dtype == EVENT_DTYPE
    assert EVENT_DTYPE.names == ("x", "y", "p", "t")
    assert TONIC_DTYPE.names == ("x", "y", "t", "p")
    assert events["x"].tolist() == [1, 2] and events["t"].tolist() == [10, 20]


@pytest.mark.parametrize(("field", "value", "match"), [
    ("x", 16, r"events\['x'\] must lie in \[0, 16\)"),
    ("y", -1, r"events\['y'\] must lie in \[0, 12\)"),
    ("t", -5, r"events\['t'\] must be >= 0"),
])
def test_events_outside_the_sensor_or_negative_times_are_rejected(field, value, match):
    events = make_events([1, 2, 3], [1, 2, 3], [0, 1, 0], [0, 10, 20])
    events[field][1] = value
    with pytest.raises(ValueError, match=match):
        to_frame(events, (16, 12, 2), n_time_bins=2)


def test_unsorted_timestamps_are_rejected_and_sort_events_fixes_them():
    events = make_events([1, 2, 3], [1, 2, 3], [0, 1, 0], [0, 30, 20])
    with pytest.raises(ValueError, match=r"non-decreasing.*t\[2\] = 20 < t\[1\] = 30"):
        denoise(events)
    fixed = sort_events(events)
    assert fixed["t"].tolist() == [0, 20, 30] and events["t"].tolist() == [0, 30, 20]


def test_wrong_types_are_rejected():
    with pytest.raises(TypeError, match="structured"):
        check_events(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="missing"):
        check_events(np.zeros(3, dtype=[("x", "i2"), ("y", "i2"), ("t", "i8")]))
    with pytest.raises(TypeError, match="integer"):
        check_events(np.zeros(3, dtype=[("x", "f4"), ("y", "i2"), ("p", "?"), ("t", "i8")]))
    with pytest.raises(TypeError, match="sensor_size"):
        to_frame(make_events([0], [0], [0], [0]), (16, 12), n_time_bins=2)


def test_mismatched_sensor_size_is_named():
    events = synthetic_gesture(0, 0, duration_ms=50)
    small, size = downsample(events, SENSOR, spatial_factor=0.25)
    assert size == (32, 32, 2)
    with pytest.raises(ValueError, match=r"sensor_size \(16, 16, 2\)"):
        to_frame(events, (16, 16, 2), n_time_bins=2)
    assert to_frame(small, size, n_time_bins=2).shape == (2, 2, 32, 32)


@pytest.mark.parametrize("kwargs", [{}, {"n_time_bins": 2, "time_window": 10},
                                    {"event_count": 3, "n_event_bins": 2}])
def test_exactly_one_slicing_argument(kwargs):
    with pytest.raises(ValueError, match="exactly one of time_window"):
        to_frame(make_events([0], [0], [0], [0]), (4, 4, 2), **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_time_bins": 0}, "n_time_bins must be a positive int"),
    ({"time_window": -3}, "time_window must be > 0"),
    ({"time_window": 10, "overlap": 10}, "overlap must be smaller"),
    ({"event_count": 4, "overlap": 4}, "overlap must be smaller"),
    ({"n_time_bins": 3, "overlap": 1.0}, r"overlap must be a fraction"),
    ({"n_time_bins": 3, "include_incomplete": True}, "include_incomplete applies"),
    ({"n_event_bins": 3, "start_time": 0}, "start_time and end_time apply"),
])
def test_bad_slicing_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_frame(make_events([0, 1], [0, 1], [0, 1], [0, 50]), (4, 4, 2), **kwargs)


# ----------------------------------------------------------- to_frame, without tonic
def naive_to_frame(events, sensor, starts, ends):
    width, height, n_pol = sensor
    frames = np.zeros((len(starts), n_pol, height, width), dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        for e in events[a:b]:
            frames[i, int(e["p"]) if n_pol > 1 else 0, e["y"], e["x"]] += 1
    return frames


@pytest.mark.parametrize("settings", FRAME_SETTINGS, ids=str)
@pytest.mark.parametrize(("name", "events", "sensor"), EDGE_CASES[:-1],
                         ids=[c[0] for c in EDGE_CASES[:-1]])
def test_to_frame_counts_equal_a_python_loop_over_its_slices(name, events, sensor, settings):
    frames = to_frame(events, sensor, **settings)
    starts, ends = frame_slices(events, **settings)
    assert frames.dtype == np.int16
    assert np.array_equal(frames, naive_to_frame(events, sensor, starts, ends))


def naive_denoise(events, filter_time, initial):
    """A transcription of the rule in denoise's docstring, with a dict for the memory."""
    width, height = int(events["x"].max()) + 1, int(events["y"].max()) + 1
    memory, kept = {}, []
    for e in events:
        x, y, t = int(e["x"]), int(e["y"]), float(e["t"])
        memory[(x, y)] = t + filter_time
        neighbours = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
        if any(0 <= a < width and 0 <= b < height and memory.get((a, b), initial) > t
               for a, b in neighbours):
            kept.append(e)
    return np.array(kept, dtype=events.dtype)


@pytest.mark.parametrize("keep_early", [True, False])
@pytest.mark.parametrize(("name", "events", "sensor"), EDGE_CASES,
                         ids=[c[0] for c in EDGE_CASES])
def test_denoise_equals_a_python_loop(name, events, sensor, keep_early):
    for filter_time in (1000, 10_000):
        initial = filter_time if keep_early else -np.inf
        expected = naive_denoise(events, filter_time, initial)
        assert np.array_equal(denoise(events, filter_time, keep_early=keep_early), expected)


def test_n_time_bins_drops_the_last_event():
    # span 40,000 µs / 4 bins -> window 10,000; bins cover [0, 40,000): the event at 40,000 is
    # out. With span 40,003 the window is still 10,000 (floor), so 40,001..40,003 are out too.
    events = make_events([0, 1, 2, 3, 3], [0] * 5, [1] * 5, [0, 10_000, 25_000, 39_999, 40_000])
    frames = to_frame(events, (4, 1, 2), n_time_bins=4)
    assert frames.sum() == 4 and frames[3, 1, 0, 3] == 1
    events["t"][-1] = 40_003
    assert to_frame(events, (4, 1, 2), n_time_bins=4).sum() == 4
    # overlap 0.5: window 10,000 * 1.5 = 15,000, stride 7,500, the last bin is
    # [22,500, 37,500): it ends before the events at 39,999 and 40,003
    assert frame_slices(events, n_time_bins=4, overlap=0.5)[1][-1] == 3


def test_one_timestamp_and_one_event_give_an_empty_window():
    # span 0 -> window 0 -> every bin [t0, t0) is empty (tonic's arithmetic)
    same = make_events([0, 1, 1], [0, 0, 0], [1, 0, 1], [500, 500, 500])
    assert to_frame(same, (2, 1, 2), n_time_bins=3).sum() == 0
    assert to_frame(same, (2, 1, 2), time_window=10).sum() == 3
    assert to_frame(same, (2, 1, 2), event_count=2).sum() == 2


def test_duplicate_events_count_more_than_one():
    events = EDGE_CASES[3][1]
    frames = to_frame(events, (16, 12, 2), event_count=7)
    assert frames[0, 1, 5, 5] == 6 and frames[0, 1, 5, 6] == 1


def test_empty_stream_gives_zero_frames():
    empty = make_events([], [], [], [])
    assert to_frame(empty, (5, 3, 2), n_time_bins=4).shape == (4, 2, 3, 5)
    assert to_frame(empty, (5, 3, 2), time_window=100).shape == (1, 2, 3, 5)
    assert to_frame(empty, (5, 3, 2), n_event_bins=2).shape == (2, 2, 3, 5)
    assert denoise(empty).size == 0


def test_one_polarity_sensor_merges_and_rejects_mixed_polarities():
    events = make_events([0, 1], [0, 0], [1, 1], [0, 10])
    frames = to_frame(events, (2, 1, 1), event_count=2)
    assert frames.shape == (1, 1, 1, 2) and frames.sum() == 2
    assert events["p"].tolist() == [True, True]                  # input untouched
    with pytest.raises(ValueError, match="one polarity"):
        to_frame(make_events([0, 1], [0, 0], [0, 1], [0, 10]), (2, 1, 1), event_count=2)


def test_transforms_do_not_modify_their_input():
    events = EDGE_CASES[4][1]
    before = events.copy()
    to_frame(events, (16, 12, 2), n_time_bins=3)
    denoise(events, 3000)
    downsample(events, (16, 12, 2), spatial_factor=0.5, time_factor=0.5)
    crop(events, (16, 12, 2), (8, 8), seed=0)
    time_jitter(events, 100.0, seed=0, sort_timestamps=True)
    assert np.array_equal(events, before)


# ----------------------------------------------------------- denoise, without tonic
def test_denoise_keeps_events_with_a_recent_neighbour():
    # (5,5) at 20,000 has neighbour (5,6) at 15,000 (< 10,000 µs before): kept; (9,9) is alone;
    # (5,6) itself came first with no active neighbour: dropped. Times >= filter_time.
    events = make_events([5, 5, 9], [6, 5, 9], [1, 1, 0], [15_000, 20_000, 22_000])
    assert denoise(events, 10_000)["t"].tolist() == [20_000]
    # 10,001 µs later the neighbour has expired (memory 25,000 > t is false at 25,000)
    late = make_events([5, 5], [6, 5], [1, 1], [15_000, 25_000])
    assert denoise(late, 10_000).size == 0


def test_denoise_quirk_keeps_every_early_event_with_an_in_grid_neighbour():
    # t < filter_time: memory starts at filter_time, so the lone event at (1, 1) survives
    events = make_events([1, 4], [1, 4], [1, 1], [100, 20_000])
    assert denoise(events, 10_000)["t"].tolist() == [100]
    assert denoise(events, 10_000, keep_early=False).size == 0
    # a 1x1 grid has no neighbour at all: nothing survives even early
    assert denoise(make_events([0], [0], [1], [0]), 10_000).size == 0


def test_denoise_same_pixel_is_not_its_own_neighbour():
    events = make_events([3, 3, 3], [3, 3, 3], [1, 1, 1], [20_000, 20_500, 21_000])
    assert denoise(make_events([0, 3, 3, 3], [0, 3, 3, 3], [1] * 4,
                               [20_000, 20_000, 20_500, 21_000])).size == 0
    assert denoise(events, 10_000, keep_early=False).size == 0


# ------------------------------------------------------------- equality with tonic
def tonic_frames(tonic, events, sensor, settings):
    frames = tonic.transforms.ToFrame(sensor_size=sensor, **settings)(events.copy())
    return np.asarray(frames)


@pytest.mark.tonic
@pytest.mark.parametrize("settings", FRAME_SETTINGS, ids=str)
@pytest.mark.parametrize(("name", "events", "sensor"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_to_frame_equals_tonic(tonic, name, events, sensor, settings):
    ours = to_frame(events, sensor, **settings)
    theirs = tonic_frames(tonic, events, sensor, settings)
    assert theirs.dtype == np.int16 and ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


@pytest.mark.tonic
@pytest.mark.parametrize("settings", [{"n_time_bins": 4}, {"time_window": 1000},
                                      {"event_count": 10}, {"n_event_bins": 3}], ids=str)
def test_to_frame_of_an_empty_stream_equals_tonic_values(tonic, settings):
    # tonic returns float64 zeros shaped (T, P, W, H); ours are int16 (T, P, H, W): equal
    # values and shapes on a square sensor (module docstring of the transforms)
    empty = make_events([], [], [], [])
    ours = to_frame(empty, (6, 6, 2), **settings)
    theirs = tonic_frames(tonic, empty, (6, 6, 2), settings)
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


@pytest.mark.tonic
@pytest.mark.parametrize("filter_time", [1000, 5000, 10_000, 2500.5])
@pytest.mark.parametrize(("name", "events", "sensor"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_denoise_equals_tonic(tonic, name, events, sensor, filter_time):
    theirs = tonic.transforms.Denoise(filter_time=filter_time)(events.copy())
    ours = denoise(events, filter_time)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


@pytest.mark.tonic
def test_denoise_quirk_equals_tonic(tonic):
    # every timestamp below filter_time: tonic keeps each event with an in-grid neighbour
    events = random_events(np.random.default_rng(3), 400, t_max=9000)
    theirs = tonic.transforms.Denoise(filter_time=10_000)(events.copy())
    assert np.array_equal(denoise(events, 10_000), theirs)
    assert theirs.size > 0.9 * events.size
    assert denoise(events, 10_000, keep_early=False).size < theirs.size


@pytest.mark.tonic
@pytest.mark.parametrize("kwargs", [{"spatial_factor": 0.25}, {"spatial_factor": (0.5, 0.3)},
                                    {"time_factor": 0.001}, {"time_factor": 2.5},
                                    {"target_size": (5, 7)}])
def test_downsample_equals_tonic(tonic, kwargs):
    events = EDGE_CASES[4][1]
    tonic_kwargs = dict(kwargs)
    if "target_size" in kwargs:
        tonic_kwargs["sensor_size"] = (16, 12, 2)
    theirs = tonic.transforms.Downsample(**tonic_kwargs)(events.copy())
    ours, size = downsample(events, (16, 12, 2), **kwargs)
    assert np.array_equal(ours, theirs)
    assert ours["x"].max() < size[0] and ours["y"].max() < size[1]


@pytest.mark.tonic
@pytest.mark.parametrize("target", [(8, 8), (16, 12), (3, 10)])
def test_crop_equals_tonic(tonic, target):
    events = EDGE_CASES[4][1]
    centre = tonic.transforms.CenterCrop(sensor_size=(16, 12, 2), size=target)(events.copy())
    assert np.array_equal(crop(events, (16, 12, 2), target)[0], centre)
    np.random.seed(5)  # noqa: NPY002 -- tonic draws from the global RandomState
    theirs = tonic.transforms.RandomCrop(sensor_size=(16, 12, 2), target_size=target)(
        events.copy())
    ours, size = crop(events, (16, 12, 2), target, seed=np.random.RandomState(5))
    assert np.array_equal(ours, theirs) and size == (*target, 2)


@pytest.mark.tonic
@pytest.mark.parametrize(("clip", "sort"), [(True, False), (False, False), (True, True)])
def test_time_jitter_equals_tonic(tonic, clip, sort):
    events = EDGE_CASES[5][1]          # coarse time grid: sorting has ties to break
    np.random.seed(9)  # noqa: NPY002 -- tonic draws from the global RandomState
    theirs = tonic.transforms.TimeJitter(std=700.0, clip_negative=clip,
                                         sort_timestamps=sort)(events.copy())
    ours = time_jitter(events, 700.0, seed=np.random.RandomState(9), clip_negative=clip,
                       sort_timestamps=sort)
    assert np.array_equal(ours, theirs)


@pytest.mark.tonic
def test_synthetic_gesture_through_tonic_pipeline(tonic):
    # spec pipeline check: ToFrame(sensor_size=(128, 128, 2), n_time_bins=T) -> (T, 2, 128, 128)
    events = synthetic_gesture(0, 1, duration_ms=400)
    pipeline = tonic.transforms.Compose([tonic.transforms.Denoise(filter_time=10_000),
                                         tonic.transforms.ToFrame(sensor_size=SENSOR,
                                                                  n_time_bins=10)])
    theirs = pipeline(events.copy())
    ours = to_frame(denoise(events, 10_000), SENSOR, n_time_bins=10)
    assert theirs.shape == (10, 2, 128, 128) and np.array_equal(ours, theirs)


def random_frame_settings(rng):
    """One random valid ToFrame setting (seeded), drawn over every slicer and option."""
    method = rng.integers(4)
    if method == 0:
        window = int(rng.integers(1, 20_000)) if rng.random() < 0.5 else rng.uniform(1, 2e4)
        settings = {"time_window": window, "include_incomplete": bool(rng.random() < 0.5)}
        if rng.random() < 0.5:
            settings["overlap"] = float(rng.uniform(0, 0.9) * window)
        if rng.random() < 0.3:
            settings["start_time"] = int(rng.integers(0, 30_000))
            settings["end_time"] = settings["start_time"] + int(rng.integers(0, 60_000))
        return settings
    if method == 1:
        count = int(rng.integers(1, 400))
        return {"event_count": count, "overlap": int(rng.integers(0, count)),
                "include_incomplete": bool(rng.random() < 0.5)}
    key = "n_time_bins" if method == 2 else "n_event_bins"
    settings = {key: int(rng.integers(1, 30))}
    if rng.random() < 0.5:
        settings["overlap"] = float(rng.uniform(0, 0.95))
    return settings


@pytest.mark.tonic
def test_random_settings_and_streams_equal_tonic(tonic):
    # 150 seeded draws of stream size, time grid and settings; every one must match exactly
    rng = np.random.default_rng(2026)
    for _ in range(150):
        events = random_events(rng, int(rng.integers(1, 600)), t_max=int(rng.integers(1, 80_000)),
                               grid=int(rng.choice([1, 7, 1000])))
        settings = random_frame_settings(rng)
        ours = to_frame(events, (16, 12, 2), **settings)
        theirs = tonic_frames(tonic, events, (16, 12, 2), settings)
        assert np.array_equal(ours, theirs), settings
        filter_time = float(rng.uniform(1, 20_000))
        assert np.array_equal(denoise(events, filter_time),
                              tonic.transforms.Denoise(filter_time=filter_time)(events.copy()))
