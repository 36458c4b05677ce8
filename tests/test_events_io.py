"""AEDAT 3.1 reader/writer and the DVS128 Gesture loaders on small folders (issue 11)."""

import struct

import numpy as np
import pytest

from bioplastic.data.events import (
    EVENT_DTYPE,
    EventDataset,
    load_dvs_gesture,
    make_events,
    read_aedat31,
    synthetic_gesture,
    to_frame,
    write_aedat31,
)


# ------------------------------------------------------------------------------ AEDAT 3.1
def test_aedat_round_trip_is_identical_and_skips_other_packets(tmp_path):
    events = synthetic_gesture(2, 0, duration_ms=300)
    path = tmp_path / "user01_lab.aedat"
    # an 8-byte-per-event packet of type 2 (special events) between the polarity packets
    special = (2, 8, bytes(range(8)) * 3)
    write_aedat31(path, events, packet_size=1000, extra_packets=[special])
    back = read_aedat31(path)
    assert back.dtype == EVENT_DTYPE and np.array_equal(back, events)
    raw = path.read_bytes()
    assert raw.startswith(b"#!AER-DAT3.1\r\n") and b"#!END-HEADER\r\n" in raw


def test_aedat_layout_written_by_hand_is_decoded_per_spec(tmp_path):
    # one packet built from the layout, independent of write_aedat31: data = x<<17 | y<<2 | p<<1
    # and the timestamp overflow (packet field) adds bit 31
    xs, ys, ps, ts = [5, 127, 0], [9, 0, 127], [1, 0, 1], [10, 20, 0x7FFFFFFF]
    records = b"".join(struct.pack("<II", (x << 17) | (y << 2) | (p << 1), t)
                       for x, y, p, t in zip(xs, ys, ps, ts, strict=True))
    header = struct.pack("<HHIIIIII", 1, 1, 8, 4, 1, 3, 3, 3)
    other = struct.pack("<HHIIIIII", 7, 1, 4, 0, 0, 2, 2, 2) + b"\xff" * 8
    path = tmp_path / "hand.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + other + header
                     + records)
    events = read_aedat31(path)
    assert events["x"].tolist() == xs and events["y"].tolist() == ys
    assert events["p"].tolist() == [True, False, True]
    assert events["t"].tolist() == [t + (1 << 31) for t in ts]


def test_aedat_round_trip_across_the_timestamp_overflow(tmp_path):
    t = np.array([0, (1 << 31) - 1, 1 << 31, (1 << 32) + 7])
    events = make_events([1, 2, 3, 4], [4, 3, 2, 1], [0, 1, 0, 1], t)
    write_aedat31(tmp_path / "o.aedat", events)
    assert np.array_equal(read_aedat31(tmp_path / "o.aedat"), events)


def test_aedat_bad_files(tmp_path):
    bad = tmp_path / "v2.aedat"
    bad.write_bytes(b"#!AER-DAT2.0\r\n#!END-HEADER\r\n")
    with pytest.raises(ValueError, match="AER-DAT3.1"):
        read_aedat31(bad)
    write_aedat31(tmp_path / "cut.aedat", make_events([1, 2], [1, 2], [0, 1], [0, 5]))
    raw = (tmp_path / "cut.aedat").read_bytes()
    (tmp_path / "cut.aedat").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="needs 16 bytes"):
        read_aedat31(tmp_path / "cut.aedat")
    (tmp_path / "nohead.aedat").write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(ValueError, match="END-HEADER"):
        read_aedat31(tmp_path / "nohead.aedat")


