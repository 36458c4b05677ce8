"""Recurrent excitatory/inhibitory LIF network with plastic per-synapse delays (RDL, UDL).

Populations: ``n_in`` input spike sources (pre-drawn, e.g. encoded events), ``n_exc``
excitatory and ``n_inh`` inhibitory LIF neurons (neuron index: excitatory ``0..n_exc-1``, then
inhibitory). Four synaptic pathways, each Brian2 ``Synapses`` object of the twin::

    0 input_exc   input -> exc      plastic weights (trace STDP) and learned delays
    1 exc_exc     exc   -> exc      plastic weights (trace STDP) and learned delays
    2 exc_inh     exc   -> inh      static (lateral inhibition, e.g. one-to-one per position)
    3 inh_exc     inh   -> exc      static, negative weights (to the other maps)

Equations (per neuron; mV, ms)::

    dv/dt     = (v_rest - v) / tau_m                    (unless refractory)
    dtheta/dt = -theta / tau_theta                      (threshold homeostasis; exc only)
    spike     : v > v_th + theta  and not refractory    (strict >)
    reset     : v <- v_reset ; theta <- theta + theta_plus
    synapse   : v_post += w  at arrival (dropped while post is refractory, as in Brian2)

Integration is exact, in the expression form of :mod:`bioplastic.neurons.lif` (whose
``lif_groups_thresholds`` and ``lif_resets`` this kernel calls, with zero external drive).
Plastic synapses carry event-driven pair-STDP traces (:mod:`bioplastic.rules.stdp`,
``triplet=False``): on a delayed arrival ``x_pre`` is bumped and ``w`` depressed by
``eta_pre * x_post``; on a post spike ``w`` is potentiated by ``eta_post * x_pre`` and
``x_post`` bumped.

**Delays.** Each synapse has a float delay ``delay_ms`` (the learned variable) and an integer
step delay ``D = floor(delay_ms/dt + 0.5)`` (nearest step, halves up: Brian2's C++ spike queue).
Delays change only between runs (:func:`rsnn_set_delays`), as in Brian2, where ``delay`` is
constant during a ``run()``. Spikes already queued when delays change keep the arrival step of
their old delay (Brian's queue stores synapse indices in future slots): they are moved into a
*pending* list and delivered before any spike pushed after the change.

**Schedule** (Brian2's order within step ``n``, ``t = n*dt``): groups (refractory flags,
theta decay, exact ``v`` update) → thresholds (``v > v_th + theta``; the input spikes of step
``n`` are emitted here) → synapses, pre pathways in pathway order 0..3; per pathway, events due
now: pending ones first (queued before the last delay change; push order), then spikes of step
``n - d`` through synapses of delay ``d`` (oldest spikes first, then source index, then synapse
index: :func:`~bioplastic.neurons.connectivity.due_blocks`); a zero delay is delivered in the
same step → post pathways (potentiation for every neuron that spiked at ``n``) → resets.
A zero-delay input to a neuron that spikes in the same step is lost (it is refractory).

Reference: Nadafian, Mozafari, Masquelier & Ganjtabesh, arXiv 2406.11778 (2024) (RDL; its
architecture is not published, so this network is the library's reconstruction, see
``docs/action_recognition.md``); Nadafian & Ganjtabesh, *Neural Computation* 36(7):1332-1352
(2024) (UDL). The twin is :mod:`bioplastic.reference.rsnn`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._state import copy_into, copy_state, with_step
from .._validate import (
    as_float_array,
    check_finite,
    check_shape,
    count,
    finite_float,
    per_unit,
    positive,
    scalar_or_shaped,
)
from ..rules.stdp import (
    PostIndex,
    STDPKernelParams,
    STDPParams,
    bounded,
    depression_dw,
    event_decay,
    post_index,
    potentiation_dw,
    stdp_prepare,
    trace_on_spike,
)
from ..simulate import Trace, simulate
from . import _checks
from .lif import (
    NEVER_SPIKED,
    LIFKernelParams,
    LIFParams,
    lif_groups_thresholds,
    lif_prepare,
    lif_resets,
)

__all__ = [
    "PATHWAYS", "RSNNParams", "RSNNKernelParams", "RSNNTopology", "RSNNState", "rsnn_prepare",
    "rsnn_topology", "rsnn_init", "rsnn_step", "rsnn_advance", "rsnn_set_delays", "run_rsnn",
    "lateral_inhibition", "DEFAULT_RSNN_STDP", "check_consistency",
]

#: Pathway names, in the order the synapses slot runs them (the twin's Synapses names sort so).
PATHWAYS = ("input_exc", "exc_exc", "exc_inh", "inh_exc")
_PLASTIC = (True, True, False, False)   # pathways that may carry STDP and learned delays

#: Pair STDP (no triplet term) with all-to-all traces, small rates: the network's default.
DEFAULT_RSNN_STDP = STDPParams(tau_pre_ms=10.0, tau_post_ms=10.0, eta_pre=1e-3, eta_post=1e-3,
                               w_min=0.0, w_max=10.0, all_to_all=True, triplet=False)


class RSNNParams(NamedTuple):
    """User-facing parameters (floats; voltages in mV, times in ms)."""

    dt_ms: float = 1.0
    tau_exc_ms: float = 10.0
    v_rest_exc_mv: float = -65.0
    v_reset_exc_mv: float = -65.0
    v_th_exc_mv: float = -55.0
    t_ref_exc_ms: float = 2.0
    tau_theta_ms: float = 100.0     # threshold homeostasis decay
    theta_plus_mv: float = 0.0      # threshold increment per spike (0: off)
    tau_inh_ms: float = 5.0
    v_rest_inh_mv: float = -65.0
    v_reset_inh_mv: float = -65.0
    v_th_inh_mv: float = -60.0
    t_ref_inh_ms: float = 1.0
    max_delay_ms: float = 20.0      # sizes the spike ring: every delay must round to <= this
    stdp_input: bool = True         # trace STDP on input -> exc
    stdp_recurrent: bool = True     # trace STDP on exc -> exc


class RSNNKernelParams(NamedTuple):
    lif: LIFKernelParams          # per neuron (n_exc + n_inh,)
    stdp: STDPKernelParams
    stdp_on: np.ndarray           # bool (4,): pathway carries STDP
    dt_s: float


class RSNNTopology(NamedTuple):
    """Static structure (never changes after construction).

    pre : int64 (n_syn,)       global source index (inputs ``0..n_in-1``, neuron k is n_in+k)
    post : int64 (n_syn,)      target neuron index
    pathway : int64 (n_syn,)   0..3 (:data:`PATHWAYS`); synapses sorted by (pathway, pre, post)
    pathway_ptr : int64 (5,)   pathway p owns synapses ``pathway_ptr[p]:pathway_ptr[p+1]``
    src_offset : int64 (4,)    first global source of each pathway's source group
    src_count : int64 (4,)     size of that group
    row_offset : int64 (4,)    first row of the pathway in ``delay_ptr``
    by_post : PostIndex        post-major synapse lists (for on_post)
    row : int64 (n_syn,)       the (pathway, source) row of each synapse in ``delay_ptr``
    """

    pre: np.ndarray
    post: np.ndarray
    pathway: np.ndarray
    pathway_ptr: np.ndarray
    src_offset: np.ndarray
    src_count: np.ndarray
    row_offset: np.ndarray
    by_post: PostIndex
    row: np.ndarray
    n_in: int
    n_exc: int
    n_inh: int

    @property
    def n_neurons(self) -> int:
        return self.n_exc + self.n_inh

    @property
    def n_synapses(self) -> int:
        return self.pre.size

    def local(self, pathway: int) -> tuple[np.ndarray, np.ndarray]:
        """Local ``(i, j)`` indices of one pathway's synapses (the twin's ``connect`` arrays)."""
        sl = slice(self.pathway_ptr[pathway], self.pathway_ptr[pathway + 1])
        tgt_off = self.n_exc if PATHWAYS[pathway] == "exc_inh" else 0
        return self.pre[sl] - self.src_offset[pathway], self.post[sl] - tgt_off


class RSNNState(NamedTuple):
    v: np.ndarray             # (n,) mV
    theta: np.ndarray         # (n,) mV
    last_spike: np.ndarray    # (n,) int64
    w: np.ndarray             # (n_syn,) weights (plastic arrays: topology order)
    delay_ms: np.ndarray      # (n_syn,) learned delays
    delay_steps: np.ndarray   # (n_syn,) int64, floor(delay_ms/dt + 0.5)
    x_pre: np.ndarray         # (n_syn,) STDP traces
    x_post: np.ndarray        # (n_syn,)
    last_update: np.ndarray   # (n_syn,) int64 step of each synapse's last event
    by_delay: np.ndarray      # (n_syn,) synapse ids sorted by (row, delay, id)
    delay_ptr: np.ndarray     # (n_rows, L+1) block starts of (row, delay) in by_delay
    history: np.ndarray       # (L, n_in + n) bool ring of source spikes since the last change
    spikers: np.ndarray       # (L, n_in + n) int64: row r lists the sources spiking at that step
    n_spikers: np.ndarray     # (L,) int64: how many (ascending source order)
    pend_syn: np.ndarray      # (m,) int64 events queued before the last delay change
    pend_step: np.ndarray     # (m,) int64 their arrival steps (sorted; Brian's slot order)
    pend_pos: np.ndarray      # (1,) int64 first undelivered pending event
    step: int


# ----------------------------------------------------------------------------------------------
# construction


def rsnn_prepare(params: RSNNParams, n_exc: int, n_inh: int,
                 stdp: STDPParams = DEFAULT_RSNN_STDP) -> RSNNKernelParams:
    """Validate and derive the kernel's per-neuron arrays (LIF decay factors as Brian2's)."""
    if not isinstance(params, RSNNParams):
        raise TypeError(f"params must be RSNNParams, got {type(params).__name__}")
    n_exc, n_inh = count("n_exc", n_exc, low=1), count("n_inh", n_inh)
    n = n_exc + n_inh
    for flag in ("stdp_input", "stdp_recurrent"):
        if not isinstance(getattr(params, flag), bool | np.bool_):
            raise TypeError(f"{flag} must be a bool, got {getattr(params, flag)!r}")
    p = params._replace(**{f: finite_float(f, getattr(params, f)) for f in params._fields
                           if f not in ("stdp_input", "stdp_recurrent")})

    def both(exc, inh):
        return np.concatenate([np.full(n_exc, exc), np.full(n_inh, inh)])

    lif = LIFParams(tau_m_ms=both(p.tau_exc_ms, p.tau_inh_ms),
                    v_rest_mv=both(p.v_rest_exc_mv, p.v_rest_inh_mv),
                    v_reset_mv=both(p.v_reset_exc_mv, p.v_reset_inh_mv),
                    v_th_mv=both(p.v_th_exc_mv, p.v_th_inh_mv),
                    t_ref_ms=both(p.t_ref_exc_ms, p.t_ref_inh_ms),
                    tau_theta_ms=np.full(n, p.tau_theta_ms),
                    theta_plus_mv=both(p.theta_plus_mv, 0.0), dt_ms=p.dt_ms)
    try:
        lif_kp = lif_prepare(lif, n, hoist=False)   # the E/I kernel reads C arrays
    except (TypeError, ValueError) as err:   # name the RSNN fields behind the LIF ones
        names = [r for lif_field, fields in _LIF_SOURCES.items() if lif_field in str(err)
                 for r in fields]
        if not names:
            raise
        raise type(err)(f"RSNNParams {' / '.join(names)}: {err}") from err
    stdp_on = np.array([bool(p.stdp_input), bool(p.stdp_recurrent), False, False])
    return RSNNKernelParams(lif_kp, stdp_prepare(stdp), stdp_on,
                            positive("dt_ms", p.dt_ms) * 0.001)


#: the RSNNParams fields behind each per-neuron LIFParams field (for error messages)
_LIF_SOURCES = {
    "tau_m_ms": ("tau_exc_ms", "tau_inh_ms"), "v_rest_mv": ("v_rest_exc_mv", "v_rest_inh_mv"),
    "v_reset_mv": ("v_reset_exc_mv", "v_reset_inh_mv"),
    "v_th_mv": ("v_th_exc_mv", "v_th_inh_mv"), "t_ref_ms": ("t_ref_exc_ms", "t_ref_inh_ms"),
    "tau_theta_ms": ("tau_theta_ms",), "theta_plus_mv": ("theta_plus_mv",),
    "dt_ms": ("dt_ms",),
}


def ring_size(params: RSNNParams) -> int:
    """Rows of the spike ring: ``floor(max_delay_ms/dt + 0.5) + 1``."""
    dt = positive("dt_ms", finite_float("dt_ms", params.dt_ms))
    return int(np.floor(positive("max_delay_ms", finite_float("max_delay_ms",
                                                                params.max_delay_ms))
                        / dt + 0.5)) + 1


def _length(value) -> str:
    return str(len(value)) if hasattr(value, "__len__") else "no"


def rsnn_topology(n_in: int, n_exc: int, n_inh: int, synapses: dict
                  ) -> tuple[RSNNTopology, np.ndarray, np.ndarray]:
    """Build the static topology and the plastic arrays in its order.

    Parameters
    ----------
    synapses : dict
        ``{pathway name: (pre, post, weight, delay_ms)}`` with *local* indices (e.g. for
        ``"exc_inh"``, ``pre`` in ``[0, n_exc)`` and ``post`` in ``[0, n_inh)``); weight and
        delay_ms scalars or arrays like ``pre``. Missing pathways have no synapses.

    Returns
    -------
    topology, weight (n_syn,), delay_ms (n_syn,) — sorted by (pathway, pre, post), stable.
    """
    sizes = {"input": int(n_in), "exc": int(n_exc), "inh": int(n_inh)}
    if sizes["input"] < 0 or sizes["exc"] < 1 or sizes["inh"] < 0:
        raise ValueError(f"need n_in >= 0, n_exc >= 1, n_inh >= 0, got {n_in}, {n_exc}, {n_inh}")
    unknown = set(synapses) - set(PATHWAYS)
    if unknown:
        raise ValueError(f"synapses has unknown pathways {sorted(unknown)}; known: {PATHWAYS}")
    src_base = {"input": 0, "exc": n_in, "inh": n_in + n_exc}
    tgt_base = {"exc": 0, "inh": n_exc}
    parts = []
    for p, name in enumerate(PATHWAYS):
        src, tgt = name.split("_")
        entry = synapses.get(name, ([], [], 0.0, 0.0))
        if not isinstance(entry, tuple | list) or len(entry) != 4:
            raise ValueError(f"synapses[{name!r}] must be a (pre, post, weight, delay_ms) "
                             f"tuple, got {type(entry).__name__} of {_length(entry)} items")
        pre, post, w, d = entry
        pre, post = np.asarray(pre), np.asarray(post)
        if pre.ndim != 1 or pre.shape != post.shape:
            raise ValueError(f"{name}: pre and post must be 1-D of equal length, got "
                             f"{pre.shape}, {post.shape}")
        for label, idx, bound in (("pre", pre, sizes[src]), ("post", post, sizes[tgt])):
            if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= bound):
                raise ValueError(f"{name}: {label} must be integer indices in [0, {bound})")
        w, d = (scalar_or_shaped(f"synapses[{name!r}] {label}", value, pre.shape,
                                 "one per (pre, post) pair")
                for label, value in (("weight", w), ("delay_ms", d)))
        order = np.lexsort((post, pre))
        parts.append((pre[order].astype(np.int64) + src_base[src],
                      post[order].astype(np.int64) + tgt_base[tgt],
                      np.full(pre.size, p, np.int64), w[order], d[order]))
    pre, post, pathway, w, d = (np.concatenate([part[k] for part in parts]) for k in range(5))
    counts = np.array([part[0].size for part in parts], dtype=np.int64)
    src_count = np.array([sizes[n.split("_")[0]] for n in PATHWAYS], dtype=np.int64)
    topo = RSNNTopology(
        pre=pre, post=post, pathway=pathway,
        pathway_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        src_offset=np.array([src_base[n.split("_")[0]] for n in PATHWAYS], dtype=np.int64),
        src_count=src_count,
        row_offset=np.concatenate([[0], np.cumsum(src_count)[:-1]]).astype(np.int64),
        by_post=post_index(post, n_exc + n_inh), row=np.zeros(0, np.int64), n_in=int(n_in),
        n_exc=int(n_exc), n_inh=int(n_inh))
    topo = topo._replace(row=topo.row_offset[pathway] + (pre - topo.src_offset[pathway]))
    return topo, np.ascontiguousarray(w, np.float64), np.ascontiguousarray(d, np.float64)


def lateral_inhibition(n_maps: int, n_pos: int, w_ei: float, w_ie: float):
    """Lateral inhibition between maps: exc ``(m, p) -> inh (m, p)`` one to one, and
    inh ``(m, p) -> exc (m', p)`` for every other map ``m' != m`` at the same position.

    Excitatory and inhibitory neuron ``m*n_pos + p`` is map ``m`` at position ``p``. Returns the
    ``synapses`` entries ``{"exc_inh": ..., "inh_exc": ...}`` (zero delay) for
    :func:`rsnn_topology`; ``w_ie`` should be negative.
    """
    k = np.arange(n_maps * n_pos)
    m, pos = np.divmod(k, n_pos)
    pre, post = np.nonzero((pos[:, None] == pos[None, :]) & (m[:, None] != m[None, :]))
    return {"exc_inh": (k, k, float(w_ei), 0.0), "inh_exc": (pre, post, float(w_ie), 0.0)}


def _checked_delays(topo: RSNNTopology, delay_ms, dt_ms: float, ring: int, *,
                    copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A private float64 copy of ``delay_ms`` and its step delays, refusing bad delays
    (``copy=False``: a float64 C array is taken as it is).

    One Numba pass checks and rounds (no temporary arrays); the messages are built only on
    the error path.
    """
    d = np.asarray(delay_ms)
    if d.dtype.kind not in "biuf":
        raise TypeError(f"delay_ms must be a real array, got dtype {d.dtype}")
    d = np.array(d, dtype=np.float64, order="C", copy=True if copy else None)
    check_shape("delay_ms", d, (topo.n_synapses,))
    steps = np.empty(d.size, dtype=np.int64)
    code, at = _round_delays(d, float(dt_ms), ring - 1, steps)
    if code == 1:
        raise ValueError(f"delay_ms must be finite, got {np.count_nonzero(~np.isfinite(d))} "
                         "non-finite values")
    if code == 2:
        raise ValueError(f"delay_ms must be >= 0, got a minimum of {d.min()}")
    if code == 3:
        raise ValueError(f"delay_ms must round to at most {ring - 1} steps (the ring size set by "
                         f"RSNNParams.max_delay_ms), got {steps[at]} steps ({d[at]} ms)")
    return d, steps


@njit
def _round_delays(d, dt_ms, max_steps, steps):
    """``steps = floor(d/dt + 0.5)`` (the expression of :func:`delay_steps_of`). Returns
    ``(code, index)``: 0 ok, 1 a non-finite delay, 2 a negative one, 3 the first largest
    delay when it rounds beyond ``max_steps``. Errors are ranked in that order."""
    bad_finite, bad_sign, top = False, False, -1
    for k in range(d.size):
        x = d[k]
        if not math.isfinite(x):
            bad_finite = True
            continue
        if x < 0.0:
            bad_sign = True
            continue
        s = np.int64(math.floor(x / dt_ms + 0.5))
        steps[k] = s
        if s > max_steps and (top < 0 or s > steps[top]):
            top = k
    if bad_finite:
        return 1, -1
    if bad_sign:
        return 2, -1
    if top >= 0:
        return 3, top
    return 0, -1


@njit
def _all_finite(a):
    """True when every element of a float array is finite (one pass, single-threaded: the
    BLAS-based check of ``_validate`` waits for a second thread on a busy machine)."""
    for k in range(a.size):
        if not math.isfinite(a[k]):
            return False
    return True


def _checked_weight(topo: RSNNTopology, weight, *, copy: bool = True) -> np.ndarray:
    """``weight`` as a private float64 ``(n_syn,)`` copy, refusing non-finite values
    (``copy=False``: a float64 C array is taken as it is)."""
    w = as_float_array("weight", weight, ndim=1, finite=False)
    check_shape("weight", w, (topo.n_synapses,))
    if not _all_finite(w):
        check_finite("weight", w)
    if not copy and w.flags.c_contiguous:
        return w
    return w.copy() if np.shares_memory(w, weight) else w


def _delay_index(topo: RSNNTopology, delay_steps: np.ndarray, ring: int):
    """``by_delay`` and ``delay_ptr`` for the current delays (rows = (pathway, source))."""
    return _counting_sort(topo.row, delay_steps, int(topo.src_count.sum()), ring)


@njit
def _counting_sort(row, delay_steps, n_rows, ring):
    """Stable sort of synapse ids by (row, delay): O(n_syn), no comparison sort."""
    counts = np.zeros(n_rows * ring + 1, dtype=np.int64)
    for k in range(row.size):
        counts[row[k] * ring + delay_steps[k] + 1] += 1
    for b in range(1, counts.size):
        counts[b] += counts[b - 1]
    ptr = np.empty((n_rows, ring + 1), dtype=np.int64)
    for r in range(n_rows):
        for d in range(ring + 1):
            ptr[r, d] = counts[r * ring + d]
    fill = counts   # ptr holds the block starts now: the counts fill in place (no copy)
    by_delay = np.empty(row.size, dtype=np.int64)
    for k in range(row.size):
        key = row[k] * ring + delay_steps[k]
        by_delay[fill[key]] = k
        fill[key] += 1
    return by_delay, ptr


def rsnn_init(topo: RSNNTopology, params: RSNNParams, weight, delay_ms, *, v0_mv=None,
              theta0_mv=0.0) -> RSNNState:
    """Initial state: ``v = v0_mv`` (default rest), no spikes queued, traces 0.

    ``weight`` and ``delay_ms`` are the plastic arrays in topology order (from
    :func:`rsnn_topology`); delays must be finite, ``>= 0`` and round to at most the ring size
    (``RSNNParams.max_delay_ms``).
    """
    _check_topology(topo)
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh)
    n, n_syn = topo.n_neurons, topo.n_synapses
    w = _checked_weight(topo, weight)
    ring = ring_size(params)
    d, steps = _checked_delays(topo, delay_ms, float(params.dt_ms), ring)
    by_delay, ptr = _delay_index(topo, steps, ring)
    v0 = kp.lif.v_rest.copy() if v0_mv is None else per_unit("v0_mv", v0_mv, n)
    return RSNNState(
        v=v0, theta=per_unit("theta0_mv", theta0_mv, n),
        last_spike=np.full(n, NEVER_SPIKED, dtype=np.int64), w=w, delay_ms=d, delay_steps=steps,
        x_pre=np.zeros(n_syn), x_post=np.zeros(n_syn), last_update=np.zeros(n_syn, np.int64),
        by_delay=by_delay, delay_ptr=ptr,
        history=np.zeros((ring, topo.n_in + n), dtype=np.bool_),
        spikers=np.zeros((ring, topo.n_in + n), dtype=np.int64),
        n_spikers=np.zeros(ring, dtype=np.int64),
        pend_syn=np.zeros(0, np.int64), pend_step=np.zeros(0, np.int64),
        pend_pos=np.zeros(1, np.int64), step=0)


