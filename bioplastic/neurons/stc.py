"""Autaptic spatio-temporal circuit (STC) neurons on dense layers: STC-LIF, STC-PLIF, STC-LMH.

A layer of ``n`` neurons receives an input current ``I[t] = W_x X[t]`` (computed outside, one
row per step). Two modulators read the layer's **own spikes of the previous step** ``S[t-1]``:
the temporal gate (the autapse) and the spatial gate::

    alpha_i[t] = 1 + tanh(sum_j A_h[i, j] S_j[t-1] + a_i)        in (0, 2)
    beta_i[t]  = 1 + tanh(sum_j A_v[i, j] S_j[t-1] + b_i)        in (0, 2)

and the membrane update depends on the base neuron (``base``)::

    "lif"  : H = alpha*H + beta*I                                (IF when alpha = beta = 1)
    "plif" : H = (k*alpha)*H + (g*beta)*I,  k = sigmoid(w), g = 1 - sigmoid(w)
    "lmh"  : D = (c_du*D + c_su*H) + beta*I     (D reads the un-gated H)
             H = alpha*H
             H = c_dp*D + c_sp*H,  c_du = sigmoid(d_u) - 0.5, c_su = sigmoid(s_u) - 0.5,
                                   c_dp = sigmoid(d_p) + 0.5, c_sp = sigmoid(s_p) + 0.5

then ``S = [H >= v_th]`` (``>=``: a neuron whose H lands exactly on the threshold fires) and the
**soft reset** ``H = H - v_th*S``. All states start at zero. With zero modulator weights and
biases, ``alpha = beta = 1`` exactly and the three variants are exactly the non-leaky IF neuron
with soft reset, the corrected PLIF ``sigmoid(w) H + (1 - sigmoid(w)) I`` and LM-H.

Reference: L. Wang and Z. Yu, "Autaptic Synaptic Circuit Enhances Spatio-temporal Predictive
Learning of Spiking Neural Networks", ICML 2024 (arXiv 2406.00405), and its public code
(cells on OpenSTL/SpikingJelly). This dense kernel is the 1×1 / fully connected case without
GroupNorm; the conv cells with GroupNorm are :mod:`bioplastic.nn.stc`. The twin is
:mod:`bioplastic.reference.stc`.

**Schedule** (Brian2's order within step ``t``): groups (the modulator sums read ``S[t-1]``,
summed per neuron over presynaptic indices in increasing order; then the gates and the membrane
update, in the statement order above) → thresholds (``H >= v_th``) → resets (``H -= v_th*S``).
There are no synaptic events: the modulators are summed variables.

Exactness choices (they make the twin bit-identical):

* ``tanh`` is NumPy's (called from an object-mode block), which is what Brian2's numpy target
  evaluates; NumPy's vectorised ``tanh`` and the C library's differ in the last bit for about
  a third of all arguments on AVX-512 machines.
* The modulator sums start from ``+0.0`` and add ``A[i, j]`` for each active presynaptic ``j``
  in increasing order, as Brian2's ``bincount`` does over synapses sorted by ``(pre, post)``;
  zero weights and silent neurons add ``±0``, which never changes a sum, so skipping them is
  exact.
* Multi-term expressions are evaluated left to right in the grouping shown above; the sigmoid
  constants are computed once in NumPy by :func:`stc_prepare` and handed to both sides.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import objmode

from .._jit import njit
from .._state import copy_state
from .._validate import as_float_array, check_finite, per_unit, positive, positive_int
from ..simulate import Trace, simulate
from ._checks import check_stc as check_consistency  # simulate's hook
from ._checks import checked_step

__all__ = ["STCParams", "STCKernelParams", "STCState", "STCModulators", "BASES", "POST_DTYPES",
           "stc_prepare", "stc_init", "stc_modulators", "dense_modulators", "post_dtype",
           "stc_advance", "stc_step", "run_stc", "sigmoid"]

#: Base neurons and their kernel codes.
BASES = {"lif": 0, "plif": 1, "lmh": 2}


class STCParams(NamedTuple):
    """User-facing parameters (dimensionless); each float may be a per-neuron array ``(n,)``.

    ``base`` chooses the neuron the gates act on: ``"lif"`` (the paper's STC-LIF; with unit
    gates a non-leaky IF neuron), ``"plif"`` or ``"lmh"``.
    """

    base: str = "lif"
    v_th: float = 1.0        # threshold; soft reset subtracts v_th*S
    bias_h: float = 0.0      # a: bias of the temporal (autaptic) gate
    bias_v: float = 0.0      # b: bias of the spatial gate
    plif_w: float = 0.0      # STC-PLIF: decay sigmoid(w), input gain 1 - sigmoid(w)
    lmh_d_u: float = 0.0     # STC-LMH: D decay sigmoid(d_u) - 0.5
    lmh_s_u: float = 0.0     # STC-LMH: H -> D coupling sigmoid(s_u) - 0.5
    lmh_d_p: float = 0.0     # STC-LMH: D -> H coupling sigmoid(d_p) + 0.5
    lmh_s_p: float = 0.0     # STC-LMH: H -> H coupling sigmoid(s_p) + 0.5


class STCKernelParams(NamedTuple):
    """What the kernel reads: ``variant`` (see :data:`BASES`) and float64 arrays ``(n,)``.

    ``k_h``/``k_i`` multiply ``alpha*H``/``beta*I`` in the PLIF form (1 for LIF); ``c_*`` are
    the LM-H constants (unused otherwise).
    """

    variant: int
    v_th: np.ndarray
    bias_h: np.ndarray
    bias_v: np.ndarray
    k_h: np.ndarray
    k_i: np.ndarray
    c_du: np.ndarray
    c_su: np.ndarray
    c_dp: np.ndarray
    c_sp: np.ndarray


class STCState(NamedTuple):
    h: np.ndarray        # membrane H after the reset (n,)
    d: np.ndarray        # LM-H dendritic state D (n,); stays 0 for "lif" and "plif"
    s: np.ndarray        # this layer's spikes of the last step, 0.0/1.0 (n,): the autapse input
    alpha: np.ndarray    # temporal gate of the last step (n,)
    beta: np.ndarray     # spatial gate of the last step (n,)


class STCModulators(NamedTuple):
    """Both gates' modulator weights as one pre-major (CSC) list of the non-zero entries of the
    stacked ``(2n, n)`` matrix ``[A_h; A_v]``: row ``i`` is neuron ``i``'s temporal gate, row
    ``n + i`` its spatial gate, and ``post`` indexes the flat ``(2, n)`` gate arguments.

    Column ``j`` (presynaptic neuron ``j``) owns ``post[indptr[j]:indptr[j+1]]`` and the weights
    beside them, rows ascending (so its ``A_h`` entries come first). Active columns are
    delivered in increasing ``j``, so each gate argument sums its terms in increasing
    presynaptic order (the order of the Brian2 twin's summed variables). Only non-zero weights
    are kept, and the row indices are unsigned and as narrow as ``2n`` allows (``uint16`` up to
    32,768 neurons, else ``uint32``): an index needs no negative-wraparound test, and one run
    per active column instead of one per gate lets the hardware prefetcher stream it (the
    sums took 7 % less than with a list per gate).
    """

    indptr: np.ndarray   # int64 (n + 1,)
    post: np.ndarray     # uint16 or uint32 (nnz,): i for A_h[i, j], n + i for A_v[i, j]
    w: np.ndarray        # float64 (nnz,)


#: The dtypes the modulators' row indices may have (narrowest first).
POST_DTYPES = (np.uint16, np.uint32)


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in NumPy (the constants both the kernel and the twin use)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def stc_prepare(params: STCParams, n: int) -> STCKernelParams:
    """Validate ``params`` for ``n`` neurons and derive the kernel's per-neuron arrays."""
    if not isinstance(params, STCParams):
        raise TypeError(f"params must be STCParams, got {type(params).__name__}")
    n = positive_int("n", n)
    if not isinstance(params.base, str) or params.base not in BASES:
        raise ValueError(f"base must be one of {sorted(BASES)}, got {params.base!r}")
    ones = np.ones(n)
    k_h, k_i = ones, ones.copy()
    if params.base == "plif":
        k_h = sigmoid(per_unit("plif_w", params.plif_w, n))
        k_i = 1.0 - k_h
    lmh = {f: per_unit(f, getattr(params, f), n) for f in ("lmh_d_u", "lmh_s_u", "lmh_d_p",
                                                           "lmh_s_p")}
    return STCKernelParams(
        variant=BASES[params.base],
        # a threshold <= 0 fires every step, and the soft reset then adds to H
        v_th=positive("v_th", per_unit("v_th", params.v_th, n)),
        bias_h=per_unit("bias_h", params.bias_h, n),
        bias_v=per_unit("bias_v", params.bias_v, n),
        k_h=k_h, k_i=k_i,
        c_du=sigmoid(lmh["lmh_d_u"]) - 0.5, c_su=sigmoid(lmh["lmh_s_u"]) - 0.5,
        c_dp=sigmoid(lmh["lmh_d_p"]) + 0.5, c_sp=sigmoid(lmh["lmh_s_p"]) + 0.5,
    )


def stc_init(n: int, params: STCParams | None = None) -> STCState:
    """All-zero initial state (``H = D = 0``, no previous spikes, gates 1)."""
    stc_prepare(STCParams() if params is None else params, n)
    return STCState(np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n), np.ones(n))


