"""Common corruptions: CIFAR-10-C (15 types × 5 severities), digits-C, and a CIFAR-10-C loader.

Reference: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019, arXiv 1903.12261; generator ``make_cifar_c.py`` in
hendrycks/robustness (Apache-2.0). Recipes and parameters: ``docs/tta.md``.
Everything here is re-implemented from those descriptions with NumPy/SciPy only (no OpenCV,
Wand/ImageMagick, PIL, scikit-image or torchvision), so the pixels are **close to, not identical
with** the distributed CIFAR-10-C. Deviations (all deliberate, all documented in docs/tta.md):

* ``defocus_blur``: OpenCV ``GaussianBlur`` (3×3) of the disk and ``filter2D`` are written out
  (separable 3-tap Gaussian; ``mirror`` = OpenCV's BORDER_REFLECT_101).
* ``motion_blur`` (and the blur inside ``snow``): ImageMagick's ``MotionBlur`` is re-implemented
  as its one-sided kernel: ``2·radius + 1`` taps with weights ``exp(-i²/2σ²)`` at integer offsets
  ``round(i·cos θ), round(i·sin θ)``, edge pixels repeated.
* ``frost``: the six frost photographs are not distributed here; a procedural plasma-fractal
  texture (decay 1.5) replaces them, keeping ``a·x + b·frost``.
* ``pixelate``: PIL's BOX resampling is written out (box filter of width ``scale`` evaluated at
  pixel centres, normalised per output pixel).
* ``jpeg_compression``: baseline JPEG written out — JFIF YCbCr, 4:2:0 chroma subsampling by 2×2
  averaging, orthonormal 8×8 DCT in floating point, IJG quality-scaled tables, nearest chroma
  upsampling (libjpeg uses integer DCTs and "fancy" triangular upsampling).
* ``glass_blur`` keeps the original's offsets drawn with an exclusive upper bound, i.e. in
  ``{-Δ, …, Δ-1}``.

Images are ``(H, W, 3)`` or ``(N, H, W, 3)``, either uint8 in [0, 255] or float in [0, 1]; the
output has the input's shape and dtype and stays in range. The result is deterministic given
``seed``: one ``numpy.random.Generator`` is drawn from in image order.

digits-C applies the digit-specific recipes to scikit-learn's 8×8
digits (grey, [0, 1]) and adds an MNIST-C-style geometric suite (rotate, shear, scale,
translate). Choices where the spec is silent are listed in :func:`corrupt_digits`.

File format of the real CIFAR-10-C: ``<corruption>.npy`` uint8 ``(5·n, 32, 32, 3)``, severities
1..5 stacked, and ``labels.npy`` ``(5·n,)``; :func:`load_cifar10c` reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import fft, ndimage

from .._jit import njit
from .._validate import as_generator

__all__ = [
    "CORRUPTIONS",
    "VALIDATION_CORRUPTIONS",
    "DIGITS_CORRUPTIONS",
    "DIGITS_HELD_OUT",
    "GEOMETRIC_CORRUPTIONS",
    "corrupt",
    "corrupt_digits",
    "digits_c",
    "load_cifar10c",
]

#: The 15 test corruptions in the canonical (Tent / RobustBench) order.
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)
#: Held-out corruptions for tuning only (``spatter`` is not implemented: it needs Canny edges).
VALIDATION_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "saturate")
#: digits-C: the 15 CIFAR-style types with the digit recipes below.
DIGITS_CORRUPTIONS = CORRUPTIONS
#: MNIST-C-style geometric shifts for digits (library choice of severities, see corrupt_digits).
GEOMETRIC_CORRUPTIONS = ("rotate", "shear", "scale", "translate")
#: Held-out digits shifts for tuning test-time adaptation (never the 15 test types): the
#: geometric suite plus digit versions of two CIFAR-10-C validation corruptions.
DIGITS_HELD_OUT = GEOMETRIC_CORRUPTIONS + ("speckle_noise", "gaussian_blur")

# ---------------------------------------------------------------------------------------------
# Parameters. CIFAR: hendrycks/robustness make_cifar_c.py. Digits: the library's recipes
# (measured prototype).
# ---------------------------------------------------------------------------------------------
_CIFAR = {
    "gaussian_noise": (.04, .06, .08, .09, .10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (.01, .02, .03, .05, .07),
    "defocus_blur": ((.3, .4), (.4, .5), (.5, .6), (1, .2), (1.5, .1)),
    "glass_blur": ((.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),
    "snow": ((.1, .2, 1, .6, 8, 3, .95), (.1, .2, 1, .5, 10, 4, .9),
             (.15, .3, 1.75, .55, 10, 4, .9), (.25, .3, 2.25, .6, 12, 6, .85),
             (.3, .3, 1.25, .65, 14, 12, .8)),
    "frost": ((1, .2), (1, .3), (.9, .4), (.85, .4), (.75, .45)),
    "fog": ((.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (.05, .1, .15, .2, .3),
    "contrast": (.75, .5, .4, .3, .15),
    "elastic_transform": tuple(tuple(32 * v for v in t) for t in (
        (0, 0, .08), (.05, .2, .07), (.08, .06, .06), (.1, .04, .05), (.1, .03, .03))),
    "pixelate": (.95, .9, .85, .75, .65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (.06, .1, .12, .16, .2),
    "gaussian_blur": (.4, .6, .7, .8, 1),
    "saturate": ((.3, 0), (.1, 0), (1.5, 0), (2, .1), (2.5, .2)),
}
_DIGITS = {
    "gaussian_noise": (.08, .12, .18, .26, .38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (.03, .06, .09, .17, .27),
    "defocus_blur": ((.5, .4), (.5, .6), (1, .3), (1, .5), (1.5, .5)),
    "glass_blur": ((.2, .05), (.3, .1), (.4, .2), (.5, .3), (.6, .45)),
    "motion_blur": (.75, 1, 1.25, 1.5, 2),
    "zoom_blur": ((1.1, .02), (1.2, .02), (1.3, .03), (1.45, .045), (1.6, .06)),
    "snow": ((.1, .2, .6, 1, .95), (.1, .2, .5, 1.5, .9), (.15, .3, .55, 1.5, .9),
             (.25, .3, .6, 2, .85), (.3, .3, .65, 2.5, .8)),
    "frost": ((1, .3), (.95, .4), (.9, .5), (.85, .6), (.75, .7)),
    "fog": _CIFAR["fog"],
    "brightness": (.1, .2, .3, .4, .5),
    "contrast": _CIFAR["contrast"],
    "elastic_transform": tuple(tuple(8 * v for v in t) for t in (
        (.05, .1, .02), (.1, .1, .03), (.15, .1, .04), (.2, .1, .05), (.25, .1, .06))),
    "pixelate": (7, 6, 5, 4, 3),
    "jpeg_compression": (20, 12, 8, 5, 3),
    # Geometric (library choice): magnitude grows linearly to MNIST-C's value at severity 5,
    # i.e. rotate 0.4 rad, shear 0.4, scale 1/0.7, translate 3 px of 28 (= 0.857 px of 8).
    "rotate": tuple(.4 * s / 5 for s in range(1, 6)),
    "shear": tuple(.4 * s / 5 for s in range(1, 6)),
    "scale": tuple(1 + (1 / .7 - 1) * s / 5 for s in range(1, 6)),
    "translate": tuple(3 / 28 * s / 5 for s in range(1, 6)),
    # Held-out intensity shifts (library choice): speckle at the ImageNet-C strengths (as the
    # digits noise types), Gaussian blur at the CIFAR-10-C σ.
    "speckle_noise": (.15, .2, .35, .45, .6),
    "gaussian_blur": _CIFAR["gaussian_blur"],
}

# IJG / JPEG Annex K base quantisation tables (quality 50).
_Q_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], float)
_Q_CHROMA = np.full((8, 8), 99.0)
_Q_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


# ---------------------------------------------------------------------------------------------
# Shared primitives on one float image (H, W, C) in [0, 1]
# ---------------------------------------------------------------------------------------------
def _gray(x: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601, as OpenCV's RGB2GRAY) of ``(H, W, C)`` → ``(H, W, 1)``."""
    if x.shape[-1] == 1:
        return x
    return (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]


