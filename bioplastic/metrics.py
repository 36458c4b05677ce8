"""Video-prediction metrics (NumPy): MSE, MAE, SSIM and PSNR as OpenSTL reports them.

Arrays are frame stacks ``(..., C, H, W)``: any leading axes (time and batch, in either
order) index frames, and every metric is averaged over all frames.

* :func:`mse_frame_sum`, :func:`mae_frame_sum` — OpenSTL's ``MSE``/``MAE``: the mean over
  frames of the **sum** over ``C·H·W`` of the squared / absolute error (computed there as
  ``mean over (batch, time)`` then ``sum``). They scale with the frame size, which is why
  Moving MNIST values of 20–60 are normal. Computed on the raw prediction (no clipping).
* :func:`mse_pixel`, :func:`mae_pixel` — the per-pixel means (``mse_frame_sum / (C·H·W)``).
* :func:`psnr` — per frame ``20·log10(1/sqrt(mse))`` with the prediction clipped to
  ``[0, 1]`` and the per-pixel MSE computed in float32 (OpenSTL casts to float32 there),
  averaged over frames; a frame with zero error counts as ``inf``. ``true`` must lie in
  [0, 1]: it is not clipped, and values in another range (uint8 frames in [0, 255]) would
  give meaningless numbers, so they are refused (``ValueError``).
* :func:`ssim` — per frame, the SSIM of scikit-image's ``structural_similarity`` with its
  defaults (7×7 uniform window, sample covariance, ``K1 = 0.01``, ``K2 = 0.03``, the border of
  3 pixels cropped, channels averaged), on the clipped prediction, averaged over frames
  (``true`` in [0, 1], as for :func:`psnr`).
  OpenSTL passes no ``data_range``; scikit-image then takes the float dtype's range ``(-1, 1)``,
  i.e. ``data_range = 2`` (the default here). Pass ``data_range=1.0`` for the textbook value on
  [0, 1] images. Implemented here with :func:`scipy.ndimage.uniform_filter` (reflecting borders,
  as scikit-image), so no scikit-image dependency.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, count, positive

__all__ = ["mse_frame_sum", "mae_frame_sum", "mse_pixel", "mae_pixel", "psnr", "ssim",
           "video_metrics"]


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred = as_float_array("pred", pred)
    true = as_float_array("true", true)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and "
                         f"{true.shape}")
    if pred.ndim < 3 or pred.size == 0:
        raise ValueError(f"pred must be a non-empty frame stack (..., C, H, W), got shape "
                         f"{pred.shape}")
    return pred, true


def _unit_range(true: np.ndarray) -> np.ndarray:
    """``true`` as frames, checked to lie in [0, 1] (only the prediction is clipped)."""
    low, high = float(true.min()), float(true.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"true must lie in [0, 1] (frames scaled to [0, 1]; only pred is "
                         f"clipped), got values in [{low:g}, {high:g}]; divide uint8 frames "
                         "by 255")
    return _frames(true)


def _frames(a: np.ndarray) -> np.ndarray:
    """``(..., C, H, W)`` -> ``(n_frames, C, H, W)``."""
    return a.reshape((-1,) + a.shape[-3:])


def mse_frame_sum(pred, true) -> float:
    """Mean over frames of ``Σ_{c,h,w} (pred - true)²`` (OpenSTL's ``MSE``)."""
    pred, true = _pair(pred, true)
    return float(np.mean((_frames(pred) - _frames(true)) ** 2, axis=0).sum())


def mae_frame_sum(pred, true) -> float:
    """Mean over frames of ``Σ_{c,h,w} |pred - true|`` (OpenSTL's ``MAE``)."""
    pred, true = _pair(pred, true)
    return float(np.mean(np.abs(_frames(pred) - _frames(true)), axis=0).sum())


def mse_pixel(pred, true) -> float:
    """Per-pixel mean squared error."""
    pred, true = _pair(pred, true)
    return float(np.mean((pred - true) ** 2))


def mae_pixel(pred, true) -> float:
    """Per-pixel mean absolute error."""
    pred, true = _pair(pred, true)
    return float(np.mean(np.abs(pred - true)))


def psnr(pred, true) -> float:
    """Mean over frames of ``20·log10(1/sqrt(mse))`` on the prediction clipped to [0, 1]."""
    pred, true = _pair(pred, true)
    pred = np.clip(_frames(pred), 0.0, 1.0).astype(np.float32)
    true = _unit_range(true).astype(np.float32)
    values = []
    for p, t in zip(pred, true, strict=True):
        mse = np.mean((p - t) ** 2)
        values.append(float("inf") if mse == 0 else float(20.0 * np.log10(1.0 / np.sqrt(mse))))
    return float(np.mean(values))


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float, win_size: int) -> float:
    from scipy.ndimage import uniform_filter

    n_points = win_size ** 2
    cov_norm = n_points / (n_points - 1.0)   # sample covariance, as scikit-image's default
    ux, uy = uniform_filter(x, win_size), uniform_filter(y, win_size)
    uxx, uyy = uniform_filter(x * x, win_size), uniform_filter(y * y, win_size)
    uxy = uniform_filter(x * y, win_size)
    vx, vy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(pred, true, *, data_range: float = 2.0, win_size: int = 7) -> float:
    """Mean over frames (and channels) of SSIM on the prediction clipped to [0, 1].

    ``data_range=2`` reproduces OpenSTL's call of scikit-image (see the module docstring).
    Frames must be at least ``win_size`` pixels on each side; ``true`` must lie in [0, 1].
    """
    pred, true = _pair(pred, true)
    data_range = positive("data_range", data_range)
    if count("win_size", win_size, low=3) % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}")
    win_size = int(win_size)
    if min(pred.shape[-2:]) < win_size:
        raise ValueError(f"frames must be at least win_size={win_size} pixels on each side, "
                         f"got {pred.shape[-2:]}")
    pred = np.clip(_frames(pred), 0.0, 1.0)
    true = _unit_range(true)
    values = [np.mean([_ssim_channel(p[c], t[c], data_range, win_size)
                       for c in range(p.shape[0])]) for p, t in zip(pred, true, strict=True)]
    return float(np.mean(values))


def video_metrics(pred, true, *, data_range: float = 2.0) -> dict[str, float]:
    """All of them, under names that say what they are."""
    return {"mse_frame_sum": mse_frame_sum(pred, true), "mae_frame_sum": mae_frame_sum(pred, true),
            "mse_pixel": mse_pixel(pred, true), "mae_pixel": mae_pixel(pred, true),
            "ssim": ssim(pred, true, data_range=data_range), "psnr_db": psnr(pred, true)}
