"""Pulse-coupled neural network (PCNN): the discrete Eckhorn/Johnson map on 2-D maps and stacks.

Equations (Convention A, the library's canonical form; guide: ``docs/pcnn.md``). Neuron
``(c, i, j)`` of a stack of ``C`` maps of ``H × W`` neurons, iteration ``n = 1, 2, ...``::

    F[n] = d_F F[n-1] + V_F (M ⋆ Y[n-1]) + S[n]            feeding
    L[n] = d_L L[n-1] + V_L (W ⋆ Y[n-1])                   linking
    U[n] = d_U U[n-1] + F[n] (1 + beta L[n])               internal activity (d_U = 0: classic)
    Y[n] = 1 if U[n] > E[n-1] else 0                       pulse (strict >)
    E[n] = d_E E[n-1] + V_E Y[n]                           dynamic threshold

ASCII names: ``decay_f = d_F = exp(-alpha_F)``, ``decay_l``, ``decay_u``, ``decay_e``, ``v_f``,
``v_l``, ``v_e``, ``beta``; state ``f, l, u, e, y``; ``e0 = E[0]``. There is no membrane reset:
only the threshold jump ``V_E`` limits firing.

``⋆`` is a zero-padded 2-D cross-correlation (the ``torch.nn.functional.conv2d`` convention;
identical to a convolution for the symmetric kernels of the literature) of odd size
``kh × kw``, centred on the neuron; a non-zero centre weight is a self-term. The coupling mode
says which maps a kernel joins:

* ``"none"``: no feeding or linking coupling (kernels must be ``None``);
* ``"intra"``: within each map. Kernel ``(kh, kw)`` (shared by all maps), ``(C, kh, kw)`` or
  ``(C, 1, kh, kw)`` (one per map; depthwise, ``groups=C`` in torch terms);
* ``"inter"``: across maps. Kernel ``(C, C, kh, kw)`` (``K[c_post, c_pre]``), or ``(kh, kw)``
  applied between every pair of maps.

Internally every kernel is 4-D ``(C, G, kh, kw)`` with ``G = 1`` (intra) or ``G = C`` (inter).

**Schedule** (Brian2 terms, iteration ``n`` = Brian step ``n - 1``): groups, order -1 (summed
coupling ``M ⋆ Y[n-1]`` and ``W ⋆ Y[n-1]``, each target summed in increasing presynaptic flat
index ``(c, i, j)``) → groups, order 0 (the map, sequentially: F, L, U, then ``Y = U > E[n-1]``,
then E) → thresholds (``Y > 0.5``, recording only; no reset).

**Fast linking** (optional; no Brian2 form): after the ordinary update, repeat
``L = V_L (W ⋆ Y)`` (``fast_linking=True``, pyclustering's form, which drops the leaky term) or
``L = d_L L[n-1] + V_L (W ⋆ Y)`` (``fast_linking="leaky"``), ``U = d_U U[n-1] + F (1 + beta L)``,
``Y = U > E[n-1]`` — all neurons from the same previous iterate (Jacobi) — until Y stops
changing; then update E with the final Y. At most ``N + 1`` inner iterations (N neurons), else
``RuntimeError``. The Jacobi iteration is not guaranteed to converge: it can fall into a
2-cycle (pyclustering's form does on the region image of the ``pcnn_vs_brian2`` notebook,
where the leaky form converges); the kernel raises rather than return an arbitrary state.

**Convention B** (Zhan's code, SCM, SPCNN: ``E[n] = d_E E[n-1] + V_E Y[n-1]`` first, then
``Y[n] = U[n] > E[n]``) gives the same pulses under ``E_A[n] = E_B[n+1]``; convert its initial
threshold with :func:`convention_b_to_a`. Presets written in B are converted at construction.

Choices where the sources are silent (each is an option): cross-correlation with zero padding
(``kernel`` orientation; borders see zeros); the ``decay_u`` term (0 by default) that makes the
SCM and SPCNN one parameterisation away; per-map parameters (each may be a scalar or a ``(C,)``
array); stimuli must be finite and non-negative (multiplicative linking assumes ``F >= 0``;
``allow_negative=True`` lifts this for trained drives).

References: Eckhorn et al., *Neural Comput.* 2(3):293 (1990); Johnson & Padgett, *IEEE TNN*
10(3):480 (1999); Zhan et al., *Arch. Comput. Methods Eng.* 24:573 (2017) (1-D demo, SCM);
Zhan, Zhang & Ma, *IEEE TNN* 20(12):1980 (2009) (SCM); Chen et al., *IEEE TNN* 22(6):880 (2011)
(SPCNN, unconfirmed); Kinser (1996), Ekblad & Kinser (2004) (ICM, unconfirmed); pyclustering's
``nnet/pcnn.py`` (fast linking). The Brian2 twin is :mod:`bioplastic.reference.pcnn`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._state import copy_state
from .._validate import as_float_array, in_range, per_unit, positive_int
from ..simulate import Trace, simulate
from ._checks import check_pcnn as check_consistency  # simulate's hook
from ._checks import checked_step

__all__ = [
    "PCNNParams", "PCNNKernelParams", "PCNNState", "pcnn_prepare", "pcnn_init", "pcnn_step",
    "pcnn_advance",
    "run_pcnn", "convention_b_to_a", "otsu_threshold", "COUPLINGS", "ZHAN_KERNEL_1D",
    "SCM_KERNEL", "SPCNN_KERNEL",
]

COUPLINGS = ("none", "intra", "inter")
_FAST_LINKING = {False: 0, True: 1, "leaky": 2}

# Zhan's demo decays exp(-0.2), exp(-0.5), computed in NumPy as from_alphas does.
_D02 = float(np.exp(np.float64(-0.2)))
_D05 = float(np.exp(np.float64(-0.5)))

#: Zhan's 1-D demo kernel (centre weight 1 is a self-term) [verified: kunzhan figure_2.m].
ZHAN_KERNEL_1D = np.array([[0.707, 1.0, 0.707]])
#: SCM linking kernel [verified: kunzhan functions/SCM.m].
SCM_KERNEL = np.array([[0.1091, 0.1409, 0.1091], [0.1409, 0.0, 0.1409], [0.1091, 0.1409, 0.1091]])
#: SPCNN linking kernel [unconfirmed: Chen et al. 2011].
SPCNN_KERNEL = np.array([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]])
#: Image-fusion linking kernel [unconfirmed: Qu et al. 2008].
FUSION_KERNEL = np.array([[0.707, 1.0, 0.707], [1.0, 0.0, 1.0], [0.707, 1.0, 0.707]])
#: pyclustering's GRID_EIGHT neighbourhood with unit weights (its default is ALL_TO_ALL).
EIGHT_NEIGHBOURS = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])


class PCNNParams(NamedTuple):
    """User-facing PCNN parameters (Convention A). Decays are multipliers ``d = exp(-alpha)``.

    Every numeric field except ``e0`` may be a float or a per-map array ``(C,)``; ``e0`` may be
    a float or any array broadcastable to the state shape ``(C, H, W)``. Defaults are Zhan's
    1-D demo values with E converted to Convention A.
    """

    decay_f: float = _D02             # feeding decay d_F = exp(-alpha_F), in [0, 1]
    decay_l: float = _D05             # linking decay d_L, in [0, 1]
    decay_e: float = _D02             # threshold decay d_E, in [0, 1]
    v_f: float = 0.1                  # feeding coupling amplitude V_F
    v_l: float = 0.2                  # linking coupling amplitude V_L
    v_e: float = 6.0                  # threshold jump per pulse V_E (>= 0)
    beta: float = 0.5                 # linking strength
    decay_u: float = 0.0              # internal-activity decay (0: classic U = F(1 + beta L))
    e0: float = _D02                  # E[0] (Convention A): d_E * E_B[0] with E_B[0] = 1
    feeding_kernel: np.ndarray | None = None   # M, see module docstring for shapes
    linking_kernel: np.ndarray | None = None   # W
    coupling: str = "none"            # "none" | "intra" | "inter"
    fast_linking: bool | str = False  # False | True (pyclustering) | "leaky"
    source: str = ""                  # where the values come from (presets fill it in)

    @classmethod
    def from_alphas(cls, alpha_f: float, alpha_l: float, alpha_e: float, **rest) -> PCNNParams:
        """Build from decay *rates* ``alpha`` (``d = exp(-alpha)``, computed once in NumPy)."""
        decays = {name: float(np.exp(-np.float64(a))) for name, a in
                  (("decay_f", alpha_f), ("decay_l", alpha_l), ("decay_e", alpha_e))}
        return cls(**decays, **rest)

    @classmethod
    def zhan_1d(cls) -> PCNNParams:
        """Zhan's 1-D seven-pixel demo (Convention B, ``E_B[0] = 1``, converted to A)."""
        p = cls.from_alphas(0.2, 0.5, 0.2, v_f=0.1, v_l=0.2, v_e=6.0, beta=0.5,
                            feeding_kernel=ZHAN_KERNEL_1D, linking_kernel=ZHAN_KERNEL_1D,
                            coupling="intra",
                            source="Zhan et al. 2017, kunzhan figure_2.m (Convention B -> A)")
        return p._replace(e0=convention_b_to_a(1.0, 0.0, p))

    @classmethod
    def pyclustering(cls, *, e0=0.0, fast_linking: bool = False) -> PCNNParams:
        """pyclustering's defaults (plain multipliers) on its GRID_EIGHT neighbourhood.

        pyclustering draws ``E[0]`` from U[0, 1); pass ``e0=rng.random(shape)`` to do the same.
        """
        return cls(decay_f=0.1, decay_l=0.1, decay_e=0.5, v_f=1.0, v_l=1.0, v_e=10.0, beta=0.1,
                   e0=e0, feeding_kernel=EIGHT_NEIGHBOURS, linking_kernel=EIGHT_NEIGHBOURS,
                   coupling="intra", fast_linking=fast_linking,
                   source="pyclustering nnet/pcnn.py defaults, GRID_EIGHT")

    @classmethod
    def scm(cls, kernel=SCM_KERNEL) -> PCNNParams:
        """Spiking cortical model: ``U = 0.2 U + S (W ⋆ Y) + S``, ``E = 0.9 E + 20 Y`` (B).

        Written here as ``F = S`` (``d_F = V_F = 0``), ``L = W ⋆ Y`` (``d_L = 0, V_L = 1``),
        ``beta = 1``, ``d_U = 0.2``: ``U = 0.2 U + S (1 + W ⋆ Y)`` — equal in exact arithmetic
        (``S*K + S`` vs ``S*(1 + K)`` may differ in the last bit). ``E_B[0] = 1``.
        """
        p = cls(decay_f=0.0, decay_l=0.0, decay_e=0.9, v_f=0.0, v_l=1.0, v_e=20.0, beta=1.0,
                decay_u=0.2, linking_kernel=kernel, coupling="intra",
                source="SCM, Zhan, Zhang & Ma 2009; kunzhan functions/SCM.m (B -> A)")
        return p._replace(e0=convention_b_to_a(1.0, 0.0, p))

    @classmethod
    def spcnn(cls, image, *, e0_b: float = 1.0, kernel=SPCNN_KERNEL) -> PCNNParams:
        """Simplified PCNN with automatic parameters from ``image`` (values in [0, 1]).

        ``alpha_f = ln(1/std(S))``, ``beta V_L = (S_max/S' - 1)/6``,
        ``V_E = exp(-alpha_f) + 1 + 6 beta V_L``,
        ``alpha_e = ln(V_E / (S'(1 - exp(-3 alpha_f))/(1 - exp(-alpha_f)) + 6 beta V_L
        exp(-alpha_f)))`` with ``S'`` the Otsu threshold [unconfirmed: Chen et al. 2011].
        Convention B, ``E_B[0] = e0_b`` (the paper's value is not confirmed here).
        """
        s = as_float_array("image", image)
        if s.size < 2:
            raise ValueError(f"image must hold at least 2 values for SPCNN's automatic "
                             f"parameters, got shape {s.shape}")
        if s.min() < 0 or s.max() > 1 or s.std() == 0:
            raise ValueError("image must hold non-constant values in [0, 1] for SPCNN's "
                             "automatic parameters")
        s_otsu = otsu_threshold(s)
        alpha_f = math.log(1.0 / float(s.std()))
        d_f = math.exp(-alpha_f)
        beta_vl = (float(s.max()) / s_otsu - 1.0) / 6.0
        v_e = d_f + 1.0 + 6.0 * beta_vl
        alpha_e = math.log(v_e / (s_otsu * (1.0 - math.exp(-3.0 * alpha_f)) / (1.0 - d_f)
                                  + 6.0 * beta_vl * d_f))
        p = cls(decay_f=0.0, decay_l=0.0, decay_e=math.exp(-alpha_e), v_f=0.0, v_l=1.0,
                v_e=v_e, beta=beta_vl, decay_u=d_f, linking_kernel=kernel, coupling="intra",
                source="SPCNN, Chen, Park, Ma & Ala 2011 [unconfirmed] (B -> A)")
        return p._replace(e0=convention_b_to_a(e0_b, 0.0, p))

    @classmethod
    def icm(cls, kernel=SPCNN_KERNEL, *, e0: float = 1.0) -> PCNNParams:
        """Intersecting cortical model ``F = 0.9 F + S + W ⋆ Y; Y = F > Θ; Θ = 0.8 Θ + 20 Y``.

        Convention A with ``beta = 0`` (U = F), ``V_F = 1``, feeding kernel ``W``
        [unconfirmed: Kinser 1996; Ekblad & Kinser 2004; kernel and Θ[0] are choices].
        """
        return cls(decay_f=0.9, decay_l=0.0, decay_e=0.8, v_f=1.0, v_l=0.0, v_e=20.0, beta=0.0,
                   e0=e0, feeding_kernel=kernel, coupling="intra",
                   source="ICM, Kinser 1996 / Ekblad & Kinser 2004 [unconfirmed]")

    @classmethod
    def image_fusion(cls, *, e0: float = 1.0) -> PCNNParams:
        """Image-fusion set: ``F = S``, linking with ``alpha_L = 0.06931``, ``V_L = 1``,
        ``beta = 0.2``, ``alpha_E = 0.2``, ``V_E = 20`` [unconfirmed: Qu et al. 2008]."""
        return cls(decay_f=0.0, decay_l=float(np.exp(-np.float64(0.06931))),
                   decay_e=float(np.exp(-np.float64(0.2))), v_f=0.0, v_l=1.0, v_e=20.0,
                   beta=0.2, e0=e0, linking_kernel=FUSION_KERNEL, coupling="intra",
                   source="image fusion, Qu et al. 2008 [unconfirmed]")