def _hand_over(state: RSNNState, topo: RSNNTopology) -> tuple[np.ndarray, np.ndarray]:
    """The events still in flight at ``state.step``, as the new pending list.

    Old pending events not yet delivered, and events of spikes pushed since the last delay
    change that arrive at or after ``state.step``, in Brian2's slot order: by arrival step, then
    pathway (the synapses slot runs pathways in order), then push order — old pending events
    first (they were pushed before any ring event), then ring events by push step, source and
    position in the ``(source, delay)`` block. Returns ``(pend_syn, pend_step)``.
    """
    first = int(state.pend_pos[0])
    return _hand_over_kernel(state.spikers, state.n_spikers, int(state.step), state.by_delay,
                             state.delay_ptr, topo.pathway, topo.src_offset, topo.src_count,
                             topo.row_offset, state.pend_syn[first:], state.pend_step[first:])


@njit
def _hand_over_kernel(spikers, n_spikers, step, by_delay, delay_ptr, pathway, src_offset,
                      src_count, row_offset, o_syn, o_arr):
    """Two passes of the same walk (count, then fill); each ring event is found directly in
    its ``(source, delay = arrival - push)`` block of the delay index, so the cost is the
    number of events plus ``ring**2 * 4`` block look-ups per spiking source."""
    ring = n_spikers.size
    a_lo, a_hi = step, step + ring - 2
    for e in range(o_arr.size):
        a_lo = min(a_lo, o_arr[e])
        a_hi = max(a_hi, o_arr[e])
    m = 0
    out_syn = np.empty(0, dtype=np.int64)
    out_step = np.empty(0, dtype=np.int64)
    for fill in (False, True):
        if fill:
            out_syn = np.empty(m, dtype=np.int64)
            out_step = np.empty(m, dtype=np.int64)
        m, o = 0, 0
        for a in range(a_lo, a_hi + 1):
            for q in range(src_offset.size):
                while o < o_arr.size and o_arr[o] == a and pathway[o_syn[o]] == q:
                    if fill:
                        out_syn[m] = o_syn[o]
                        out_step[m] = a
                    m += 1
                    o += 1
                off, cnt, r0 = src_offset[q], src_count[q], row_offset[q]
                for push in range(max(0, step - ring + 1, a - ring + 1), min(step, a)):
                    slot = push % ring
                    delay = a - push
                    for e in range(n_spikers[slot]):
                        i = spikers[slot, e] - off
                        if i < 0 or i >= cnt:
                            continue
                        lo, hi = delay_ptr[r0 + i, delay], delay_ptr[r0 + i, delay + 1]
                        if fill:
                            for pos in range(lo, hi):
                                out_syn[m + pos - lo] = by_delay[pos]
                                out_step[m + pos - lo] = a
                        m += hi - lo
    return out_syn, out_step


