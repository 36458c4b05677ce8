"""torch interop for event streams: EventFrames and the time-major collate (issue 11)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bioplastic.data.events import (  # noqa: E402
    EventDataset,
    synthetic_gesture_dataset,
    to_frame,
)
from bioplastic.nn.events import EventFrames, PadTimeMajor, collate_time_major  # noqa: E402


def small_set():
    events, targets = synthetic_gesture_dataset(2, labels=(3, 4), duration_ms=60,
                                                sensor_size=(32, 32, 2))
    return EventDataset.from_arrays(events, targets, (32, 32, 2))


def test_event_frames_match_to_frame():
    data = small_set()
    frames = EventFrames(data, n_time_bins=5)
    x, label = frames[1]
    expected = to_frame(data[1][0], (32, 32, 2), n_time_bins=5)
    assert x.dtype == torch.float32 and x.shape == (5, 2, 32, 32) and label == 4
    assert np.array_equal(x.numpy(), expected.astype(np.float32))
    binary = EventFrames(data, n_time_bins=5, binary=True)[1][0]
    assert binary.max() == 1 and torch.equal(binary, (x > 0).float())


def test_dataloader_gives_time_major_padded_batches():
    data = small_set()
    frames = EventFrames(data, time_window=10_000)           # lengths differ per sample
    lengths = [frames[i][0].shape[0] for i in range(len(frames))]
    loader = torch.utils.data.DataLoader(frames, batch_size=4, collate_fn=collate_time_major)
    x, y = next(iter(loader))
    assert x.shape == (max(lengths), 4, 2, 32, 32) and y.tolist() == [3, 4, 3, 4]
    for b in range(4):
        assert torch.equal(x[: lengths[b], b], frames[b][0])
        assert not x[lengths[b]:, b].any()                    # zero padding at the end
    _, _, got = PadTimeMajor(return_lengths=True)([frames[i] for i in range(4)])
    assert got.tolist() == lengths


def test_collate_rejects_mixed_sensor_sizes_and_event_frames_needs_slicing():
    a = (torch.zeros(3, 2, 4, 4), 0)
    b = (torch.zeros(3, 2, 8, 8), 1)
    with pytest.raises(ValueError, match="frame shape"):
        collate_time_major([a, b])
    with pytest.raises(ValueError, match="slicing argument"):
        EventFrames(small_set())
    with pytest.raises(ValueError, match="sensor_size is required"):
        EventFrames([], n_time_bins=3)