class PCNNKernelParams(NamedTuple):
    """What the kernel reads: per-map float64 arrays ``(C,)``, the fast-linking mode and the
    two coupling kernels in their 4-D form ``(C, G, kh, kw)`` (``G = 1`` intra, ``C`` inter;
    ``(C, 1, 1, 1)`` zeros for no coupling; see the module docstring)."""

    decay_f: np.ndarray
    decay_l: np.ndarray
    decay_u: np.ndarray
    decay_e: np.ndarray
    v_f: np.ndarray
    v_l: np.ndarray
    v_e: np.ndarray
    beta: np.ndarray
    fast_linking: int         # 0 off, 1 pyclustering form, 2 leaky form
    feeding_weights: np.ndarray   # M, float64 (C, G, kh, kw), odd kh and kw
    linking_weights: np.ndarray   # W, float64 (C, G, kh, kw), odd kh and kw


class PCNNState(NamedTuple):
    f: np.ndarray             # feeding F (C, H, W)
    l: np.ndarray             # linking L (C, H, W)
    u: np.ndarray             # internal activity U (C, H, W)
    e: np.ndarray             # threshold E (C, H, W), compared with the next U
    y: np.ndarray             # pulses of the last iteration (C, H, W), bool


def convention_b_to_a(e0_b, y0_b, params: PCNNParams):
    """Initial threshold for Convention A equivalent to a Convention-B start.

    ``E_A[0] = d_E E_B[0] + V_E Y_B[0]``: then ``E_A[n] = E_B[n+1]`` and the pulse
    trains are identical. Scalars give a float, arrays an array.
    """
    e0_b = np.asarray(as_float_array("e0_b", e0_b))
    y0_b = np.asarray(as_float_array("y0_b", y0_b))
    decay_e = np.asarray(params.decay_e, dtype=np.float64)
    v_e = np.asarray(params.v_e, dtype=np.float64)
    try:
        np.broadcast_shapes(e0_b.shape, y0_b.shape, decay_e.shape, v_e.shape)
    except ValueError:
        raise ValueError(f"e0_b {e0_b.shape}, y0_b {y0_b.shape}, params.decay_e "
                         f"{decay_e.shape} and params.v_e {v_e.shape} must broadcast together "
                         "(scalars, or arrays of one map shape)") from None
    e0_a = decay_e * e0_b + v_e * y0_b
    return float(e0_a) if e0_a.ndim == 0 else e0_a