def rsnn_set_delays(state: RSNNState, topo: RSNNTopology, params: RSNNParams, delay_ms, *,
                    weight=None, check: bool = True, copy: bool = True) -> RSNNState:
    """A new state with new delays (and optionally new weights), Brian2's way.

    Spikes already queued keep the arrival steps of the delays they were sent with and are
    delivered before later spikes, as Brian2's spike queue does when ``S.delay`` changes between
    ``run()`` calls. Everything is validated first: on an error nothing has changed
    (``state`` itself is never modified). The new state shares the arrays that do not change
    (membranes, traces, ...) with ``state``: states are values, and every run works on a
    private copy (:func:`bioplastic.simulate`), so sharing is safe and saves the copies.
    ``check=False`` skips the structural check of ``state`` and ``topo`` (for a state that
    :func:`run_rsnn` has just returned for this very ``topo``); the new delays and weights
    are always checked. ``copy=False`` lets the new state take ``delay_ms`` and ``weight``
    themselves when they are float64 C arrays (no copy): for arrays the caller has just made
    and will not touch again, as :func:`~bioplastic.neurons.rsnn_train.present` does.
    """
    if not isinstance(params, RSNNParams):
        raise TypeError(f"params must be RSNNParams, got {type(params).__name__}")
    ring = _check_state(state, topo) if check else state.history.shape[0]
    if check:   # what the new state keeps from the old must be finite too
        kept = ("v", "theta", "x_pre", "x_post") + (("w",) if weight is None else ())
        for field in kept:
            if not _all_finite(getattr(state, field)):
                check_finite(f"state.{field}", getattr(state, field))
    if ring != ring_size(params):
        raise ValueError(f"params.max_delay_ms gives a ring of {ring_size(params)} rows, the "
                         f"state has {ring}")
    d, steps = _checked_delays(topo, delay_ms, float(params.dt_ms), ring, copy=copy)
    w = state.w if weight is None else _checked_weight(topo, weight, copy=copy)
    pend_syn, pend_step = _hand_over(state, topo)
    by_delay, ptr = _delay_index(topo, steps, ring)
    return state._replace(
        w=w, delay_ms=d, delay_steps=steps, by_delay=by_delay, delay_ptr=ptr,
        history=np.zeros_like(state.history), n_spikers=np.zeros_like(state.n_spikers),
        pend_syn=pend_syn, pend_step=pend_step, pend_pos=np.zeros(1, np.int64))