def _rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    delta = v - x.min(-1)
    s = np.divide(delta, v, out=np.zeros_like(v), where=v > 0)
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], -1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(int) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape)
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[..., 0] = np.where(sel, r, out[..., 0])
        out[..., 1] = np.where(sel, g, out[..., 1])
        out[..., 2] = np.where(sel, b, out[..., 2])
    return out


def _clipped_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """Zoom the centre of ``(H, W, C)`` by ``zoom`` ≥ 1 (order-1) and crop back to (H, W)."""
    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    z = ndimage.zoom(x[top:top + ch, left:left + cw], (zoom, zoom, 1), order=1)
    th, tl = (z.shape[0] - h) // 2, (z.shape[1] - w) // 2
    return z[th:th + h, tl:tl + w]


def _plasma(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Periodic diamond-square plasma fractal ``(n, n)`` in [0, 1], n = power of 2 ≥ size.

    The random amplitude starts at 100 and is divided by ``decay`` at every halving.
    """
    n = 1 << max(int(np.ceil(np.log2(max(size, 2)))), 1)
    m = np.zeros((n, n))
    step, wibble = n, 100.0
    while step >= 2:
        half = step // 2
        corners = m[0::step, 0::step]
        # squares: the centre of each cell is the mean of its 4 corners (periodic) plus noise
        sq = corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1)
        sq = sq + np.roll(np.roll(corners, -1, 0), -1, 1)
        m[half::step, half::step] = sq / 4 + wibble * rng.uniform(-1, 1, sq.shape)
        centres = m[half::step, half::step]
        # diamonds: edge midpoints are the mean of 2 corners and 2 centres (periodic)
        row = corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)
        m[0::step, half::step] = row / 4 + wibble * rng.uniform(-1, 1, row.shape)
        col = corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)
        m[half::step, 0::step] = col / 4 + wibble * rng.uniform(-1, 1, col.shape)
        wibble /= decay
        step = half
    m -= m.min()
    return m / m.max()


def _shift_sum(x: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``out[y, x] = Σ_i weights_i · x[y + dy_i, x + dx_i]`` with edge pixels repeated.

    ``offsets`` is ``(k, 2)`` integer (dy, dx); ``x`` is ``(H, W, C)``.
    """
    h, w = x.shape[:2]
    pad = int(np.abs(offsets).max()) if len(offsets) else 0
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros_like(x)
    for (dy, dx), wt in zip(offsets, weights, strict=True):
        out += wt * padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    return out


def _magick_motion(x: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """ImageMagick-style one-sided motion blur (see module docstring)."""
    width = int(2 * radius + 1)
    i = np.arange(width)
    weights = np.exp(-(i**2) / (2.0 * sigma**2))
    theta = np.deg2rad(angle_deg)
    offsets = np.stack([np.round(i * np.sin(theta)), np.round(i * np.cos(theta))], 1).astype(int)
    return _shift_sum(x, offsets, weights / weights.sum())


def _line_motion(x: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Uniform one-sided line of sub-pixel ``length`` at ``angle_deg``, anti-aliased.

    64 points along the line are splatted bilinearly onto the integer offset grid, so lengths
    below one pixel give a proportionally weak blur (digits-C's fix of a too strong severity 1).
    """
    t = np.linspace(0.0, length, 64)
    theta = np.deg2rad(angle_deg)
    ys, xs = t * np.sin(theta), t * np.cos(theta)
    kernel: dict[tuple[int, int], float] = {}
    for y, xx in zip(ys, xs, strict=True):
        y0, x0 = int(np.floor(y)), int(np.floor(xx))
        fy, fx = y - y0, xx - x0
        for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)),
                           (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            key = (y0 + dy, x0 + dx)
            kernel[key] = kernel.get(key, 0.0) + wt
    offsets = np.array(list(kernel.keys()), dtype=int)
    weights = np.array(list(kernel.values()))
    return _shift_sum(x, offsets, weights / weights.sum())


def _disk(radius: float, alias_sigma: float, half: int) -> np.ndarray:
    """Normalised disk on a ``(2·half+1)²`` grid, smoothed by a 3-tap Gaussian (OpenCV ksize 3)."""
    grid = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).astype(float)
    disk /= disk.sum()
    taps = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * alias_sigma**2))
    taps /= taps.sum()
    disk = ndimage.correlate1d(disk, taps, axis=0, mode="mirror")
    return ndimage.correlate1d(disk, taps, axis=1, mode="mirror")


def _filter_channels(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    return ndimage.correlate(x, kernel[:, :, None], mode=mode)


def _resample_matrix(n_in: int, n_out: int, kind: str) -> np.ndarray:
    """``(n_out, n_in)`` PIL-style resampling weights ('box', 'triangle' or 'nearest')."""
    scale = n_in / n_out
    mat = np.zeros((n_out, n_in))
    if kind == "nearest":
        source = np.minimum((np.arange(n_out) + 0.5) * scale, n_in - 1).astype(int)
        mat[np.arange(n_out), source] = 1
        return mat
    filter_scale = max(scale, 1.0)
    support = (0.5 if kind == "box" else 1.0) * filter_scale
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        u = (np.arange(lo, hi) + 0.5 - centre) / filter_scale
        if kind == "box":
            # PIL's box is 1 on (-0.5, 0.5] (Pillow >= 7, PR #4278). With this rounding of lo and
            # hi, the older [-0.5, 0.5) left some rows empty (0/0 = NaN; e.g. 2 -> 3 pixels);
            # both give the same weights at CIFAR's 32 <-> 20..30 pixels.
            wts = ((u > -0.5) & (u <= 0.5)).astype(float)
        else:
            wts = np.maximum(0.0, 1.0 - np.abs(u))
        mat[i, lo:hi] = wts / wts.sum()
    return mat


def _resize(x: np.ndarray, size: tuple[int, int], kind: str) -> np.ndarray:
    rows = _resample_matrix(x.shape[0], size[0], kind)
    cols = _resample_matrix(x.shape[1], size[1], kind)
    return np.einsum("ih,hwc,jw->ijc", rows, x, cols)


def _blockwise_dct_quantise(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """JPEG round trip of one plane in [0, 255]: 8×8 DCT, quantise with ``table``, inverse."""
    h, w = plane.shape
    ph, pw = -h % 8, -w % 8
    p = np.pad(plane, ((0, ph), (0, pw)), mode="edge") - 128.0
    # (H, W) -> (H/8, 8, W/8, 8) -> blocks (H/8, W/8, 8, 8)
    blocks = p.reshape(p.shape[0] // 8, 8, p.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    coef = fft.dctn(blocks, axes=(2, 3), norm="ortho")
    coef = np.round(coef / table) * table
    rec = fft.idctn(coef, axes=(2, 3), norm="ortho").transpose(0, 2, 1, 3).reshape(p.shape)
    return rec[:h, :w] + 128.0


def _quality_table(base: np.ndarray, quality: float) -> np.ndarray:
    """IJG scaling: 5000/q for q < 50, else 200 - 2q (percent), clipped to [1, 255]."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((base * scale + 50.0) / 100.0), 1, 255)


def _jpeg_rgb(x: np.ndarray, quality: float) -> np.ndarray:
    rgb = np.round(x * 255.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    h, w = y.shape
    y = _blockwise_dct_quantise(y, _quality_table(_Q_LUMA, quality))
    chroma = []
    for plane in (cb, cr):
        # 4:2:0: average 2×2 (edge-padded to even size), code, repeat back up
        pp = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
        small = pp.reshape(pp.shape[0] // 2, 2, pp.shape[1] // 2, 2).mean((1, 3))
        small = _blockwise_dct_quantise(small, _quality_table(_Q_CHROMA, quality))
        chroma.append(small.repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0)
    cb, cr = chroma
    out = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    return np.clip(np.round(out), 0, 255) / 255.0


@njit
def _swap_pixels(x, positions, offsets):
    """Sequential pixel swaps: for each i, swap x[positions[i]] with x[positions[i] + offsets[i]].

    ``x`` is ``(H, W, C)`` and is modified in place (callers pass a private copy).
    """
    for i in range(positions.shape[0]):
        h, w = positions[i, 0], positions[i, 1]
        h2, w2 = h + offsets[i, 0], w + offsets[i, 1]
        for c in range(x.shape[2]):
            tmp = x[h, w, c]
            x[h, w, c] = x[h2, w2, c]
            x[h2, w2, c] = tmp
    return x


def _elastic(x: np.ndarray, alpha: float, sigma: float, affine: float,
             rng: np.random.Generator) -> np.ndarray:
    """Random 3-point affine (reflect-101), then a smoothed random displacement field (reflect)."""
    h, w = x.shape[:2]
    centre = np.array([h, w], float) // 2
    sq = min(h, w) // 3
    # points as (row, col); the affine maps src points to perturbed dst points
    src = np.array([centre + sq, [centre[0] + sq, centre[1] - sq], centre - sq])
    dst = src + rng.uniform(-affine, affine, size=src.shape)
    forward = np.linalg.solve(np.c_[src, np.ones(3)], dst).T   # (2, 3): dst = A src + t
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    warped = np.stack([ndimage.affine_transform(x[..., c], inverse[:, :2], inverse[:, 2],
                                                order=1, mode="mirror")
                       for c in range(x.shape[2])], -1)
    dx = rng.uniform(-1, 1, (h, w))
    dy = rng.uniform(-1, 1, (h, w))
    if sigma > 0:
        dx = ndimage.gaussian_filter(dx, sigma, mode="reflect", truncate=3.0)
        dy = ndimage.gaussian_filter(dy, sigma, mode="reflect", truncate=3.0)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [rows + alpha * dy, cols + alpha * dx]
    return np.stack([ndimage.map_coordinates(warped[..., c], coords, order=1, mode="reflect")
                     for c in range(x.shape[2])], -1)


# ---------------------------------------------------------------------------------------------
# CIFAR-10-C recipes: each maps a batch (N, H, W, C) float64 in [0, 1] to the same
# ---------------------------------------------------------------------------------------------
def _per_image(fn) -> Callable:
    def batch(x, c, rng):
        if len(x) == 0:          # an empty batch stays empty (np.stack needs one image)
            return x.copy()
        return np.stack([fn(img, c, rng) for img in x])
    return batch


def _gaussian_noise(x, c, rng):
    return x + rng.normal(0.0, c, x.shape)


def _shot_noise(x, c, rng):
    return rng.poisson(x * c) / c


def _impulse_noise(x, amount, rng):
    """Salt and pepper: the hit mask, then the salt mask, each over all of ``x`` (CIFAR
    runs it per image, so image by image in image order; digits-C on the whole batch)."""
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(float), x)


def _speckle_noise(x, c, rng):
    return x + x * rng.normal(0.0, c, x.shape)


def _contrast(x, c, rng):
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) * c + mean


def _brightness(x, c, rng):
    if x.shape[-1] == 1:
        return x + c
    hsv = _rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _hsv_to_rgb(hsv)


def _saturate(x, c, rng):
    hsv = _rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return _hsv_to_rgb(hsv)


def _cifar_defocus(img, c, rng):
    return _filter_channels(img, _disk(c[0], c[1], half=8), mode="mirror")


def _gaussian_blur(img, sigma, rng):
    return ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="nearest", truncate=4.0)


def _cifar_glass(img, c, rng):
    sigma, delta, iterations = c[0], int(c[1]), int(c[2])
    h, w = img.shape[:2]
    out = _gaussian_blur(img, sigma, rng)
    # positions visited from the bottom-right corner backwards, as in make_cifar_c.py
    hh, ww = np.meshgrid(np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1),
                         indexing="ij")
    positions = np.stack([hh.ravel(), ww.ravel()], 1).astype(np.int64)
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=positions.shape).astype(np.int64)
        out = _swap_pixels(np.ascontiguousarray(out), positions, offsets)
    return _gaussian_blur(out, sigma, rng)


def _cifar_motion(img, c, rng):
    return _magick_motion(img, c[0], c[1], rng.uniform(-45, 45))


def _zoom_average(img, zooms):
    out = img.copy()
    for z in zooms:
        out += _clipped_zoom(img, z)
    return out / (len(zooms) + 1)


def _cifar_zoom(img, z_max, rng):
    return _zoom_average(img, np.arange(1, z_max, 0.01))


def _snow_blend(img, layer, mix):
    """Brighten toward grey, mix, then add the snow layer and its 180° rotation."""
    img = mix * img + (1 - mix) * np.maximum(img, _gray(img) * 1.5 + 0.5)
    return img + layer + np.rot90(layer, k=2)


def _cifar_snow(img, c, rng):
    loc, scale, zoom, thr, radius, sigma, mix = c
    layer = rng.normal(loc, scale, img.shape[:2] + (1,))
    layer = _clipped_zoom(layer, zoom)
    layer[layer < thr] = 0
    layer = np.round(np.clip(layer, 0, 1) * 255) / 255   # the original goes through an 8-bit image
    layer = _magick_motion(layer, radius, sigma, rng.uniform(-135, -45))
    return _snow_blend(img, layer, mix)


def _frost_texture(img, decay, rng):
    h, w = img.shape[:2]
    tex = _plasma(2 * max(h, w), decay, rng)
    top, left = rng.integers(0, tex.shape[0] - h + 1), rng.integers(0, tex.shape[1] - w + 1)
    return tex[top:top + h, left:left + w, None]


def _cifar_frost(img, c, rng):
    return c[0] * img + c[1] * _frost_texture(img, 1.5, rng)


def _fog(img, c, rng):
    h, w = img.shape[:2]
    max_val = img.max()
    fogged = img + c[0] * _plasma(max(h, w, 32), c[1], rng)[:h, :w, None]
    return fogged * max_val / (max_val + c[0])


def _cifar_elastic(img, c, rng):
    return _elastic(img, c[0], c[1], c[2], rng)


def _cifar_pixelate(img, c, rng):
    h, w = img.shape[:2]
    small = _resize(img, (int(h * c), int(w * c)), "box")
    return _resize(small, (h, w), "box")


def _cifar_jpeg(img, quality, rng):
    if img.shape[-1] != 3:
        raise ValueError("jpeg_compression for CIFAR images needs 3 channels")
    return _jpeg_rgb(img, quality)


_CIFAR_FUNCS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise,
    "impulse_noise": _per_image(_impulse_noise), "defocus_blur": _per_image(_cifar_defocus),
    "glass_blur": _per_image(_cifar_glass), "motion_blur": _per_image(_cifar_motion),
    "zoom_blur": _per_image(_cifar_zoom), "snow": _per_image(_cifar_snow),
    "frost": _per_image(_cifar_frost), "fog": _per_image(_fog), "brightness": _brightness,
    "contrast": _contrast, "elastic_transform": _per_image(_cifar_elastic),
    "pixelate": _per_image(_cifar_pixelate), "jpeg_compression": _per_image(_cifar_jpeg),
    "speckle_noise": _speckle_noise, "gaussian_blur": _per_image(_gaussian_blur),
    "saturate": _saturate,
}


