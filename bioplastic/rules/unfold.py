"""Conv layers reuse the dense rules through unfolded patches.

A conv layer with weights ``(O, C, kh, kw)`` applied to ``x`` (B, C, H, W) is the dense layer
``(O, C·kh·kw)`` applied to every patch. :func:`unfold_patches` lays the patches out as rows
``(B·Ho·Wo, C·kh·kw)`` — sample-major, then output row, then output column; each patch flattened
in ``(C, kh, kw)`` order, exactly like ``torch.nn.functional.unfold`` and ``w.reshape(O, -1)`` —
so a dense rule on those rows, with the batch *and* the positions summed, is the conv rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._validate import as_float_array

__all__ = ["unfold_patches", "conv_output_size", "PADDING_MODES"]

#: ``zeros`` pads with 0 (torch's default), ``reflect`` mirrors without repeating the edge
#: (``numpy.pad(mode="reflect")`` = torch's ``reflect``; used by the SoftHebb CNN).
PADDING_MODES = {"zeros": "constant", "reflect": "reflect"}


#: Largest kernel size, stride, padding or dilation accepted (the kernels index with int64; a
#: geometry beyond 2**31 could not fit in memory anyway).
_MAX_GEOMETRY = 2**31 - 1


def _pair(name: str, value, low: int) -> tuple[int, int]:
    values = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int | np.integer)
                               for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < low or v > _MAX_GEOMETRY for v in values):
        raise ValueError(f"{name} must lie in [{low}, {_MAX_GEOMETRY}], got {value!r}")
    return int(values[0]), int(values[1])


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def unfold_patches(x, kernel_size, *, stride=1, padding=0, dilation=1,
                   padding_mode: str = "zeros") -> tuple[np.ndarray, tuple[int, int]]:
    """Patches of ``x`` as rows.

    Parameters
    ----------
    x : array (B, C, H, W)
    kernel_size, stride, padding, dilation : int or (int, int)
    padding_mode : 'zeros' or 'reflect'

    Returns
    -------
    patches : float64 (B·Ho·Wo, C·kh·kw), a new array
    (Ho, Wo) : output size
    """
    x = as_float_array("x", x, ndim=4)
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample (empty batch), got shape {x.shape}")
    padded, geometry = pad_for_unfold(x, kernel_size, stride=stride, padding=padding,
                                      dilation=dilation, padding_mode=padding_mode)
    return gather_patches(padded, geometry), (geometry.ho, geometry.wo)


class UnfoldGeometry(NamedTuple):
    ho: int          # output rows
    wo: int          # output columns
    kh: int          # kernel size
    kw: int
    sh: int          # stride
    sw: int
    dh: int          # dilation
    dw: int


def pad_for_unfold(x: np.ndarray, kernel_size, *, stride=1, padding=0, dilation=1,
                   padding_mode: str = "zeros") -> tuple[np.ndarray, UnfoldGeometry]:
    """Check the geometry and pad ``x`` (already a finite float64 (B, C, H, W) array).

    Returns the padded input and the geometry :func:`gather_patches` needs; the patches of
    samples ``a:b`` are ``gather_patches(padded[a:b], geometry)``.
    """
    kh, kw = _pair("kernel_size", kernel_size, 1)
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    dh, dw = _pair("dilation", dilation, 1)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got "
                         f"{padding_mode!r}")
    if padding_mode == "reflect" and (ph >= x.shape[2] or pw >= x.shape[3]):
        raise ValueError(f"reflect padding {padding!r} must be smaller than the input "
                         f"{x.shape[2:]}")
    ho = conv_output_size(x.shape[2], kh, sh, ph, dh)
    wo = conv_output_size(x.shape[3], kw, sw, pw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel_size {kh}x{kw} (dilation {dh}x{dw}) does not fit the padded "
                         f"input {(x.shape[2] + 2 * ph, x.shape[3] + 2 * pw)}")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=PADDING_MODES[padding_mode])
    return padded, UnfoldGeometry(ho, wo, kh, kw, sh, sw, dh, dw)


def gather_patches(padded: np.ndarray, geometry: UnfoldGeometry) -> np.ndarray:
    """Rows ``(B·Ho·Wo, C·kh·kw)`` of a padded input (B, C, H + 2ph, W + 2pw)."""
    g = geometry
    return _gather_patches_kernel(padded, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.ho, g.wo)


@njit
def _gather_patches_kernel(padded, kh, kw, sh, sw, dh, dw, ho, wo):
    """Rows ``(B·Ho·Wo, C·kh·kw)`` of the padded input (one pass; NumPy's copy of a 6-D strided
    view is ~2x slower for the short kernel rows)."""
    n_batch, n_channels = padded.shape[0], padded.shape[1]
    rows = np.empty((n_batch * ho * wo, n_channels * kh * kw))
    r = 0
    for b in range(n_batch):
        for oy in range(ho):
            for ox in range(wo):
                col = 0
                for c in range(n_channels):
                    for i in range(kh):
                        for j in range(kw):
                            rows[r, col] = padded[b, c, oy * sh + i * dh, ox * sw + j * dw]
                            col += 1
                r += 1
    return rows
