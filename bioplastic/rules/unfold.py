"""Conv layers reuse the dense rules through unfolded patches.

A conv layer with weights ``(O, C, kh, kw)`` applied to ``x`` (B, C, H, W) is the dense layer
``(O, C·kh·kw)`` applied to every patch. :func:`unfold_patches` lays the patches out as rows
``(B·Ho·Wo, C·kh·kw)`` — sample-major, then output row, then output column; each patch flattened
in ``(C, kh, kw)`` order, exactly like ``torch.nn.functional.unfold`` and ``w.reshape(O, -1)`` —
so a dense rule on those rows, with the batch *and* the positions summed, is the conv rule.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array

__all__ = ["unfold_patches", "conv_output_size", "PADDING_MODES"]

#: ``zeros`` pads with 0 (torch's default), ``reflect`` mirrors without repeating the edge
#: (``numpy.pad(mode="reflect")`` = torch's ``reflect``; used by the SoftHebb CNN).
PADDING_MODES = {"zeros": "constant", "reflect": "reflect"}


def _pair(name: str, value, low: int) -> tuple[int, int]:
    values = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int | np.integer)
                               for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < low for v in values):
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
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
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=PADDING_MODES[padding_mode])
    ho = conv_output_size(x.shape[2], kh, sh, ph, dh)
    wo = conv_output_size(x.shape[3], kw, sw, pw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}x{kw} (dilation {dh}x{dw}) does not fit the padded input "
                         f"{padded.shape[2:]}")
    sb, sc, s_row, s_col = padded.strides
    # View (B, Ho, Wo, C, kh, kw): position strides step by the stride, kernel strides by the
    # dilation; reshaping the view copies it into rows.
    view = np.lib.stride_tricks.as_strided(
        padded, shape=(x.shape[0], ho, wo, x.shape[1], kh, kw),
        strides=(sb, s_row * sh, s_col * sw, sc, s_row * dh, s_col * dw), writeable=False)
    return view.reshape(x.shape[0] * ho * wo, x.shape[1] * kh * kw), (ho, wo)