# ---------------------------------------------------------------------------------------------
# digits-C recipes: batch (N, H, W, 1) float64 in [0, 1]
# ---------------------------------------------------------------------------------------------
def _digits_defocus(img, c, rng):
    return _filter_channels(img, _disk(c[0], c[1], half=3), mode="reflect")


def _digits_glass(img, c, rng):
    sigma, p = c
    h, w = img.shape[:2]
    out = _gaussian_blur(img, sigma, rng)
    hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    positions = np.stack([hh.ravel(), ww.ravel()], 1).astype(np.int64)
    swap = rng.random(len(positions)) < p
    offsets = rng.integers(-1, 2, size=positions.shape)
    # clip targets to the image, then keep only the swapped pixels (one raster pass)
    targets = np.clip(positions + offsets, 0, [h - 1, w - 1])
    offsets = (targets - positions)[swap].astype(np.int64)
    out = _swap_pixels(np.ascontiguousarray(out), positions[swap], offsets)
    return _gaussian_blur(out, sigma, rng)


def _digits_motion(img, length, rng):
    return _line_motion(img, length, rng.uniform(-45, 45))


def _digits_zoom(img, c, rng):
    return _zoom_average(img, np.arange(1, c[0], c[1]))


def _digits_snow(img, c, rng):
    loc, scale, thr, length, mix = c
    layer = rng.normal(loc, scale, img.shape[:2] + (1,))
    layer[layer < thr] = 0
    layer = _line_motion(np.clip(layer, 0, 1), length, rng.uniform(-135, -45))
    return _snow_blend(img, layer, mix)


