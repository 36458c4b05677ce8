"""Event streams into PyTorch: a ``Dataset`` of frame tensors and a time-major collate.

``EventFrames`` turns any sequence of ``(events, label)`` pairs (a
:class:`bioplastic.data.events.EventDataset`, a ``tonic`` dataset, a list) into
``(frames (T, P, H, W) float tensor, label)``; ``PadTimeMajor`` stacks samples of different
lengths into the ``(T, B, P, H, W)`` batches that the spiking modules of :mod:`bioplastic.nn`
run over, zero-padding at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data.events import check_sensor_size, to_frame

__all__ = ["EventFrames", "PadTimeMajor", "collate_time_major"]


class EventFrames(torch.utils.data.Dataset):
    """Frames of event counts from an event data set.

    Parameters
    ----------
    samples : sequence of (events, label)
        Events are structured arrays (see :mod:`bioplastic.data.events`).
    sensor_size : (W, H, P), optional
        Default: ``samples.sensor_size``.
    to_frames : callable ``(events, sensor_size) -> (T, P, H, W) array``, optional
        Default :func:`~bioplastic.data.events.to_frame` with ``frame_kwargs``.
    binary : bool
        Clip counts to 1 (spike frames).
    dtype : torch.dtype
    **frame_kwargs
        Slicing arguments of :func:`~bioplastic.data.events.to_frame` (``n_time_bins=T``,
        ``time_window=...``, ...).
    """

    def __init__(self, samples: Sequence, sensor_size=None, *,
                 to_frames: Callable | None = None, binary: bool = False,
                 dtype: torch.dtype = torch.float32, **frame_kwargs):
        if sensor_size is None:
            sensor_size = getattr(samples, "sensor_size", None)
            if sensor_size is None:
                raise ValueError("sensor_size is required when samples has no sensor_size")
        self.samples = samples
        self.sensor_size = check_sensor_size(sensor_size)
        if to_frames is None and not frame_kwargs:
            raise ValueError("give to_frame's slicing argument (e.g. n_time_bins=T) or "
                             "to_frames")
        if to_frames is not None and frame_kwargs:
            raise ValueError("give either to_frames or to_frame keyword arguments, not both")
        self.to_frames = to_frames
        self.frame_kwargs = frame_kwargs
        self.binary = binary
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        events, label = self.samples[index]
        if self.to_frames is None:
            frames = to_frame(events, self.sensor_size, **self.frame_kwargs)
        else:
            frames = np.asarray(self.to_frames(events, self.sensor_size))
        if self.binary:
            frames = np.minimum(frames, 1)
        return torch.as_tensor(np.ascontiguousarray(frames)).to(self.dtype), int(label)


class PadTimeMajor:
    """Collate ``(frames (T_i, ...), label)`` samples into ``(T_max, B, ...)``, zero-padded.

    Parameters
    ----------
    return_lengths : bool
        Also return the int64 tensor of each sample's ``T_i`` (to mask the padding).
    pad_value : float

    Returns (when called)
    ---------------------
    frames : tensor, shape (T_max, B, *frame_shape)
    labels : int64 tensor, shape (B,)
    lengths : int64 tensor, shape (B,), only with ``return_lengths``
    """

    def __init__(self, *, return_lengths: bool = False, pad_value: float = 0.0):
        self.return_lengths = return_lengths
        self.pad_value = pad_value

    def __call__(self, batch):
        if not batch:
            raise ValueError("cannot collate an empty batch")
        frames = [torch.as_tensor(sample) for sample, _ in batch]
        shapes = {tuple(f.shape[1:]) for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"samples must share their frame shape (P, H, W), got {shapes}; "
                             "use the same sensor_size for every sample")
        lengths = torch.tensor([f.shape[0] for f in frames], dtype=torch.int64)
        out = frames[0].new_full((int(lengths.max()), len(frames), *frames[0].shape[1:]),
                                 self.pad_value)
        for b, f in enumerate(frames):
            out[: f.shape[0], b] = f
        labels = torch.tensor([int(label) for _, label in batch], dtype=torch.int64)
        return (out, labels, lengths) if self.return_lengths else (out, labels)


collate_time_major = PadTimeMajor()
"""``collate_fn`` for a ``DataLoader`` over :class:`EventFrames`: ``(T, B, P, H, W)``, labels."""