def post_dtype(n: int) -> type:
    """The narrowest unsigned dtype of :data:`POST_DTYPES` that indexes ``n`` neurons."""
    return next(d for d in POST_DTYPES if n - 1 <= np.iinfo(d).max)


def dense_modulators(w_h, w_v, n: int, *, finite: bool = True) -> list:
    """Validate dense ``A_h``, ``A_v`` (each ``(n, n)`` = ``(n_post, n_pre)``, finite, or
    ``None`` for all zero) and return them as C-ordered float64 arrays (``None`` kept).
    ``finite=False`` leaves the finiteness check to the caller's own pass."""
    n = positive_int("n", n)
    dense = []
    for name, w in (("w_h", w_h), ("w_v", w_v)):
        if w is not None:
            w = as_float_array(name, w, ndim=2, finite=finite)
            if w.shape != (n, n):
                raise ValueError(f"{name} must have shape (n, n) = ({n}, {n}) (n_post, n_pre), "
                                 f"got {w.shape}")
        dense.append(w)
    return dense


#: Entries per block of a row that :func:`_row_nonzeros` counts before it scans (measured on
#: the 4,096-neuron bench matrices, 1 % dense: 8-64 within 10 %, 32 best).
_SCAN_BLOCK = 32


@njit
def _row_nonzeros(row, cols):
    """Write the column indices of ``row``'s non-zero entries to ``cols`` (ascending) and
    return how many. Each block of ``_SCAN_BLOCK`` entries is first counted in a loop LLVM
    vectorises; only blocks holding an entry are scanned, branch-free. NaN and infinities
    compare unequal to 0, so they are kept (and caught by the caller's finiteness test)."""
    count = 0
    n_blocks = row.size // _SCAN_BLOCK
    for b in range(n_blocks):
        start = b * _SCAN_BLOCK
        found = 0
        for j in range(start, start + _SCAN_BLOCK):
            found += row[j] != 0.0
        if found:
            for j in range(start, start + _SCAN_BLOCK):
                cols[count] = j
                count += row[j] != 0.0
    for j in range(n_blocks * _SCAN_BLOCK, row.size):
        cols[count] = j
        count += row[j] != 0.0
    return count