def _digits_frost(img, c, rng):
    return c[0] * img + c[1] * _frost_texture(img, 1.5, rng)


def _digits_pixelate(img, size, rng):
    small = _resize(img, (size, size), "triangle")
    return _resize(small, img.shape[:2], "nearest")


def _digits_jpeg(img, quality, rng):
    # an 8×8 digit is one JPEG block: DCT of (255 x − 128), IJG luminance table, round
    plane = _blockwise_dct_quantise(img[..., 0] * 255.0, _quality_table(_Q_LUMA, quality))
    return (np.round(plane) / 255.0)[..., None]


def _affine_about_centre(img, matrix, shift=(0.0, 0.0)):
    """Apply the (row, col) map ``out(p) = img(M (p - c) + c + shift)``, zero outside."""
    h, w = img.shape[:2]
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - matrix @ centre + np.asarray(shift)
    out = ndimage.affine_transform(img[..., 0], matrix, offset, order=1, mode="grid-constant")
    return out[..., None]


def _random_sign(rng):
    return 1.0 if rng.random() < 0.5 else -1.0


def _digits_rotate(img, angle, rng):
    a = _random_sign(rng) * angle
    return _affine_about_centre(img, np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]))


def _digits_shear(img, shear, rng):
    return _affine_about_centre(img, np.array([[1.0, 0.0], [_random_sign(rng) * shear, 1.0]]))


