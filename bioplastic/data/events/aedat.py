"""AEDAT 3.1 files (the DVS128 Gesture recordings): a reader, and a writer for tests and tools.

Layout (little-endian):

* an ASCII header of lines starting with ``#``: the version line ``#!AER-DAT3.1`` first,
  ``#!END-HEADER`` (ending ``\\r\\n``) last;
* then packets, each a 28-byte header ``uint16 eventType, uint16 eventSource, uint32
  eventSize, eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid``
  followed by ``eventCapacity · eventSize`` bytes of events.

Polarity packets (``eventType == 1``, ``eventSize == 8``) hold ``uint32 data, uint32
timestamp`` pairs: ``x = (data >> 17) & 0x1FFF``, ``y = (data >> 2) & 0x1FFF``,
``p = (data >> 1) & 1``, and the time in µs is ``timestamp | (eventTSOverflow << 31)``. Bit 0
of ``data`` is a validity mark that, like the common reference parsers, the reader does not
check; like them it also reads ``eventCapacity`` events per packet, not ``eventNumber``.
Packets of other types are skipped by their byte length.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

import numpy as np

from ._core import EVENT_DTYPE, check_events

__all__ = ["read_aedat31", "write_aedat31", "POLARITY_EVENT"]

POLARITY_EVENT = 1
_PACKET_HEADER = struct.Struct("<HHIIIIII")          # 28 bytes
_POLARITY_RECORD = np.dtype([("data", "<u4"), ("timestamp", "<u4")])
_END_HEADER = b"#!END-HEADER"


def _split_header(raw: bytes, path) -> tuple[list[str], int]:
    """Header lines (decoded, without line ends) and the offset of the first packet."""
    lines, pos = [], 0
    while pos < len(raw) and raw[pos:pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: header line at byte {pos} has no line end")
        line = raw[pos:end].rstrip(b"\r")
        lines.append(line.decode("ascii", errors="replace"))
        pos = end + 1
        if line.startswith(_END_HEADER):
            return lines, pos
    raise ValueError(f"{path}: no '#!END-HEADER' line; not an AEDAT 3.1 file")


def read_aedat31(path: str | os.PathLike) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray, shape (n,), dtype :data:`EVENT_DTYPE`
        Events of every polarity packet in file order (t in µs, as recorded: absolute device
        time, not shifted to 0).

    Raises
    ------
    ValueError
        Not AEDAT 3.x, a truncated packet, or a polarity packet whose event size is not 8.
    """
    raw = open(path, "rb").read()
    lines, pos = _split_header(raw, path)
    if not lines[0].startswith("#!AER-DAT3"):
        raise ValueError(f"{path}: expected the version line '#!AER-DAT3.1', got {lines[0]!r}")
    chunks = []
    while pos < len(raw):
        if len(raw) - pos < _PACKET_HEADER.size:
            raise ValueError(f"{path}: truncated packet header at byte {pos}")
        (kind, _source, size, _ts_offset, overflow, capacity, _number,
         _valid) = _PACKET_HEADER.unpack_from(raw, pos)
        pos += _PACKET_HEADER.size
        n_bytes = capacity * size
        if len(raw) - pos < n_bytes:
            raise ValueError(f"{path}: packet at byte {pos - _PACKET_HEADER.size} needs "
                             f"{n_bytes} bytes, {len(raw) - pos} left")
        if kind == POLARITY_EVENT:
            if size != _POLARITY_RECORD.itemsize:
                raise ValueError(f"{path}: polarity packet with eventSize {size}, expected 8")
            chunks.append((np.frombuffer(raw, _POLARITY_RECORD, capacity, pos), overflow))
        pos += n_bytes
    return _decode(chunks)