def otsu_threshold(image, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1] (between-class variance maximised over ``bins``).

    Returns the upper edge of the best lower class, so ``image > t`` splits the two classes.
    """
    values = as_float_array("image", image).ravel()
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    weights = hist / values.size
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(weights)
    mu0 = np.cumsum(weights * centres)
    mu_total = mu0[-1]
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu_total * w0 - mu0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


# ----------------------------------------------------------------------------------- prepare



def _check_state_shape(shape) -> tuple[int, int, int]:
    try:
        sizes = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple (C, H, W) of integers, got {shape!r}") from None
    if any(isinstance(s, bool | np.bool_) or not isinstance(s, int | np.integer) for s in sizes):
        raise TypeError(f"shape must be (C, H, W) of integers, got {shape!r}")
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"shape must be (C, H, W) with positive sizes, got {shape}")
    return tuple(int(s) for s in sizes)


def _kernel_4d(name: str, kernel, coupling: str, n_maps: int) -> np.ndarray:
    """Validate a user kernel and return its ``(C, G, kh, kw)`` form (a new array)."""
    if kernel is None or coupling == "none":
        if kernel is not None:
            raise ValueError(f"{name} must be None when coupling='none', got an array")
        return np.zeros((n_maps, 1, 1, 1))
    k = as_float_array(name, kernel)
    if k.ndim < 2 or k.shape[-1] % 2 == 0 or k.shape[-2] % 2 == 0:
        raise ValueError(f"{name} must have odd spatial size (kh, kw), got shape {k.shape}")
    if coupling == "intra":
        if k.ndim == 2:
            return np.broadcast_to(k, (n_maps, 1) + k.shape).copy()
        if k.ndim == 3 and k.shape[0] == n_maps:
            return k[:, None].copy()
        if k.ndim == 4 and k.shape[:2] == (n_maps, 1):
            return k.copy()
        raise ValueError(f"{name} for coupling='intra' must have shape (kh, kw), (C, kh, kw) or "
                         f"(C, 1, kh, kw) with C={n_maps}, got {k.shape}")
    if k.ndim == 2:
        return np.broadcast_to(k, (n_maps, n_maps) + k.shape).copy()
    if k.ndim == 4 and k.shape[:2] == (n_maps, n_maps):
        return k.copy()
    raise ValueError(f"{name} for coupling='inter' must have shape (kh, kw) or (C, C, kh, kw) "
                     f"with C={n_maps}, got {k.shape}")


def _check_params(params) -> None:
    if not isinstance(params, PCNNParams):
        raise TypeError(f"params must be PCNNParams, got {type(params).__name__}")
    if params.coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {params.coupling!r}")
    if not (params.fast_linking is False or params.fast_linking is True
            or params.fast_linking == "leaky"):
        raise ValueError(f"fast_linking must be False, True or 'leaky', got "
                         f"{params.fast_linking!r}")


def pcnn_prepare(params: PCNNParams, shape) -> PCNNKernelParams:
    """Validate ``params`` for a state of ``shape = (C, H, W)`` and derive what the kernel
    reads: per-map arrays and the coupling kernels in their 4-D form ``(C, G, kh, kw)`` (see
    the module docstring), ready for :func:`pcnn_advance` and :func:`pcnn_step`.
    """
    _check_params(params)
    n_maps = _check_state_shape(shape)[0]
    decays = {name: in_range(name, per_unit(name, getattr(params, name), n_maps), 0.0, 1.0)
              for name in ("decay_f", "decay_l", "decay_u", "decay_e")}
    amplitudes = {name: per_unit(name, getattr(params, name), n_maps)
                  for name in ("v_f", "v_l", "v_e", "beta")}
    if np.any(amplitudes["v_e"] < 0):
        raise ValueError(f"v_e must be >= 0 (a pulse raises the threshold), got {params.v_e!r}")
    return PCNNKernelParams(
        **decays, **amplitudes, fast_linking=_FAST_LINKING[params.fast_linking],
        feeding_weights=_kernel_4d("feeding_kernel", params.feeding_kernel, params.coupling,
                                   n_maps),
        linking_weights=_kernel_4d("linking_kernel", params.linking_kernel, params.coupling,
                                   n_maps))


def pcnn_init(shape, params: PCNNParams | None = None) -> PCNNState:
    """Initial state for maps of ``shape = (C, H, W)``: ``F = L = U = Y = 0``, ``E = e0``
    (``params`` default: ``PCNNParams()``)."""
    shape = _check_state_shape(shape)
    params = PCNNParams() if params is None else params
    _check_params(params)
    e0 = as_float_array("e0", params.e0)
    try:
        e = np.broadcast_to(e0, shape).copy()
    except ValueError as err:
        raise ValueError(f"e0 must broadcast to the state shape {shape}, got {e0.shape}") from err
    zeros = np.zeros(shape)
    return PCNNState(zeros, zeros.copy(), zeros.copy(), e, np.zeros(shape, dtype=np.bool_))


# ------------------------------------------------------------------------------------ kernel


#: Rows per block of :func:`pcnn_step`: the block's two coupling buffers stay in cache, and the
#: per-call cost of the array views (reference counting) is spread over several rows.
_BLOCK_ROWS = 8


@njit
def _coupling_pad(feeding_weights, linking_weights):
    """Zero border both kernels need around ``Y`` (their largest half-size)."""
    return max(feeding_weights.shape[2], feeding_weights.shape[3],
               linking_weights.shape[2], linking_weights.shape[3]) // 2


@njit
def _padded_pulses(y, pad):
    """``Y`` with ``pad`` zero rows and columns on each side of every map.

    The coupling loops then read every neighbour without a border test: a padded zero adds
    nothing, exactly like the twin's missing out-of-image synapse.
    """
    n_maps, height, width = y.shape
    padded = np.zeros((n_maps, height + 2 * pad, width + 2 * pad), dtype=np.bool_)
    padded[:, pad:pad + height, pad:pad + width] = y
    return padded


#: Kernels with at most this many taps ``G * kh * kw`` (a 3×3 intra kernel has 9) are summed
#: by table look-up: 2**10 sums per map stay in L1 and cost little to rebuild every step.
_TABLE_TAPS = 10


@njit
def _tap_sums(weights):
    """Every possible neighbourhood sum, per map: ``(C, 2**taps)``, or ``(C, 0)`` when the
    kernel has more than ``_TABLE_TAPS`` taps.

    Entry ``p`` of map ``c`` sums the taps ``t`` (flat ``(g, a, b)`` index of ``K[c]``) whose
    bit is set in ``p``, added from ``+0.0`` in increasing ``t`` and skipping zero weights:
    the very additions :func:`_sum_taps` would do for that pulse pattern, so a look-up is
    bit-identical. Entries with highest bit ``h`` extend those below ``2**h`` by tap ``h``.
    """
    n_maps = weights.shape[0]
    n_taps = weights[0].size
    if n_taps > _TABLE_TAPS:
        return np.zeros((n_maps, 0))
    table = np.zeros((n_maps, 1 << n_taps))
    for c in range(n_maps):
        taps = weights[c].ravel()
        for h in range(n_taps):
            for rest in range(1 << h):
                low = table[c, rest]
                table[c, (1 << h) + rest] = low if taps[h] == 0.0 else low + taps[h]
    return table


@njit
def _tap_offsets(weights, row0, wide, pad):
    """Flat offset in a padded map plane of each tap ``(a, b)`` for block row ``row0``."""
    kh, kw = weights.shape[2], weights.shape[3]
    offsets = np.empty(kh * kw, dtype=np.int64)
    for a in range(kh):
        for b in range(kw):
            offsets[a * kw + b] = (row0 + a - kh // 2 + pad) * wide + (b - kw // 2 + pad)
    return offsets


@njit
def _couple_block(padded, weights, table, c, row0, width, out):
    """Rows ``row0 ...`` of map ``c`` of ``K ⋆ Y`` into ``out`` (rows, W + 2 pad).

    ``padded`` is ``_padded_pulses(Y, pad)`` with ``pad`` at least ``kh//2`` and ``kw//2``;
    ``table`` is ``_tap_sums(weights)``. Each target sums ``K[c, g, a, b]`` over its pulsing
    presynaptic neurons ``(pre(c, g), i + a - kh//2, j + b - kw//2)`` in increasing
    ``(g, a, b)``, i.e. increasing presynaptic flat index: the order of Brian2's ``(summed)``
    bincount over synapses sorted by ``(pre, post)``. Zero weights are skipped (Brian has no
    synapse for them); a silent neighbour adds ``+0.0``, a no-op because a sum started at
    ``+0.0`` is never ``-0.0``.

    Speed: ``out`` has the padded row length, so target ``(r, j)`` sits at flat ``r * wide +
    j`` and its neighbour ``(a, b)`` at a constant flat offset in the padded plane. One flat
    loop per tap then covers the block (columns ``j >= W`` are scratch, never read), the
    targets are independent chains the compiler vectorises without reordering any sum, and
    the inner loop indexes plain ``k``: an index like ``k + offset`` would get Numba's
    negative-index test, which stops vectorisation (4x slower). Small kernels go further:
    the tap loops build each target's pulse pattern (narrow integer ops), then one look-up in
    ``table`` replaces the float sum.
    """
    wide = padded.shape[2]
    offsets = _tap_offsets(weights, row0, wide, (wide - width) // 2)
    n = (out.shape[0] - 1) * wide + width
    target = out.ravel()[:n]
    if table.shape[1] == 0:
        _sum_taps(padded, weights, c, offsets, target)
        return
    pattern = _pulse_patterns(padded, weights, c, offsets, n)
    sums = table[c]
    for k in range(n):
        target[k] = sums[pattern[k]]


@njit
def _sum_taps(padded, weights, c, offsets, target):
    """``target[k] = sum_t K[c, t] Y[pre(c, t), k + offsets[t]]``, in increasing tap order."""
    groups, n_taps, kw = weights.shape[1], weights.shape[2] * weights.shape[3], weights.shape[3]
    n = target.size
    target[:] = 0.0
    for g in range(groups):
        pre_map = padded[c if groups == 1 else g].ravel()
        for t in range(n_taps):
            w = weights[c, g, t // kw, t % kw]
            if w == 0.0:
                continue
            pre = pre_map[offsets[t]:offsets[t] + n]
            for k in range(n):
                target[k] += w if pre[k] else 0.0


@njit
def _pulse_patterns(padded, weights, c, offsets, n):
    """Bit ``g * kh * kw + t`` of ``pattern[k]`` is ``Y[pre(c, g), k + offsets[t]]``.

    ``uint16`` (``_TABLE_TAPS <= 16``) so the compiler packs 16 targets per vector register.
    """
    groups, n_taps = weights.shape[1], weights.shape[2] * weights.shape[3]
    pattern = np.zeros(n, dtype=np.uint16)
    for g in range(groups):
        pre_map = padded[c if groups == 1 else g].ravel()
        for t in range(n_taps):
            bit = 1 << (g * n_taps + t)
            pre = pre_map[offsets[t]:offsets[t] + n]
            for k in range(n):
                pattern[k] += bit if pre[k] else 0
    return pattern


@njit
def _couple(y, weights):
    """``K ⋆ Y`` for whole maps, a ``(C, H, W)`` view; summed as in :func:`_couple_block`."""
    n_maps, height, width = y.shape
    padded = _padded_pulses(y, _coupling_pad(weights, weights))
    table = _tap_sums(weights)
    out = np.empty((n_maps, height, padded.shape[2]))
    for c in range(n_maps):
        _couple_block(padded, weights, table, c, 0, width, out[c])
    return out[:, :, :width]


@njit
def _activity(f, l_prev, u_prev, cl, e_prev, params, leaky):
    """Linking and internal activity from ``W ⋆ Y`` (``cl``); returns ``(l, u, y)``."""
    n_maps, height, width = f.shape
    l = np.empty(f.shape)
    u = np.empty(f.shape)
    y = np.empty(f.shape, dtype=np.bool_)
    for c in range(n_maps):
        dl, vl, du, beta = params.decay_l[c], params.v_l[c], params.decay_u[c], params.beta[c]
        for i in range(height):
            for j in range(width):
                if leaky:
                    l[c, i, j] = (dl * l_prev[c, i, j]) + (vl * cl[c, i, j])
                else:
                    l[c, i, j] = vl * cl[c, i, j]
                u[c, i, j] = (du * u_prev[c, i, j]) + (f[c, i, j] * (1.0 + (beta * l[c, i, j])))
                y[c, i, j] = u[c, i, j] > e_prev[c, i, j]
    return l, u, y


@njit
def _fast_link(f, l_prev, u_prev, e_prev, y, link_w, params):
    """Jacobi fixed point of the linking wave within one iteration."""
    leaky = params.fast_linking == 2
    for _ in range(y.size + 1):
        l, u, y_next = _activity(f, l_prev, u_prev, _couple(y, link_w), e_prev, params, leaky)
        if np.array_equal(y_next, y):
            return l, u, y
        y = y_next
    raise RuntimeError("PCNN fast linking did not converge within N + 1 inner iterations")


@njit
def _map_block(x, st, cf, cl, c, row0, params):
    """The map (F, L, U, Y, E) for rows ``row0 ...`` of map ``c``, in place on the state ``st``.

    ``cf``/``cl`` are the block's couplings (rows, >= W). Expression forms are the twin's
    (Brian's print). Each element reads only its own previous value, so updating in place is
    exact. One loop per variable: a loop touching all ten arrays needs more run-time overlap
    checks than the vectoriser allows, and would run scalar.
    """
    df, vf, dl, vl = params.decay_f[c], params.v_f[c], params.decay_l[c], params.v_l[c]
    du, beta, de, ve = params.decay_u[c], params.beta[c], params.decay_e[c], params.v_e[c]
    f, l, u, e, y = st
    width = x.shape[2]
    for r in range(cf.shape[0]):
        i = row0 + r
        for j in range(width):
            f[c, i, j] = ((df * f[c, i, j]) + (vf * cf[r, j])) + x[c, i, j]
        for j in range(width):
            l[c, i, j] = (dl * l[c, i, j]) + (vl * cl[r, j])
        for j in range(width):
            u[c, i, j] = (du * u[c, i, j]) + (f[c, i, j] * (1.0 + (beta * l[c, i, j])))
        for j in range(width):
            y[c, i, j] = u[c, i, j] > e[c, i, j]     # E[n-1]: e is updated next
        for j in range(width):
            e[c, i, j] = (de * e[c, i, j]) + (ve * (1.0 if y[c, i, j] else 0.0))


@njit
def _threshold(e_prev, y, params):
    """``E[n] = d_E E[n-1] + V_E Y[n]`` over whole maps (after fast linking)."""
    n_maps, height, width = e_prev.shape
    e = np.empty(e_prev.shape)
    for c in range(n_maps):
        de, ve = params.decay_e[c], params.v_e[c]
        for i in range(height):
            for j in range(width):
                e[c, i, j] = (de * e_prev[c, i, j]) + (ve * (1.0 if y[c, i, j] else 0.0))
    return e


@njit
def _pcnn_step(x, state, params):
    """The jitted pure step behind :func:`pcnn_step` (unchecked)."""
    return pcnn_advance(x, copy_state(state), params)


def pcnn_step(x: np.ndarray, state: PCNNState, params: PCNNKernelParams, *,
              check: bool = True) -> tuple[np.ndarray, PCNNState]:
    """One pure PCNN iteration: :func:`pcnn_advance` on a copy of ``state`` (no argument is
    modified).

    ``check`` (default on) first checks that ``x`` ``(C, H, W)``, ``state`` and ``params``
    fit together, as :func:`bioplastic.simulate` does, and the new state for NaN/inf after
    the step (:class:`~bioplastic.rules.DivergenceError`); ``check=False`` skips
    both for pieces validated already (a mismatch then reads memory out of bounds).
    Returns ``(pulses (C, H, W) bool, new_state)``.
    """
    return checked_step(_pcnn_step, check_consistency, "pcnn_step", x, state, params,
                        check=check)


@njit
def pcnn_advance(x: np.ndarray, state: PCNNState, params: PCNNKernelParams
                 ) -> tuple[np.ndarray, PCNNState]:
    """One PCNN iteration (Convention A), updating the arrays of ``state`` in place.

    Parameters
    ----------
    x : float64 (C, H, W)
        Stimulus ``S[n]``.
    state : PCNNState
        Updated in place.
    params : PCNNKernelParams
        From :func:`pcnn_prepare` (it holds the coupling kernels); not modified.

    Returns
    -------
    pulses : bool (C, H, W)
        ``Y[n]`` (a new array, not the state's).
    state : PCNNState
    """
    n_maps, height, width = state.f.shape
    feeding_weights, linking_weights = params.feeding_weights, params.linking_weights
    padded = _padded_pulses(state.y, _coupling_pad(feeding_weights, linking_weights))
    fast = params.fast_linking != 0
    if fast:  # the inner iteration starts again from the previous iterate
        l_prev, u_prev, e_prev = state.l.copy(), state.u.copy(), state.e.copy()
    # Couplings and map block by block of rows: the couplings never leave the cache.
    cf_block = np.empty((_BLOCK_ROWS, padded.shape[2]))
    cl_block = np.empty((_BLOCK_ROWS, padded.shape[2]))
    feeding_table, linking_table = _tap_sums(feeding_weights), _tap_sums(linking_weights)
    for c in range(n_maps):
        for row0 in range(0, height, _BLOCK_ROWS):
            rows = min(_BLOCK_ROWS, height - row0)
            cf, cl = cf_block[:rows], cl_block[:rows]
            _couple_block(padded, feeding_weights, feeding_table, c, row0, width, cf)
            _couple_block(padded, linking_weights, linking_table, c, row0, width, cl)
            _map_block(x, state, cf, cl, c, row0, params)
    if fast:
        l, u, y = _fast_link(state.f, l_prev, u_prev, e_prev, state.y, linking_weights, params)
        state.l[...] = l
        state.u[...] = u
        state.y[...] = y
        state.e[...] = _threshold(e_prev, y, params)
    return state.y.copy(), state


# ------------------------------------------------------------------------------- front end


def _stimulus_sequence(stimulus, n_steps, allow_negative: bool):
    """Return ``(S (T, C, H, W), squeeze_channel)`` from the accepted stimulus forms."""
    s = as_float_array("stimulus", stimulus)
    if not allow_negative and np.any(s < 0):
        raise ValueError("stimulus must be non-negative (multiplicative linking assumes F >= 0); "
                         "pass allow_negative=True for signed drives")
    if n_steps is not None:
        n_steps = positive_int("n_steps", n_steps)
        if s.ndim not in (2, 3):
            raise ValueError(f"a static stimulus must be (H, W) or (C, H, W), got {s.shape}")
        squeeze = s.ndim == 2
        if s.size == 0:
            raise ValueError(f"stimulus must not be empty, got shape {s.shape}")
        maps = s[None] if squeeze else s
        return np.broadcast_to(maps, (int(n_steps),) + maps.shape).copy(), squeeze
    if s.ndim not in (3, 4):
        raise ValueError("a time-varying stimulus must be (T, H, W) or (T, C, H, W), got "
                         f"{s.shape}; pass n_steps for a static image")
    if s.size == 0:
        raise ValueError(f"stimulus must not be empty, got shape {s.shape}")
    squeeze = s.ndim == 3
    return (s[:, None] if squeeze else s).copy(), squeeze


def run_pcnn(stimulus, params: PCNNParams | None = None, *, n_steps: int | None = None,
             record=("e",), record_units=None, allow_negative: bool = False) -> Trace:
    """Run a PCNN over a stimulus; the front end over :func:`bioplastic.simulate`.

    Parameters
    ----------
    stimulus : array
        A static image ``(H, W)`` or stack ``(C, H, W)`` held for ``n_steps`` iterations, or
        (``n_steps=None``) a time-major ``(T, H, W)`` or ``(T, C, H, W)`` sequence.
    params : PCNNParams, optional
        Default ``PCNNParams()`` (Zhan's demo values, no coupling).
    n_steps : int, optional
    record : sequence of str
        State fields to record after every iteration (``"f", "l", "u", "e"``).
    record_units : int array, optional
        Record only these neurons (flat indices into ``(C, H, W)``; see
        :func:`bioplastic.simulate`); records are then ``(T, len(record_units))``.
    allow_negative : bool
        Accept negative stimuli (off by default: the classic model needs ``S >= 0``).

    Returns
    -------
    Trace
        ``spikes[n-1]`` is ``Y[n]``; records ``(T, C, H, W)`` — or ``(T, H, W)`` for
        single-map input given without a channel axis.
    """
    params = PCNNParams() if params is None else params
    drive, squeeze = _stimulus_sequence(stimulus, n_steps, allow_negative)
    shape = drive.shape[1:]
    trace = simulate(pcnn_advance, drive, pcnn_init(shape, params), pcnn_prepare(params, shape),
                     record=record, record_units=record_units)
    if not squeeze:
        return trace
    records = trace.records if record_units is not None else \
        {name: value[:, 0] for name, value in trace.records.items()}
    return Trace(trace.spikes[:, 0], records, trace.state)