def _digits_scale(img, factor, rng):
    # sampling the input at factor·(p - c) shrinks the digit by 1/factor about the centre
    return _affine_about_centre(img, np.eye(2) * factor)


def _digits_translate(img, fraction, rng):
    angle = rng.uniform(0, 2 * np.pi)
    dist = fraction * img.shape[0]
    return _affine_about_centre(img, np.eye(2), (dist * np.sin(angle), dist * np.cos(angle)))


_DIGITS_FUNCS: dict[str, Callable] = {
    **{k: _CIFAR_FUNCS[k] for k in ("gaussian_noise", "shot_noise", "brightness",
                                    "contrast")},
    # batch-wide masks, as the digits-C figures in docs/tta.md were drawn (not per image)
    "impulse_noise": _impulse_noise,
    "defocus_blur": _per_image(_digits_defocus), "glass_blur": _per_image(_digits_glass),
    "motion_blur": _per_image(_digits_motion), "zoom_blur": _per_image(_digits_zoom),
    "snow": _per_image(_digits_snow), "frost": _per_image(_digits_frost),
    "fog": _per_image(_fog), "elastic_transform": _per_image(_cifar_elastic),
    "pixelate": _per_image(_digits_pixelate), "jpeg_compression": _per_image(_digits_jpeg),
    "rotate": _per_image(_digits_rotate), "shear": _per_image(_digits_shear),
    "scale": _per_image(_digits_scale), "translate": _per_image(_digits_translate),
    "speckle_noise": _speckle_noise, "gaussian_blur": _per_image(_gaussian_blur),
}


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
#: Smallest image side (pixels) a recipe needs, and why, where it is more than 1 pixel.
_ELASTIC_MIN = (3, "its random affine moves 3 points min(H, W) // 3 pixels from the centre; "
                   "below 3 pixels they coincide and the affine is undefined")