# ----------------------------------------------------------------------------------------------
# kernel


@njit(inline="always")
def _arrive(k, step, t_s, plastic, same_tau, v, not_refractory, w, x_pre, x_post, last_update,
            post, dt_s, s):
    """One delayed event through synapse ``k`` (Brian's on_pre). Inlined: a call per event
    would pay a reference-count update per array argument. With ``same_tau`` the pre and
    post decay factors are the same number (equal time constants) and ``exp`` runs once."""
    j = post[k]
    w_old = w[k]
    if plastic:
        t_last = last_update[k] * dt_s
        f_post = event_decay(t_s, t_last, s.tau_post_s)
        f_pre = f_post if same_tau else event_decay(t_s, t_last, s.tau_pre_s)
        x_post[k] = x_post[k] * f_post
        x_pre[k] = trace_on_spike(x_pre[k] * f_pre, s.all_to_all)
        last_update[k] = step
        w[k] = bounded(w_old, depression_dw(w_old, x_post[k], s), s)
    if not_refractory[j]:
        v[j] += w_old


@njit(inline="always")
def _pre_pathways(st, step, p, topo, not_refractory, pend_lo, pend_hi, same_tau):
    """Synapses slot, pre pathways 0..3: pending events first, then the ring's, per pathway.

    The ring's events are visited in the order of
    :func:`~bioplastic.neurons.connectivity.due_blocks` (oldest spikes first, then source, then
    the ``(source, delay)`` block in synapse order), without its per-step allocation.
    """
    history, by_delay, delay_ptr, pend_syn = st.history, st.by_delay, st.delay_ptr, st.pend_syn
    spikers, n_spikers = st.spikers, st.n_spikers
    v, w, x_pre, x_post, last_update = st.v, st.w, st.x_pre, st.x_post, st.last_update
    post, pathway = topo.post, topo.pathway
    src_offset, src_count, row_offset = topo.src_offset, topo.src_count, topo.row_offset
    pathway_ptr = topo.pathway_ptr
    ring = history.shape[0]
    t_s = step * p.dt_s
    dt_s, s = p.dt_s, p.stdp
    for q in range(4):
        plastic = p.stdp_on[q]
        for e in range(pend_lo, pend_hi):
            k = pend_syn[e]
            if pathway[k] == q:
                _arrive(k, step, t_s, plastic, same_tau, v, not_refractory, w, x_pre, x_post,
                        last_update, post, dt_s, s)
        off, cnt, r0 = src_offset[q], src_count[q], row_offset[q]
        if cnt == 0 or pathway_ptr[q] == pathway_ptr[q + 1]:
            continue
        for age in range(min(ring - 1, step), -1, -1):
            row = (step - age) % ring
            for e in range(n_spikers[row]):
                i = spikers[row, e] - off
                if i < 0 or i >= cnt:
                    continue
                for pos in range(delay_ptr[r0 + i, age], delay_ptr[r0 + i, age + 1]):
                    _arrive(by_delay[pos], step, t_s, plastic, same_tau, v, not_refractory, w,
                            x_pre, x_post, last_update, post, dt_s, s)


