"""DVS128 Gesture from disk (never downloaded), and a small in-memory/lazy event data set.

Two on-disk layouts are read:

* **tonic's** pre-processed copy (what ``tonic.datasets.DVSGesture`` downloads): under
  ``<root>/DVSGesture/ibmGestureTrain/`` (or ``ibmGestureTest/``), one folder per trial
  ``userXX_<lighting>``, one file ``<label>.npy`` per gesture (0-based class) holding an
  ``(n, 4)`` array of ``x, y, p, t`` with t in **ms**. Samples are returned as tonic returns
  them: t multiplied by 1000 (µs on a 1 ms grid), dtype :data:`EVENT_DTYPE`. Because a file
  is named by its class, a class that occurs twice in a trial appears once: tonic reports
  1,077 train / 264 test samples.
* the **raw IBM** release: under ``<root>/`` (or ``<root>/DvsGesture/``),
  ``userXX_<lighting>.aedat`` (AEDAT 3.1) with ``userXX_<lighting>_labels.csv``
  (``class,startTime_usec,endTime_usec``, classes 1..11) and the trial lists
  ``trials_to_train.txt`` / ``trials_to_test.txt``. A sample is the events with
  ``start <= t < end`` of one CSV row, label ``class − 1``, t shifted so the row's start is 0
  (``shift_time=False`` keeps device time). By default every CSV row is a sample (repeated
  classes included, as SpikingJelly counts them: 1,176 train / 288 test are reported);
  ``keep_repeated=False`` keeps the first row of each class per trial.

Always report which loader (``dataset.source``) produced a sample count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._core import DVS128_SENSOR_SIZE, EVENT_DTYPE, check_sensor_size
from .aedat import read_aedat31

__all__ = ["EventDataset", "load_dvs_gesture", "DVS_GESTURE_CLASSES", "MISSING_DATA_HELP"]

DVS_GESTURE_CLASSES = (
    "hand clapping", "right hand wave", "left hand wave", "right arm clockwise",
    "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
    "arm roll", "air drums", "air guitar", "other gestures",
)

MISSING_DATA_HELP = """\
DVS128 Gesture was not found under {root!s}. bioplastic never downloads it. Put one of:
  * tonic's copy: {root!s}/DVSGesture/ibmGestureTrain/userXX_<lighting>/<label>.npy (and
    ibmGestureTest/), e.g. extracted from ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz, or
    what tonic.datasets.DVSGesture(save_to={root!s}) downloaded;
  * the raw IBM release (CC BY 4.0, from IBM's DVS128 Gesture page): {root!s}/DvsGesture/ with
    userXX_<lighting>.aedat, userXX_<lighting>_labels.csv, trials_to_train.txt and
    trials_to_test.txt.
Then call load_dvs_gesture({root!s}, train=...)."""

_TRIAL = re.compile(r"^user(\d+)_(.+)$")


class EventDataset(Sequence):
    """A sequence of ``(events, label)`` samples, loaded lazily.

    Parameters
    ----------
    load : callable ``i -> events``
        Returns sample ``i``'s event array.
    targets : sequence of int, shape (n,)
    sensor_size : (W, H, P)
    transform : callable ``events -> anything``, optional
        Applied to every sample on access (e.g. a :func:`to_frame` partial).
    source : str
        Which loader made it (report it with any sample count).
    info : dict of str to sequence, optional
        Per-sample metadata (``users``, ``lighting``, ``paths``...), each of length n.
    """

    def __init__(self, load: Callable[[int], np.ndarray], targets, sensor_size, *,
                 transform: Callable | None = None, source: str = "in memory",
                 info: dict | None = None):
        self._load = load
        self.targets = _class_indices(targets)
        self.sensor_size = check_sensor_size(sensor_size)
        self.transform = transform
        self.source = source
        self.info = {k: list(v) for k, v in (info or {}).items()}
        for key, values in self.info.items():
            if len(values) != len(self.targets):
                raise ValueError(f"info[{key!r}] has {len(values)} entries for "
                                 f"{len(self.targets)} samples")

    @classmethod
    def from_arrays(cls, events: Sequence[np.ndarray], targets, sensor_size, *,
                    transform: Callable | None = None, source: str = "in memory"
                    ) -> EventDataset:
        """Wrap in-memory ``(events list, targets)``, e.g. from
        :func:`synthetic_gesture_dataset`."""
        events = list(events)
        if len(events) != len(targets):
            raise ValueError(f"got {len(events)} event arrays for {len(targets)} targets")
        return cls(events.__getitem__, targets, sensor_size, transform=transform, source=source)

    @classmethod
    def from_pairs(cls, pairs: Sequence, sensor_size=None, *,
                   transform: Callable | None = None) -> EventDataset:
        """Wrap any sequence of ``(events, label)`` pairs, e.g. a ``tonic`` dataset instance.

        Samples are read from ``pairs`` on access. Labels come from ``pairs.targets`` when it
        has them (tonic datasets do), otherwise every pair is read once. ``sensor_size``
        defaults to ``pairs.sensor_size``.
        """
        if sensor_size is None:
            sensor_size = getattr(pairs, "sensor_size", None)
            if sensor_size is None:
                raise ValueError("sensor_size is required when pairs has no sensor_size")
        targets = getattr(pairs, "targets", None)
        if targets is None or len(targets) != len(pairs):
            targets = [int(pairs[i][1]) for i in range(len(pairs))]
        return cls(lambda i: pairs[i][0], targets, sensor_size, transform=transform,
                   source=f"pairs from {type(pairs).__name__}")

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if isinstance(index, bool | np.bool_) or not isinstance(index, int | np.integer):
            raise TypeError(f"index must be an int or a slice, got {index!r}")
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        events = self._load(index)
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[index])

    def with_transform(self, transform: Callable | None) -> EventDataset:
        """The same samples with another ``transform``."""
        return EventDataset(self._load, self.targets, self.sensor_size, transform=transform,
                            source=self.source, info=self.info)

    def __repr__(self) -> str:
        counts = np.bincount(self.targets) if len(self) else []
        return (f"EventDataset({len(self)} samples, sensor_size={self.sensor_size}, "
                f"source={self.source!r}, per class={list(counts)})")


def _class_indices(targets) -> np.ndarray:
    """``targets`` as int64 class indices (1-D, whole numbers, >= 0): a float label is not
    truncated to a class, and a negative one is not a class."""
    array = np.asarray(targets)
    if array.ndim != 1:
        raise ValueError(f"targets must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"targets must be integer class indices, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.trunc(array))):
        raise ValueError("targets must be whole numbers (class indices), got "
                         f"{array[~(np.isfinite(array) & (array == np.trunc(array)))][0]!r}")
    if array.min() < 0:
        raise ValueError(f"targets must be class indices >= 0, got {array.min()}")
    return array.astype(np.int64)


# ------------------------------------------------------------------------- tonic layout
def _tonic_folder(root: Path, train: bool) -> Path | None:
    name = "ibmGestureTrain" if train else "ibmGestureTest"
    for candidate in (root / "DVSGesture" / name, root / name, root):
        if candidate.name == name and candidate.is_dir() and any(candidate.glob("*/*.npy")):
            return candidate
    return None


def _load_tonic_npy(path: str) -> np.ndarray:
    # tonic's DVSGesture.__getitem__: columns x, y, p, t (ms); t *= 1000; cast field by field
    raw = np.load(path)
    if raw.ndim != 2 or raw.shape[1] != 4:
        raise ValueError(f"{path}: expected an (n, 4) array of x, y, p, t_ms, got {raw.shape}")
    raw = raw.copy()
    raw[:, 3] *= 1000
    events = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    for column, field in enumerate(("x", "y", "p", "t")):
        events[field] = raw[:, column]
    return events


def _tonic_label(path: Path) -> int:
    """The class of a tonic-layout file ``<label>.npy`` (0-based, one of the 11 gestures)."""
    if not path.stem.isdigit() or int(path.stem) >= len(DVS_GESTURE_CLASSES):
        raise ValueError(f"{path}: tonic's layout names each file <label>.npy with the class "
                         f"0..{len(DVS_GESTURE_CLASSES) - 1}; this name is not one")
    return int(path.stem)


def _tonic_layout(folder: Path, transform) -> EventDataset:
    paths, targets, users, lighting = [], [], [], []
    for trial in sorted(p for p in folder.iterdir() if p.is_dir()):
        match = _TRIAL.match(trial.name)
        if not match:
            continue
        for npy in sorted(trial.glob("*.npy"), key=_tonic_label):
            paths.append(str(npy))
            targets.append(_tonic_label(npy))
            users.append(int(match.group(1)))
            lighting.append(match.group(2))
    return EventDataset(lambda i: _load_tonic_npy(paths[i]), targets, DVS128_SENSOR_SIZE,
                        transform=transform, source=f"tonic layout ({folder})",
                        info={"users": users, "lighting": lighting, "paths": paths})


# ----------------------------------------------------------------------- raw IBM layout
def _raw_folder(root: Path, train: bool) -> Path | None:
    name = "trials_to_train.txt" if train else "trials_to_test.txt"
    for candidate in (root / "DvsGesture", root / "DVSGesture", root):
        if (candidate / name).is_file():
            return candidate
    return None


def _read_labels(path: Path) -> np.ndarray:
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if rows.size and (rows.shape[1] != 3 or rows[:, 0].min() < 1 or rows[:, 0].max() > 11):
        raise ValueError(f"{path}: expected rows class,startTime_usec,endTime_usec with "
                         "classes 1..11")
    return rows.reshape(-1, 3)


class _TrialCache:
    """Keeps the last parsed trial: consecutive samples mostly come from the same file."""

    def __init__(self):
        self.path, self.events = None, None

    def get(self, path: str) -> np.ndarray:
        if path != self.path:
            self.path, self.events = path, read_aedat31(path)
        return self.events


def _raw_layout(folder: Path, train: bool, keep_repeated: bool, shift_time: bool,
                transform) -> EventDataset:
    listing = folder / ("trials_to_train.txt" if train else "trials_to_test.txt")
    trials = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    samples, targets, users, lighting = [], [], [], []
    for trial in trials:
        stem = trial[:-len(".aedat")] if trial.endswith(".aedat") else trial
        match = _TRIAL.match(stem)
        aedat, csv = folder / f"{stem}.aedat", folder / f"{stem}_labels.csv"
        if not (match and aedat.is_file() and csv.is_file()):
            raise FileNotFoundError(f"{listing} lists {trial!r} but {aedat.name} and "
                                    f"{csv.name} are not both in {folder}")
        seen = set()
        for label, start, end in _read_labels(csv):
            if not keep_repeated and label in seen:
                continue
            seen.add(label)
            samples.append((str(aedat), int(start), int(end)))
            targets.append(int(label) - 1)
            users.append(int(match.group(1)))
            lighting.append(match.group(2))
    cache = _TrialCache()

    def load(i: int) -> np.ndarray:
        path, start, end = samples[i]
        events = cache.get(path)
        t = events["t"]
        sample = events[(t >= start) & (t < end)].copy()
        if shift_time:
            sample["t"] -= start
        return sample

    kind = "all CSV rows" if keep_repeated else "first row per class and trial"
    return EventDataset(load, targets, DVS128_SENSOR_SIZE, transform=transform,
                        source=f"raw IBM layout, {kind} ({folder})",
                        info={"users": users, "lighting": lighting,
                              "rows": [s[1:] for s in samples]})


def load_dvs_gesture(root: str | os.PathLike, *, train: bool = True, layout: str = "auto",
                     keep_repeated: bool = True, shift_time: bool = True,
                     transform: Callable | None = None) -> EventDataset:
    """DVS128 Gesture from ``root`` (tonic's layout or the raw IBM one; see the module doc).

    Parameters
    ----------
    root : path
        The folder given to tonic as ``save_to``, or one holding the raw release.
    train : bool
        Training split (users 1–23) or test split (users 24–29).
    layout : {"auto", "tonic", "raw"}
        ``"auto"`` prefers tonic's layout when both are present.
    keep_repeated, shift_time : bool
        Raw layout only (see the module docstring).
    transform : callable, optional
        Applied to every sample's events on access.

    Returns
    -------
    EventDataset
        ``(events, label)`` samples, labels 0..10 (:data:`DVS_GESTURE_CLASSES`), sorted by
        trial then label (tonic lists trials in file-system order); ``dataset.info`` holds
        ``users`` and ``lighting``; ``dataset.source`` says which loader was used.

    Raises
    ------
    FileNotFoundError
        Neither layout is under ``root``; the message says where to put the data.
    """
    root = Path(root).expanduser()
    if layout not in ("auto", "tonic", "raw"):
        raise ValueError(f"layout must be 'auto', 'tonic' or 'raw', got {layout!r}")
    if layout in ("auto", "tonic"):
        folder = _tonic_folder(root, train)
        if folder is not None:
            return _tonic_layout(folder, transform)
    if layout in ("auto", "raw"):
        folder = _raw_folder(root, train)
        if folder is not None:
            return _raw_layout(folder, train, keep_repeated, shift_time, transform)
    raise FileNotFoundError(MISSING_DATA_HELP.format(root=root))