_CIFAR_MIN_SIDE = {
    "elastic_transform": _ELASTIC_MIN,
    # make_cifar_c.py resizes to int(side * c) with PIL, which refuses a size of 0 pixels
    "pixelate": (2, "it box-resizes each side to int(side * c), c = 0.95 .. 0.65, which must "
                    "be at least 1 pixel"),
}
#: digits-C's pixelate resizes to a fixed 3..7 pixels, which works from 1 pixel on.
_DIGITS_MIN_SIDE = {"elastic_transform": _ELASTIC_MIN}


def _check_image_size(name: str, batch: np.ndarray, min_side: dict) -> None:
    """Refuse ``(N, H, W, C)`` images too small for recipe ``name`` before it runs (else a
    division by zero or a singular matrix from deep inside it)."""
    need, why = min_side.get(name, (1, "an image needs at least one pixel"))
    h, w = batch.shape[1:3]
    if min(h, w) < need:
        raise ValueError(f"images must be at least {need}x{need} pixels for {name} ({why}), "
                         f"got H x W = {h}x{w}")


def _check_name_severity(name, severity, table: dict) -> None:
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"name must be one of {sorted(table)}, got {name!r}")
    whole = isinstance(severity, int | np.integer) and not isinstance(severity, bool)
    if not whole or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")