def _decode(chunks) -> np.ndarray:
    n = sum(c.shape[0] for c, _ in chunks)
    events = np.empty(n, dtype=EVENT_DTYPE)
    start = 0
    for records, overflow in chunks:
        stop = start + records.shape[0]
        data = records["data"]
        events["x"][start:stop] = (data >> 17) & 0x1FFF
        events["y"][start:stop] = (data >> 2) & 0x1FFF
        events["p"][start:stop] = (data >> 1) & 1
        events["t"][start:stop] = records["timestamp"].astype(np.int64) | (overflow << 31)
        start = stop
    return events


def write_aedat31(path: str | os.PathLike, events: np.ndarray, *, packet_size: int = 4096,
                  extra_packets: Sequence[tuple[int, int, bytes]] = (),
                  header_lines: Sequence[str] = ("#Format: RAW", "#Source 1: DVS128")) -> None:
    """Write events as an AEDAT 3.1 file that :func:`read_aedat31` reads back identically.

    Events are split into polarity packets of at most ``packet_size`` events that never span
    two values of ``t >> 31`` (the packet's ``eventTSOverflow``). ``data`` carries the validity
    bit 0 set, as recorded files do.

    Parameters
    ----------
    path : str or path-like
    events : structured ndarray, shape (n,)
        x, y < 8192, p in {0, 1}, t >= 0 (µs).
    packet_size : int
    extra_packets : sequence of (eventType, eventSize, payload bytes)
        Non-polarity packets written after the first polarity packet (``len(payload)`` must be a
        multiple of ``eventSize``); readers must skip them.
    header_lines : sequence of str
        Lines between the version line and ``#!END-HEADER`` (each must start with ``#``).
    """
    check_events(events, sorted_required=False)
    if events.size and (events["x"].max() >= 8192 or events["y"].max() >= 8192):
        raise ValueError("events['x'] and events['y'] must lie in [0, 8192) for AEDAT 3.1")
    if events.size and events["p"].max() > 1:
        raise ValueError(f"events['p'] must be 0 or 1 for AEDAT 3.1 (one polarity bit), got "
                         f"a maximum of {events['p'].max()}")
    if not isinstance(packet_size, int) or packet_size < 1:
        raise ValueError(f"packet_size must be a positive int, got {packet_size!r}")
    if any(not line.startswith("#") for line in header_lines):
        raise ValueError("every header line must start with '#'")
    t = events["t"].astype(np.int64)
    data = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
            | (events["p"].astype(np.uint32) << 1) | np.uint32(1))
    header = ["#!AER-DAT3.1", *header_lines, "#!END-HEADER"]
    with open(path, "wb") as out:
        out.write("".join(line + "\r\n" for line in header).encode("ascii"))
        packets = list(_polarity_packets(data, t, packet_size))
        for i, packet in enumerate(packets or [b""]):
            out.write(packet)
            if i == 0:
                for kind, size, payload in extra_packets:
                    out.write(_other_packet(kind, size, payload))


def _polarity_packets(data, t, packet_size):
    overflow = t >> 31
    boundaries = np.flatnonzero(np.diff(overflow)) + 1
    for part in np.split(np.arange(t.size), boundaries):
        for start in range(0, part.size, packet_size):
            index = part[start:start + packet_size]
            records = np.empty(index.size, dtype=_POLARITY_RECORD)
            records["data"] = data[index]
            records["timestamp"] = (t[index] & 0x7FFFFFFF).astype(np.uint32)
            head = _PACKET_HEADER.pack(POLARITY_EVENT, 1, 8, 4, int(overflow[index[0]]),
                                       index.size, index.size, index.size)
            yield head + records.tobytes()


def _other_packet(kind: int, size: int, payload: bytes) -> bytes:
    if kind == POLARITY_EVENT or size < 1 or len(payload) % size:
        raise ValueError("extra_packets need a non-polarity eventType and a payload that is a "
                         f"whole number of eventSize bytes, got ({kind}, {size}, "
                         f"{len(payload)} bytes)")
    n = len(payload) // size
    return _PACKET_HEADER.pack(kind, 1, size, 4, 0, n, n, n) + payload