# ------------------------------------------------------------------------ tonic layout
def write_tonic_layout(root, split="ibmGestureTrain", trials=("user01_fluorescent",
                                                               "user02_led", "user03_lab"),
                       labels=range(11), duration_ms=40):
    """tonic's pre-processed DVSGesture folder: <label>.npy arrays (x, y, p, t_ms)."""
    folder = root / "DVSGesture" / split
    expected = {}
    for k, trial in enumerate(trials):
        (folder / trial).mkdir(parents=True)
        for label in labels:
            events = synthetic_gesture(label, k, duration_ms=duration_ms, rate_hz=2000.0)
            table = np.stack([events["x"], events["y"], events["p"], events["t"] // 1000],
                             axis=1).astype(np.int64)
            np.save(folder / trial / f"{label}.npy", table)
            expected[(int(trial[4:6]), trial[7:], label)] = events
    return expected


def test_tonic_layout_loads_samples_as_tonic_returns_them(tmp_path):
    expected = write_tonic_layout(tmp_path)
    data = load_dvs_gesture(tmp_path, train=True)
    assert len(data) == 33 and data.source.startswith("tonic layout")
    assert data.sensor_size == (128, 128, 2)
    for i in range(len(data)):
        events, label = data[i]
        key = (data.info["users"][i], data.info["lighting"][i], label)
        assert events.dtype == EVENT_DTYPE and np.array_equal(events, expected[key])
    assert data.info["lighting"][:11] == ["fluorescent"] * 11
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_dvs_gesture(tmp_path, train=False)


@pytest.mark.tonic
def test_tonic_layout_equals_tonic_dvsgesture(tmp_path):
    tonic = pytest.importorskip("tonic")
    # tonic's offline check needs the archive file (any content) and >= 100 .npy files
    write_tonic_layout(tmp_path, trials=[f"user{u:02d}_natural" for u in range(1, 11)],
                       duration_ms=10)
    (tmp_path / "DVSGesture" / "ibmGestureTrain.tar.gz").write_bytes(b"")
    theirs = tonic.datasets.DVSGesture(str(tmp_path), train=True)
    ours = load_dvs_gesture(tmp_path, train=True)
    assert len(theirs) == len(ours) == 110
    by_key = {(u, lab, t): i for i, (u, lab, t) in enumerate(zip(
        ours.info["users"], ours.info["lighting"], ours.targets, strict=True))}
    for j in range(len(theirs)):
        events, label = theirs[j]
        i = by_key[(theirs.users[j], theirs.lighting[j], label)]
        assert np.array_equal(ours[i][0], events) and ours[i][0].dtype == events.dtype
    wrapped = EventDataset.from_pairs(theirs)           # a tonic dataset used directly
    assert wrapped.sensor_size == (128, 128, 2) and len(wrapped) == 110
    assert np.array_equal(wrapped[7][0], theirs[7][0]) and wrapped[7][1] == theirs[7][1]


# --------------------------------------------------------------------------- raw layout
def write_raw_layout(root, trials, *, gap_ms=50, duration_ms=60, repeat_label=None):
    """The raw IBM release: userXX_<lighting>.aedat + _labels.csv + trials lists."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True, exist_ok=True)
    expected = []
    for k, trial in enumerate(trials):
        labels = list(range(1, 12)) + ([repeat_label] if repeat_label else [])
        offset, rows, chunks = 3_000_000, [], []
        for j, label in enumerate(labels):
            events = synthetic_gesture(label - 1, 10 * k + j, duration_ms=duration_ms,
                                       rate_hz=3000.0)
            start = offset
            end = start + duration_ms * 1000
            shifted = events.copy()
            shifted["t"] += start
            chunks.append(shifted)
            rows.append(f"{label},{start},{end}")
            expected.append((trial, label - 1, events))
            offset = end + gap_ms * 1000
        write_aedat31(folder / f"{trial}.aedat", np.concatenate(chunks), packet_size=500,
                      extra_packets=[(2, 8, b"\x00" * 16)])
        (folder / f"{trial}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "\n".join(rows) + "\n")
    return expected


def test_raw_layout_cuts_trials_by_the_label_csv(tmp_path):
    expected = write_raw_layout(tmp_path, ["user01_fluorescent", "user02_natural"],
                                repeat_label=8)
    folder = tmp_path / "DvsGesture"
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_natural.aedat\n")
    (folder / "trials_to_test.txt").write_text("user02_natural.aedat\n")
    data = load_dvs_gesture(tmp_path, train=True)
    assert data.source.startswith("raw IBM layout, all CSV rows")
    assert len(data) == 24                                  # 12 rows per trial, repeat kept
    for i, (_, label, events) in enumerate(expected):
        sample, target = data[i]
        assert target == label and np.array_equal(sample, events)
    first = load_dvs_gesture(tmp_path, train=True, keep_repeated=False)
    assert len(first) == 22 and np.bincount(first.targets).tolist() == [2] * 11
    test = load_dvs_gesture(tmp_path, train=False, shift_time=False)
    assert len(test) == 12 and test[0][0]["t"][0] >= 3_000_000
    assert test.info["users"] == [2] * 12


def test_raw_layout_missing_trial_file_is_named(tmp_path):
    write_raw_layout(tmp_path, ["user01_lab"])
    listing = tmp_path / "DvsGesture" / "trials_to_train.txt"
    listing.write_text("user01_lab.aedat\nuser05_led.aedat\n")
    with pytest.raises(FileNotFoundError, match="user05_led"):
        load_dvs_gesture(tmp_path)


def test_missing_data_message_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dvs_gesture(tmp_path / "nowhere")
    message = str(error.value)
    assert "never downloads" in message and "ibmGestureTrain" in message
    assert "trials_to_train.txt" in message


def test_event_dataset_from_arrays_with_transform():
    events = [synthetic_gesture(c, 0, duration_ms=30) for c in (3, 4)]
    data = EventDataset.from_arrays(events, [3, 4], (128, 128, 2))
    framed = data.with_transform(lambda e: to_frame(e, (128, 128, 2), n_time_bins=3))
    frames, label = framed[1]
    assert frames.shape == (3, 2, 128, 128) and label == 4
    assert len(data[0:2]) == 2 and data[-1][1] == 4
    with pytest.raises(IndexError):
        data[2]
    pairs = EventDataset.from_pairs(list(zip(events, [3, 4], strict=True)), (128, 128, 2))
    assert pairs.targets.tolist() == [3, 4] and np.array_equal(pairs[1][0], events[1])