def _to_unit_float(name: str, images) -> tuple[np.ndarray, np.dtype]:
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0, array.dtype
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be uint8 in [0, 255] or float in [0, 1], got {array.dtype}")
    if not np.all(np.isfinite(array)) or array.min(initial=0) < 0 or array.max(initial=0) > 1:
        raise ValueError(f"float {name} must be finite and lie in [0, 1]")
    return array.astype(np.float64), array.dtype


def _from_unit_float(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    if dtype == np.uint8:
        return np.round(x * 255.0).astype(np.uint8)
    return x.astype(dtype)


def corrupt(images, name: str, severity: int, seed=0) -> np.ndarray:
    """Apply CIFAR-10-C corruption ``name`` at ``severity`` (1..5).

    Parameters
    ----------
    images : array, ``(H, W, 3)`` or ``(N, H, W, 3)``; uint8 in [0, 255] or float in [0, 1].
        The parameters are CIFAR's (32×32); other sizes run but are not calibrated. At least
        1×1 pixels; ``pixelate`` needs 2×2 and ``elastic_transform`` 3×3 (``ValueError``).
    name : one of :data:`CORRUPTIONS` or :data:`VALIDATION_CORRUPTIONS`.
    severity : 1..5.
    seed : int, None or ``numpy.random.Generator`` (drawn from in image order).

    Returns
    -------
    Array of the input's shape and dtype, in the input's range. The input is not modified.
    """
    _check_name_severity(name, severity, _CIFAR_FUNCS)
    x, dtype = _to_unit_float("images", images)
    single = x.ndim == 3
    batch = x[None] if single else x
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images must have shape (H, W, 3) or (N, H, W, 3), got {x.shape}")
    _check_image_size(name, batch, _CIFAR_MIN_SIDE)
    out = _CIFAR_FUNCS[name](batch, _CIFAR[name][severity - 1], as_generator(seed))
    out = _from_unit_float(out, dtype)
    return out[0] if single else out


def corrupt_digits(images, name: str, severity: int, seed=0) -> np.ndarray:
    """Apply a digits-C corruption to grey images in [0, 1].

    Parameters
    ----------
    images : float array ``(N, 64)``, ``(N, H, W)`` or ``(N, 1, H, W)`` in [0, 1] (8×8 digits).
        At least 1×1 pixels; ``elastic_transform`` needs 3×3 (``ValueError``).
    name : one of :data:`DIGITS_CORRUPTIONS` or :data:`DIGITS_HELD_OUT` (the geometric suite,
        ``speckle_noise``, ``gaussian_blur``).
    severity : 1..5.
    seed : int, None or ``numpy.random.Generator``.

    Returns
    -------
    Float array of the input's shape and dtype, clipped to [0, 1].

    Notes
    -----
    Choices where the spec is silent: noise is drawn per pixel (``impulse_noise``'s hit and
    salt masks each over the whole batch, as docs/tta.md's digits-C figures were drawn;
    :func:`corrupt` draws them image by image); ``fog`` crops a 32-px plasma to
    the image; ``frost`` crops a 16-px plasma (decay 1.5) at a random offset; geometric
    corruptions rotate/shear/scale about the image centre with order-1 interpolation and a black
    background, with a random sign (rotate, shear) or direction (translate); their severity 5 is
    MNIST-C's value (rotate 0.4 rad, shear 0.4, scale 1/0.7 = shrink, translate 3/28 of the
    width) and lower severities are linear fractions of it.
    """
    _check_name_severity(name, severity, _DIGITS_FUNCS)
    x, dtype = _to_unit_float("images", images)
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"flat images must have a square number of pixels, got {x.shape}")
        batch = x.reshape(len(x), side, side, 1)
    elif x.ndim == 3:
        batch = x[..., None]
    elif x.ndim == 4 and x.shape[1] == 1:
        batch = x[:, 0, :, :, None]
    else:
        raise ValueError("images must have shape (N, 64), (N, H, W) or (N, 1, H, W), got "
                         f"{x.shape}")
    _check_image_size(name, batch, _DIGITS_MIN_SIDE)
    out = _DIGITS_FUNCS[name](batch, _DIGITS[name][severity - 1], as_generator(seed))
    return _from_unit_float(out, dtype).reshape(x.shape)