@njit(inline="always")
def _post_pathways(spikes, st, step, p, topo, same_tau):
    """Synapses slot, post pathways: potentiation for every neuron that spiked now.

    Arrays are taken out of the tuples once: extracting one inside the loop costs a
    reference-count update per access.
    """
    s = p.stdp
    t_s = step * p.dt_s
    dt_s, stdp_on = p.dt_s, p.stdp_on
    w, x_pre, x_post, last_update = st.w, st.x_pre, st.x_post, st.last_update
    indptr, synapses, pathway_ptr = topo.by_post.indptr, topo.by_post.synapses, topo.pathway_ptr
    for j in range(spikes.size):
        if not spikes[j]:
            continue
        q = 0
        for e in range(indptr[j], indptr[j + 1]):
            k = synapses[e]
            # a neuron's synapses are listed by ascending id (checked), and the pathways own
            # consecutive ids: the pathway follows from the ids, without loading pathway[k]
            while k >= pathway_ptr[q + 1]:
                q += 1
            if not stdp_on[q]:
                continue
            t_last = last_update[k] * dt_s
            f_pre = event_decay(t_s, t_last, s.tau_pre_s)
            f_post = f_pre if same_tau else event_decay(t_s, t_last, s.tau_post_s)
            x_pre[k] = x_pre[k] * f_pre
            xp = x_post[k] * f_post
            w[k] = bounded(w[k], potentiation_dw(w[k], x_pre[k], 0.0, s), s)
            x_post[k] = trace_on_spike(xp, s.all_to_all)
            last_update[k] = step