@njit
def _grown(a, size: int, kept: int):
    """A copy of ``a[:kept]`` in a new array of ``size`` entries."""
    b = np.empty(size, dtype=a.dtype)
    b[:kept] = a[:kept]
    return b


@njit
def _row_major_entries(w, index_probe):
    """One sweep of ``w`` in row order: its non-zero entries' columns and values in row-major
    order, and how many each row holds (``(row_counts, cols, values)``, the last two trimmed)."""
    n_post, n_pre = w.shape
    row_cols = np.empty(n_pre, dtype=np.int64)
    row_counts = np.empty(n_post, dtype=np.int64)
    capacity = max(1024, (n_post * n_pre) // 64)
    cols = np.empty(capacity, dtype=index_probe.dtype)
    values = np.empty(capacity)
    m = 0
    for i in range(n_post):
        k = _row_nonzeros(w[i], row_cols)
        if m + k > capacity:
            capacity = max(2 * capacity, m + k)
            cols, values = _grown(cols, capacity, m), _grown(values, capacity, m)
        for a in range(k):
            cols[m + a] = row_cols[a]
            values[m + a] = w[i, row_cols[a]]
        row_counts[i] = k
        m += k
    return row_counts, cols[:m], values[:m]


@njit
def _distribute(row_counts, cols, values, first_row, fill, post, weights):
    """Write row-major entries (rows ``first_row, first_row + 1, ...``) to their columns'
    next free places ``fill[j]``: rows taken in order end up ascending within each column."""
    a = 0
    for r in range(row_counts.size):
        for _ in range(row_counts[r]):
            j = cols[a]
            post[fill[j]] = first_row + r
            weights[fill[j]] = values[a]
            fill[j] += 1
            a += 1


@njit
def _stacked_csc(entries_h, entries_v, n_pre, post_dtype_probe):
    """The pre-major lists of the stacked matrix ``[A_h; A_v]`` from each matrix's row-major
    entries (:func:`_row_major_entries`): ``(indptr, post, weights)``."""
    counts = np.zeros(n_pre + 1, dtype=np.int64)
    for cols in (entries_h[1], entries_v[1]):
        for a in range(cols.size):
            counts[cols[a] + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    post = np.empty(indptr[n_pre], dtype=post_dtype_probe.dtype)
    weights = np.empty(indptr[n_pre])
    _distribute(entries_h[0], entries_h[1], entries_h[2], 0, fill, post, weights)
    _distribute(entries_v[0], entries_v[1], entries_v[2], entries_h[0].size, fill, post,
                weights)
    return indptr, post, weights


def _gate_entries(name: str, w, n: int, probe) -> tuple:
    """One gate's row-major non-zero entries (none for ``None``); a non-finite weight is
    named here (NaN and infinities are never 0, so they are among the entries)."""
    if w is None:
        return np.zeros(n, dtype=np.int64), np.empty(0, dtype=probe.dtype), np.empty(0)
    entries = _row_major_entries(w, probe)
    if not np.all(np.isfinite(entries[2])):
        check_finite(name, w)
    return entries


def stc_modulators(w_h, w_v, n: int) -> STCModulators:
    """Pack dense modulator weights ``A_h``, ``A_v`` (each ``(n, n)`` = ``(n_post, n_pre)``,
    finite; ``None`` means all zero) into the kernel's pre-major form (:class:`STCModulators`).

    Zero weights are left out: adding ``±0.0`` to a sum that starts at ``+0.0`` never changes
    it, so the sums are those of the full matrices bit for bit.
    """
    # the finiteness check runs on the packed entries (check_finite names the argument)
    dense = dense_modulators(w_h, w_v, n, finite=False)
    probe = np.empty(0, dtype=post_dtype(2 * n))
    entries = [_gate_entries(name, w, n, probe) for name, w in zip(("w_h", "w_v"), dense,
                                                                   strict=True)]
    return STCModulators(*_stacked_csc(entries[0], entries[1], n, probe))


def _numpy_tanh_in_place(a: np.ndarray) -> None:
    np.tanh(a, out=a)


@njit(nogil=False)     # an object-mode block holds the GIL anyway
def tanh_in_place(a):
    """``a ← tanh(a)`` by NumPy's ``tanh`` (float64 array): the ``tanh`` Brian2's numpy target
    evaluates, so kernel and twin see the same bits."""
    with objmode():
        _numpy_tanh_in_place(a)


@njit
def _active_neurons(s, active):
    """Write the indices of the neurons with ``s > 0.5`` to ``active`` (ascending); return how
    many. Branch-free: with about half the neurons firing a branch per neuron mispredicts."""
    count = 0
    for j in range(s.size):
        active[count] = j
        count += s[j] > 0.5
    return count


@njit
def _modulator_sums(active, n_active, indptr, post, w, out):
    """``out = [A_h; A_v] S`` (flat, ``2n``): each active column, in increasing order, adds
    its weights, so each sum runs from ``+0.0`` in increasing presynaptic order."""
    out[:] = 0.0
    for a in range(n_active):
        j = active[a]
        # the column as slices, indexed from 0: a signed index running from indptr[j] would
        # get Numba's negative-index wraparound test on every entry (10-35 % of the sums' time)
        rows, weights = post[indptr[j]:indptr[j + 1]], w[indptr[j]:indptr[j + 1]]
        for k in range(rows.size):
            out[rows[k]] += weights[k]


@njit
def _gate_arguments(state, params, mods, gates):
    """``gates[0] = A_h S + a``, ``gates[1] = A_v S + b`` (sums in increasing pre order)."""
    n = state.s.size
    active = np.empty(n, dtype=np.int64)
    n_active = _active_neurons(state.s, active)
    _modulator_sums(active, n_active, mods.indptr, mods.post, mods.w, gates.reshape(2 * n))
    for i in range(n):
        gates[0, i] = gates[0, i] + params.bias_h[i]
        gates[1, i] = gates[1, i] + params.bias_v[i]


@njit
def stc_advance(x, state, params, mods):
    """One step for all neurons, updating ``state``'s arrays in place.

    ``x``: input current ``I[t]`` (n,); ``params``: :class:`STCKernelParams`; ``mods``:
    :class:`STCModulators` (not modified). Returns ``(spikes (n,) bool, state)``. Run it with
    ``bioplastic.simulate(stc_advance, inputs, state, params, mods)``, which hands it a private
    copy of the initial state.
    """
    n = state.h.size
    h, d, s, alpha, beta = state.h, state.d, state.s, state.alpha, state.beta
    gates = np.empty((2, n))
    _gate_arguments(state, params, mods, gates)
    tanh_in_place(gates)
    spikes = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        alpha[i] = 1.0 + gates[0, i]
        beta[i] = 1.0 + gates[1, i]
        if params.variant == 2:
            d[i] = (params.c_du[i] * d[i] + params.c_su[i] * h[i]) + beta[i] * x[i]
            h[i] = alpha[i] * h[i]
            h[i] = params.c_dp[i] * d[i] + params.c_sp[i] * h[i]
        else:
            h[i] = (params.k_h[i] * alpha[i]) * h[i] + (params.k_i[i] * beta[i]) * x[i]
        spikes[i] = h[i] >= params.v_th[i]
        s[i] = 1.0 if spikes[i] else 0.0
        h[i] = h[i] - params.v_th[i] * s[i]
    return spikes, state


@njit
def _stc_step(x, state, params, mods):
    """The jitted pure step behind :func:`stc_step` (unchecked)."""
    return stc_advance(x, copy_state(state), params, mods)


def stc_step(x: np.ndarray, state: STCState, params: STCKernelParams, mods: STCModulators, *,
             check: bool = True) -> tuple[np.ndarray, STCState]:
    """One pure step: :func:`stc_advance` on a copy of ``state`` (arguments not modified).

    ``x``: ``(n,)``; with ``check`` any array-like, converted to float64 as :func:`run_stc`
    converts its inputs (``check=False``: a float64 array). ``check`` (default on) first
    checks that ``x``, ``state``, ``params`` and ``mods`` fit together, as
    :func:`bioplastic.simulate` does, and the new state for NaN/inf after the step;
    ``check=False`` skips both (a mismatch then reads out of bounds).
    """
    if check:
        x = as_float_array("x", x)
    return checked_step(_stc_step, check_consistency, "stc_step", x, state, params, mods,
                        check=check)


def run_stc(inputs, params: STCParams | None = None, *, w_h=None, w_v=None,
            record=("h",), record_units=None) -> Trace:
    """Simulate a dense STC layer from rest; the front end over :func:`bioplastic.simulate`.

    Parameters
    ----------
    inputs : array (T, n)
        Input current ``I[t]`` per step (finite); ``T >= 1``.
    params : STCParams, optional
    w_h, w_v : array (n, n), optional
        Modulator weights ``A_h`` (temporal gate; the diagonal is the autapse) and ``A_v``
        (spatial gate), ``(n_post, n_pre)``; default all zero.
    record : sequence of str
        State fields to record after every step (``"h"``, ``"d"``, ``"s"``, ``"alpha"``,
        ``"beta"``).
    record_units : int array, optional
        Record only these neurons.

    Returns
    -------
    Trace
        ``spikes (T, n)``, the records ``(T, n)`` and the final :class:`STCState`.
    """
    params = STCParams() if params is None else params
    drive = as_float_array("inputs", inputs, ndim=2)
    if drive.shape[0] == 0 or drive.shape[1] == 0:
        raise ValueError(f"inputs must have shape (T, n) with T >= 1 and n >= 1, "
                         f"got {drive.shape}")
    n = drive.shape[1]
    kp = stc_prepare(params, n)
    mods = stc_modulators(w_h, w_v, n)
    return simulate(stc_advance, drive, stc_init(n, params), kp, mods, record=record,
                    record_units=record_units)