def digits_c(name: str, severity: int, seed=0, *, split_seed=0,
             test_fraction: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """The digits-C test set: the corrupted test split of :func:`~bioplastic.data.digits_split`.

    The default split (40 % test, stratified) is the spec's calibration split (719 images).

    Returns
    -------
    X : float64 ``(n, 64)`` in [0, 1];  y : int64 ``(n,)``.
    """
    from .digits import digits_split

    split = digits_split(split_seed, test_fraction=test_fraction)
    x = split.x_test.reshape(len(split.x_test), -1)
    return corrupt_digits(x, name, severity, seed), split.y_test


def load_cifar10c(root, corruption: str, severity: int, n: int = 10000
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Read one (corruption, severity) block of the distributed CIFAR-10-C; never downloads.

    Parameters
    ----------
    root : folder holding ``<corruption>.npy`` and ``labels.npy``.
    corruption : a name in :data:`CORRUPTIONS` or :data:`VALIDATION_CORRUPTIONS` or ``spatter``.
    severity : 1..5; rows ``block·(s−1) … block·(s−1)+n−1`` are returned, ``block = len/5``.
    n : how many images (first ``n`` of the block).

    Returns
    -------
    X : uint8 ``(n, 32, 32, 3)``;  y : int64 ``(n,)``, class indices 0..9 (a ``labels.npy``
    holding anything else, e.g. non-integral floats, is a ``ValueError``).
    """
    known = CORRUPTIONS + VALIDATION_CORRUPTIONS + ("spatter",)
    _check_name_severity(corruption, severity, dict.fromkeys(known))
    root = Path(root)
    paths = {"images": root / f"{corruption}.npy", "labels": root / "labels.npy"}
    for what, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10-C {what} file {path} not found (root={root}); "
                                    "download CIFAR-10-C from Zenodo record 2535967 yourself")
    images = np.load(paths["images"], mmap_mode="r")
    labels = np.load(paths["labels"], mmap_mode="r")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{paths['images']} must be uint8 (5·n, H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    if len(images) % 5 or labels.shape != (len(images),):
        raise ValueError(f"{paths['images']} must stack 5 equal severities and labels.npy must "
                         f"have one label per row; got {images.shape} and {labels.shape}")
    block = len(images) // 5
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= block:
        raise ValueError(f"n must be an integer in 1..{block}, got {n!r}")
    start = block * (severity - 1)
    y = np.array(labels[start:start + n])
    numeric = y.dtype.kind in "iuf"
    if not numeric or not np.all((y >= 0) & (y <= 9) & (y == np.round(y))):
        got = f"values from {y.min()!r} to {y.max()!r}" if numeric else "values"
        raise ValueError(f"{paths['labels']} must hold CIFAR-10 class indices, integers in "
                         f"0..9; rows {start}..{start + n - 1} hold {y.dtype} {got}")
    return np.array(images[start:start + n]), y.astype(np.int64)
