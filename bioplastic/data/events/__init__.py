"""Event streams (DVS): tonic-compatible event arrays, transforms, spike encoders, AEDAT 3.1,
DVS128 Gesture and synthetic gestures. NumPy and Numba only; tonic is never imported.

See ``docs/events.md`` for the guide.
"""

from ._core import (
    DVS128_SENSOR_SIZE,
    EVENT_DTYPE,
    TONIC_DTYPE,
    check_events,
    check_sensor_size,
    empty_events,
    make_events,
    sort_events,
)
from .aedat import read_aedat31, write_aedat31
from .encode import events_to_spikes, latency_encode, poisson_encode, time_grid_steps
from .gesture import DVS_GESTURE_CLASSES, EventDataset, load_dvs_gesture
from .synthetic import SYNTHETIC_CLASSES, synthetic_gesture, synthetic_gesture_dataset
from .transforms import crop, denoise, downsample, frame_slices, time_jitter, to_frame

__all__ = [
    "EVENT_DTYPE", "TONIC_DTYPE", "DVS128_SENSOR_SIZE", "make_events", "empty_events",
    "check_events", "check_sensor_size", "sort_events",
    "to_frame", "frame_slices", "denoise", "downsample", "crop", "time_jitter",
    "events_to_spikes", "time_grid_steps", "poisson_encode", "latency_encode",
    "SYNTHETIC_CLASSES", "synthetic_gesture", "synthetic_gesture_dataset",
    "read_aedat31", "write_aedat31", "EventDataset", "load_dvs_gesture", "DVS_GESTURE_CLASSES",
]