@njit(inline="always")
def _synapses(spikes, state, step, params, topo, not_refractory, same_tau):
    """The synapses slot of step ``step``: pre pathways (pending events due now, then the
    ring's), then post pathways."""
    lo = state.pend_pos[0]
    hi = lo
    while hi < state.pend_step.size and state.pend_step[hi] == step:
        hi += 1
    _pre_pathways(state, step, params, topo, not_refractory, lo, hi, same_tau)
    state.pend_pos[0] = hi
    _post_pathways(spikes, state, step, params, topo, same_tau)


# Two compiled copies of the synapses slot, with ``same_tau`` a constant in each: a branch on
# it inside the event loops, although it never changes, made them 20-30 % slower (measured on
# the 100,000-synapse benchmark network; LLVM does not unswitch loops that large).
@njit
def _synapses_one_tau(spikes, state, step, params, topo, not_refractory):
    _synapses(spikes, state, step, params, topo, not_refractory, True)


@njit
def _synapses_two_taus(spikes, state, step, params, topo, not_refractory):
    _synapses(spikes, state, step, params, topo, not_refractory, False)


@njit
def rsnn_advance(x, state, params, topo):
    """One step, updating the arrays of ``state`` **in place**. Returns ``(spikes, state)``.

    Parameters
    ----------
    x : bool (n_in,)
        Input spikes of this step.
    state : RSNNState
        Its arrays are overwritten (:func:`bioplastic.simulate` runs it on a private copy).
    params : RSNNKernelParams
    topo : RSNNTopology

    Returns
    -------
    spikes : bool (n_exc + n_inh,)
    state : RSNNState
    """
    n = state.v.size
    step = state.step
    not_refractory = np.empty(n, dtype=np.bool_)
    spikes = np.zeros(n, dtype=np.bool_)
    lif_groups_thresholds(np.zeros(n), state.v, state.theta, state.last_spike, not_refractory,
                          spikes, step, params.lif)
    slot = step % state.history.shape[0]
    row = state.history[slot]
    copy_into(row[:topo.n_in], x)
    copy_into(row[topo.n_in:], spikes)
    m = 0
    for src in range(row.size):
        if row[src]:
            state.spikers[slot, m] = src
            m += 1
    state.n_spikers[slot] = m
    if params.stdp.tau_pre_s == params.stdp.tau_post_s:
        _synapses_one_tau(spikes, state, step, params, topo, not_refractory)
    else:
        _synapses_two_taus(spikes, state, step, params, topo, not_refractory)
    lif_resets(spikes, state.v, state.theta, params.lif)
    return spikes, with_step(state, step + 1)


@njit
def _rsnn_step(x, state, params, topo):
    """The jitted pure step behind :func:`rsnn_step` (unchecked)."""
    return rsnn_advance(x, copy_state(state), params, topo)


def rsnn_step(x: np.ndarray, state: RSNNState, params: RSNNKernelParams, topo: RSNNTopology,
              *, check: bool = True) -> tuple[np.ndarray, RSNNState]:
    """One pure step: :func:`rsnn_advance` on a copy of ``state`` (arguments unchanged).

    ``check`` (default on) first checks that ``x`` (bool ``(n_in,)``), ``state``, ``params``
    and ``topo`` fit together, as :func:`bioplastic.simulate` does, and the new state for
    NaN/inf after the step; ``check=False`` skips both (a mismatch then reads out of bounds).
    """
    return _checks.checked_step(_rsnn_step, check_consistency, "rsnn_step", x, state, params,
                                topo, check=check)


def check_inputs(inputs, n_in: int) -> np.ndarray:
    """Input spikes as a bool ``(T, n_in)`` array (the kernel trusts its shape)."""
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] < 1:
        raise ValueError(f"inputs must have shape (T >= 1, {n_in}), got {x.shape}")
    if x.dtype != np.bool_:
        raise TypeError(f"inputs must be a bool spike raster, got dtype {x.dtype}")
    return x


def run_rsnn(inputs, state: RSNNState, topo: RSNNTopology, params: RSNNParams | None = None,
             stdp: STDPParams = DEFAULT_RSNN_STDP, *, record=(), record_units=None) -> Trace:
    """Run one stimulus (``inputs`` bool (T, n_in)) from ``state``; ``state`` is unchanged.

    Returns a :class:`~bioplastic.simulate.Trace`: spikes (T, n_exc + n_inh), the records,
    and the final state (feed it to :func:`rsnn_set_delays` or the next run).
    """
    params = RSNNParams() if params is None else params
    ring = _check_state(state, topo)
    x = check_inputs(inputs, topo.n_in)
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh, stdp)
    if ring != ring_size(params):
        raise ValueError(f"state does not belong to these params: its history has "
                         f"{state.history.shape[0]} rows, params.max_delay_ms gives "
                         f"{ring_size(params)}")
    return simulate(rsnn_advance, x, state, kp, topo, record=record, record_units=record_units)


# ----------------------------------------------------------------------------------------------
# consistency (simulate's hook)

_NEURON_FIELDS = ("v", "theta", "last_spike")
_SYNAPSE_FIELDS = ("w", "delay_ms", "delay_steps", "x_pre", "x_post", "last_update", "by_delay")
_TOPO_SYNAPSE_FIELDS = ("pre", "post", "pathway", "row")
_INT_FIELDS = ("last_spike", "delay_steps", "last_update", "by_delay", "delay_ptr", "spikers",
               "n_spikers", "pend_syn", "pend_step", "pend_pos")


def _c_array(name: str, value, kind: str, ndim: int) -> np.ndarray:
    """An ndarray of the kernel's dtype and layout (``kind`` as in ``_checks._array``)."""
    array = _checks._array(name, value, kind, ndim)
    if kind == "f" and array.dtype != np.float64:
        raise TypeError(f"{name} must have dtype float64, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (as built by rsnn_topology / rsnn_init)")
    return array


def _count_field(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_topology(topo) -> tuple[int, int, int]:
    """Types, lengths and every index of a topology; returns ``(n_syn, n_src, n_rows)``."""
    if not isinstance(topo, RSNNTopology):
        raise TypeError(f"topo must be an RSNNTopology (rsnn_topology), got "
                        f"{type(topo).__name__}")
    n_in = _count_field("topo.n_in", topo.n_in, 0)
    n = _count_field("topo.n_exc", topo.n_exc, 1) + _count_field("topo.n_inh", topo.n_inh, 0)
    n_syn = _c_array("topo.pre", topo.pre, "i", 1).size
    for field in _TOPO_SYNAPSE_FIELDS[1:]:
        _checks._shape(f"topo.{field}", _c_array(f"topo.{field}", getattr(topo, field), "i", 1),
                       (n_syn,))
    _checks._shape("topo.pathway_ptr", _c_array("topo.pathway_ptr", topo.pathway_ptr, "i", 1),
                   (len(PATHWAYS) + 1,))
    for field in ("src_offset", "src_count", "row_offset"):
        _checks._shape(f"topo.{field}", _c_array(f"topo.{field}", getattr(topo, field), "i", 1),
                       (len(PATHWAYS),))
    by_post = topo.by_post
    if not isinstance(by_post, PostIndex):
        raise TypeError(f"topo.by_post must be a PostIndex, got {type(by_post).__name__}")
    _checks._shape("topo.by_post.indptr", _c_array("topo.by_post.indptr", by_post.indptr, "i", 1),
                   (n + 1,))
    _checks._shape("topo.by_post.synapses",
                   _c_array("topo.by_post.synapses", by_post.synapses, "i", 1), (n_syn,))
    n_src = n_in + n
    n_rows = int(topo.src_count.sum()) if np.all(topo.src_count >= 0) else -1
    code, at = _topology_kernel(topo.pre, topo.post, topo.pathway, topo.pathway_ptr,
                                topo.src_offset, topo.src_count, topo.row_offset, topo.row,
                                by_post.indptr, by_post.synapses, n, n_src, n_rows)
    if code:
        raise ValueError("topo." + _TOPOLOGY_ERRORS[code].format(at=at, n=n, n_src=n_src,
                                                                 n_syn=n_syn))
    return n_syn, n_src, n_rows


_TOPOLOGY_ERRORS = {
    1: "pathway_ptr must run from 0 to {n_syn} (the number of synapses), non-decreasing",
    2: "src_offset/src_count/row_offset of pathway {at} must lie within the {n_src} sources "
       "and the rows of the delay index",
    3: "pathway of synapse {at} does not match pathway_ptr",
    4: "pre of synapse {at} lies outside its pathway's source group",
    5: "post of synapse {at} must be a neuron index in [0, {n})",
    6: "row of synapse {at} does not match its pathway and pre",
    7: "by_post.indptr must run from 0 to {n_syn}, non-decreasing, one row per neuron",
    8: "by_post.synapses entry {at} is not a synapse onto its row's neuron, each row in "
       "ascending order (as post_index builds it)",
}


@njit
def _topology_kernel(pre, post, pathway, pathway_ptr, src_offset, src_count, row_offset, row,
                     bp_indptr, bp_synapses, n, n_src, n_rows):
    """``(0, -1)`` for a sound topology, else ``(code, where)`` (``_TOPOLOGY_ERRORS``); every
    index is range-checked before use."""
    n_syn = pre.size
    n_path = pathway_ptr.size - 1
    if pathway_ptr[0] != 0 or pathway_ptr[n_path] != n_syn:
        return 1, -1
    for p in range(n_path):
        if pathway_ptr[p + 1] < pathway_ptr[p]:
            return 1, p
    for p in range(n_path):
        if (src_count[p] < 0 or src_offset[p] < 0 or src_offset[p] + src_count[p] > n_src
                or row_offset[p] < 0 or row_offset[p] + src_count[p] > n_rows):
            return 2, p
    for p in range(n_path):
        for k in range(pathway_ptr[p], pathway_ptr[p + 1]):
            if pathway[k] != p:
                return 3, k
            if pre[k] < src_offset[p] or pre[k] >= src_offset[p] + src_count[p]:
                return 4, k
            if post[k] < 0 or post[k] >= n:
                return 5, k
            if row[k] != row_offset[p] + pre[k] - src_offset[p]:
                return 6, k
    if bp_indptr[0] != 0 or bp_indptr[n] != n_syn:
        return 7, -1
    for j in range(n):
        if bp_indptr[j + 1] < bp_indptr[j]:
            return 7, j
        for e in range(bp_indptr[j], bp_indptr[j + 1]):
            k = bp_synapses[e]
            if (k < 0 or k >= n_syn or post[k] != j
                    or (e > bp_indptr[j] and k <= bp_synapses[e - 1])):
                return 8, e
    return 0, -1


_QUEUE_ERRORS = {
    1: "delay_steps of synapse {at} must lie in [0, {top}] (the ring has {ring} rows)",
    2: "delay_ptr row {at} must be non-decreasing and continue where the previous row ends "
       "(from 0 to the number of synapses)",
    3: "by_delay entry {at} must be a synapse id listed once, in the block of its own row and "
       "delay (rebuild the state with rsnn_init / rsnn_set_delays)",
    4: "n_spikers of ring row {at} must lie in [0, {n_src}] and name sources in [0, {n_src})",
    5: "pend_syn entry {at} must be a synapse id in [0, {n_syn})",
    6: "pend_step entry {at} must be an arrival step in [step, step + ring), non-decreasing "
       "from pend_pos on (events still queued)",
}


@njit
def _queue_kernel(row, delay_steps, by_delay, delay_ptr, spikers, n_spikers, pend_syn, pend_step,
                  pend_pos, step, n_rows):
    n_syn = row.size
    ring = delay_ptr.shape[1] - 1
    for k in range(n_syn):
        if delay_steps[k] < 0 or delay_steps[k] > ring - 1:
            return 1, k
    prev = 0
    for r in range(n_rows):
        if delay_ptr[r, 0] != prev:
            return 2, r
        for d in range(ring):
            if delay_ptr[r, d + 1] < delay_ptr[r, d]:
                return 2, r
        prev = delay_ptr[r, ring]
    if prev != n_syn:
        return 2, n_rows - 1
    seen = np.zeros(n_syn, dtype=np.bool_)
    for r in range(n_rows):
        for d in range(ring):
            for pos in range(delay_ptr[r, d], delay_ptr[r, d + 1]):
                k = by_delay[pos]
                if k < 0 or k >= n_syn or seen[k] or row[k] != r or delay_steps[k] != d:
                    return 3, pos
                seen[k] = True
    n_src = spikers.shape[1]
    for slot in range(n_spikers.size):
        if n_spikers[slot] < 0 or n_spikers[slot] > n_src:
            return 4, slot
        for e in range(n_spikers[slot]):
            if spikers[slot, e] < 0 or spikers[slot, e] >= n_src:
                return 4, slot
    for e in range(pend_syn.size):
        if pend_syn[e] < 0 or pend_syn[e] >= n_syn:
            return 5, e
    for e in range(pend_pos, pend_step.size):
        if (pend_step[e] < step or pend_step[e] >= step + ring
                or (e > pend_pos and pend_step[e] < pend_step[e - 1])):
            return 6, e
    return 0, -1


def _check_params(params, n: int) -> None:
    if not isinstance(params, RSNNKernelParams):
        raise TypeError(f"params must be RSNNKernelParams (rsnn_prepare), got "
                        f"{type(params).__name__}")
    lif = params.lif
    if not isinstance(lif, LIFKernelParams):
        raise TypeError(f"params.lif must be LIFKernelParams (rsnn_prepare), got "
                        f"{type(lif).__name__}")
    for field in lif._fields:
        kind = "i" if field == "ref_steps" else "f"
        _checks._shape(f"params.lif.{field}", _c_array(f"params.lif.{field}",
                                                        getattr(lif, field), kind, 1), (n,))
    stdp = params.stdp
    if not isinstance(stdp, STDPKernelParams):
        raise TypeError(f"params.stdp must be STDPKernelParams (stdp_prepare), got "
                        f"{type(stdp).__name__}")
    for field, value in zip(stdp._fields, stdp, strict=True):
        want = bool if field in ("all_to_all", "triplet") else float
        if type(value) is not want:
            raise TypeError(f"params.stdp.{field} must be a {want.__name__} (stdp_prepare), "
                            f"got {value!r}")
    _checks._shape("params.stdp_on", _c_array("params.stdp_on", params.stdp_on, "b", 1),
                   (len(PATHWAYS),))
    dt_s = params.dt_s
    if type(dt_s) is not float or not math.isfinite(dt_s) or dt_s <= 0.0:
        raise ValueError(f"params.dt_s must be a finite float > 0 (rsnn_prepare), got {dt_s!r}")


def _check_state(state, topo) -> int:
    """The topology, and the state's arrays, spike ring, delay index and pending events
    against it (every index the kernels read); returns the ring size."""
    n_syn, n_src, n_rows = _check_topology(topo)
    n = topo.n_exc + topo.n_inh
    if not isinstance(state, RSNNState):
        raise TypeError(f"state must be an RSNNState (rsnn_init), got {type(state).__name__}")
    _checks._step("state", state.step)
    for fields, shape in ((_NEURON_FIELDS, (n,)), (_SYNAPSE_FIELDS, (n_syn,))):
        for field in fields:
            kind = "i" if field in _INT_FIELDS else "f"
            value = _c_array(f"state.{field}", getattr(state, field), kind, 1)
            if value.shape != shape:
                raise ValueError(f"state.{field} must have shape {shape} for this topology, got "
                                 f"{value.shape} (were the pieces built for different sizes?)")
    history = _c_array("state.history", state.history, "b", 2)
    ring = history.shape[0]
    if ring < 1 or history.shape[1] != n_src:
        raise ValueError(f"state.history must have shape (ring >= 1, n_in + n) = (*, {n_src}) "
                         f"for this topology, got {history.shape}")
    _checks._shape("state.spikers", _c_array("state.spikers", state.spikers, "i", 2),
                   history.shape)
    _checks._shape("state.n_spikers", _c_array("state.n_spikers", state.n_spikers, "i", 1),
                   (ring,))
    _checks._shape("state.delay_ptr", _c_array("state.delay_ptr", state.delay_ptr, "i", 2),
                   (n_rows, ring + 1))
    pend_syn = _c_array("state.pend_syn", state.pend_syn, "i", 1)
    _checks._shape("state.pend_step", _c_array("state.pend_step", state.pend_step, "i", 1),
                   pend_syn.shape)
    _checks._shape("state.pend_pos", _c_array("state.pend_pos", state.pend_pos, "i", 1), (1,))
    if not 0 <= state.pend_pos[0] <= pend_syn.size:
        raise ValueError(f"state.pend_pos must lie in [0, {pend_syn.size}], got "
                         f"{state.pend_pos[0]}")
    code, at = _queue_kernel(topo.row, state.delay_steps, state.by_delay, state.delay_ptr,
                             state.spikers, state.n_spikers, pend_syn, state.pend_step,
                             int(state.pend_pos[0]), int(state.step), n_rows)
    if code:
        raise ValueError("state." + _QUEUE_ERRORS[code].format(
            at=at, top=ring - 1, ring=ring, n_src=n_src, n_syn=n_syn))
    return ring


def check_consistency(inputs, state, params, topo, *, name: str = "inputs") -> None:
    """:func:`bioplastic.simulate`'s check for the RSNN: ``inputs`` bool ``(T, n_in)``, the
    state's neuron arrays ``(n_exc + n_inh,)`` and synapse arrays ``(n_syn,)`` of ``topo``,
    its spike ring and delay index sound for ``topo`` (every index in range, each synapse in the
    block of its own delay), pending events naming existing synapses, and kernel parameters
    for ``n_exc + n_inh`` neurons. One pass over the synapses, none over time; raises
    ``TypeError``/``ValueError`` naming the piece that does not fit.
    """
    _check_state(state, topo)
    n = topo.n_exc + topo.n_inh
    _check_params(params, n)
    _checks._inputs(np.asarray(inputs), (topo.n_in,), f"{topo.n_in} inputs", name, kind="b")
