"""Spiking winner-take-all by recurrent lateral inhibition, with STDP (Diehl & Cook 2015).

``n`` excitatory neurons receive ``n_in`` input spike trains through plastic synapses. Each
excitatory neuron drives one inhibitory partner (one-to-one); each inhibitory neuron inhibits
every excitatory neuron except its partner. Excitatory thresholds adapt (``theta``).

Equations (voltages in mV, conductances dimensionless in units of the leak conductance, times
in ms; ``X`` is ``exc`` or ``inh``)::

    dv/dt  = ((v_rest - v) + I_syn) / tau_X                      (unless refractory)
    I_syn  = ge*(e_exc - v) + gi*(e_inh - v)     conductance synapses (conductance=True)
           = ge - gi                             current synapses (ge, gi in mV)
    dge/dt = -ge / tau_ge        dgi/dt = -gi / tau_gi
    dtheta/dt = -theta / tau_theta                               (excitatory only)
    spike (exc): v > (v_th_exc - theta_offset) + theta   and not refractory (strict >)
    spike (inh): v > v_th_inh                            and not refractory
    reset (exc): v <- v_reset_exc ; theta <- theta + theta_plus
    reset (inh): v <- v_reset_inh
    input i -> exc j : ge_j += w_ij  after delay d_ij, then STDP (bioplastic.rules.stdp)
    exc k -> inh k   : ge_inh_k += w_ei
    inh k -> exc j   : gi_j += w_ie   for every j != k

Integration is forward Euler, as in Diehl & Cook's code, written in the form Brian2 2.9.0
prints (term by term), e.g. ``v + (dt*((((ge*(e_exc-v)) + (gi*(e_inh-v))) - v) + v_rest))/tau``
and ``g + ((-dt)*g)/tau_g``. The refractory flag is Brian's integer test
``step - last_spike >= t_ref_steps``; conductances and theta keep decaying while refractory.

**Schedule** (Brian2's order within step ``n``, ``t = n*dt``): groups (refractory flags; Euler
update of every variable from the previous values) → thresholds (exc, inh; the input spikes
``x`` of step ``n`` are emitted here) → synapses: input→exc ``on_pre`` (events due now: oldest
spikes first, then input index, then the row's synapses in CSR order; per event: decay the
synapse's traces, ``ge_post += w`` with the old ``w``, bump the pre trace, depression), exc→inh
and inh→exc ``on_pre`` (``+= w`` in presynaptic order), then input→exc ``on_post`` for every
excitatory spike of step ``n`` (decay, potentiation with the slow trace *before* its bump, bump
the post traces) → resets (exc, inh). A zero-delay input at step ``n`` changes ``ge`` after
step ``n``'s update, so it moves ``v`` at step ``n+1``.

Choices where the paper is silent (all options): conductance vs current synapses
(``conductance``); Euler integration at ``dt_ms=0.5`` (the code's); event-driven
nearest-spike triplet traces (the code's; see :class:`~bioplastic.rules.STDPParams` for
all-to-all, pair and weight-dependent forms); Brian's refractory mechanism instead of the
code's ``timer`` variable; the excitatory threshold ``v > v_th - offset + theta``;
per-presentation weight normalisation (``w_sum``: each excitatory neuron's input weights are
rescaled to sum to ``w_sum`` at the start of every block, 78 in the code; 0 = off); rest between
presentations (zero-input rows at the end of a block, 150 ms in the code; the state is not reset).
Input delays are whole steps (the code draws 0-10 ms).

The model follows the library's contract: :func:`wta_advance` is the in-place step run by
:func:`bioplastic.simulate` (per-step records; the twin comparison) and by
:func:`bioplastic.simulate_blocks` over presentations (:func:`present_blocks`, and
:func:`train_wta`, whose data-dependent retry is the only Python loop, over presentations);
:func:`wta_normalise` is the start-of-presentation hook. The simulation runs on one private
copy of the state per call, so the ``O(n_syn)`` synapse state (12.5 MB at 400 × 784 synapses)
is no longer copied every step. :func:`wta_step` is the pure form (advance on a copy).

Event-driven traces decay with ``exp(-(t - t_last)/tau)`` per synapse event. Within a step the
factor depends only on the synapse's last event step, so it is computed once per distinct
elapsed time and reused (exactly the same number; a cache, not an approximation).

Reference: P. U. Diehl and M. Cook, "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity", *Front. Comput. Neurosci.* 9:99 (2015), and its code
(peter-u-diehl/stdp-mnist; Brian2 ports). The twin is :mod:`bioplastic.reference.wta`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import check_threads, njit
from .._state import check_finite, check_record, copy_state, with_step
from .._validate import (
    as_float_array,
    as_generator,
    check_shape,
    count,
    finite_float,
    non_negative,
    non_negative_int,
    per_unit,
    positive,
    positive_int,
    whole_steps,
)
from ..rules.stdp import (
    PostIndex,
    STDPKernelParams,
    STDPParams,
    post_index,
    stdp_decay_factors,
    stdp_on_post,
    stdp_on_pre,
    stdp_prepare,
)
from ..simulate import Trace, simulate, simulate_blocks
from ._checks import check_connectivity, checked_step
from ._checks import check_wta as check_consistency  # simulate's hook
from .connectivity import (
    SparseConnectivity,
    blocks_are_rows,
    connectivity_from_arrays,
    due_blocks,
    pending_now,
    queue_push,
    spike_queue,
)
from .lif import NEVER_SPIKED

__all__ = [
    "WTAParams", "GroupKernelParams", "WTAKernelParams", "WTAState", "wta_prepare", "wta_init",
    "wta_step", "wta_advance", "wta_normalise", "input_connectivity", "normalise_input_weights",
    "poisson_spikes", "run_wta", "present_blocks", "dense_weights", "train_wta", "WTATraining",
]

#: Elapsed-step range whose decay factors are cached within a step (longer gaps are computed
#: directly; the cache only saves time).
_DECAY_CACHE_STEPS = 4096


class WTAParams(NamedTuple):
    """User-facing parameters (defaults: Diehl & Cook 2015's code)."""

    dt_ms: float = 0.5
    # excitatory population
    tau_exc_ms: float = 100.0
    v_rest_exc_mv: float = -65.0
    v_reset_exc_mv: float = -65.0
    v_th_exc_mv: float = -52.0
    theta_offset_mv: float = 20.0   # threshold is v_th_exc - theta_offset + theta
    t_ref_exc_ms: float = 5.0
    e_exc_exc_mv: float = 0.0       # excitatory reversal seen by excitatory neurons
    e_inh_exc_mv: float = -100.0    # inhibitory reversal seen by excitatory neurons
    tau_theta_ms: float = 1e7
    theta_plus_mv: float = 0.05     # 0 freezes the thresholds (the code's test phase)
    # inhibitory population
    tau_inh_ms: float = 10.0
    v_rest_inh_mv: float = -60.0
    v_reset_inh_mv: float = -45.0
    v_th_inh_mv: float = -40.0
    t_ref_inh_ms: float = 2.0
    e_exc_inh_mv: float = 0.0
    e_inh_inh_mv: float = -85.0
    # synapses
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    w_ei: float = 10.4              # exc -> inh partner
    w_ie: float = 17.0              # inh -> every other exc
    conductance: bool = True        # False: current synapses, I_syn = ge - gi
    w_sum: float = 0.0              # > 0: normalise input weights per exc neuron per block


DEFAULT_PARAMS = WTAParams()
DEFAULT_STDP = STDPParams()


class GroupKernelParams(NamedTuple):
    """One population's constants (floats; times in seconds)."""

    tau_s: float
    v_rest: float
    v_reset: float
    v_th: float          # excitatory: v_th_exc - theta_offset
    e_exc: float
    e_inh: float
    ref_steps: int


class WTAKernelParams(NamedTuple):
    dt_s: float
    tau_ge_s: float
    tau_gi_s: float
    tau_theta_s: float
    theta_plus: float
    w_ei: float
    w_ie: float
    conductance: bool
    w_sum: float
    exc: GroupKernelParams
    inh: GroupKernelParams
    stdp: STDPKernelParams


class WTAState(NamedTuple):
    v: np.ndarray               # excitatory membrane (n,), mV
    ge: np.ndarray              # excitatory conductances (n,)
    gi: np.ndarray              # inhibitory conductances of the excitatory neurons (n,)
    theta: np.ndarray           # threshold adaptation (n,), mV
    last_spike: np.ndarray      # (n,) int64 step
    v_inh: np.ndarray           # inhibitory membrane (n,), mV
    ge_inh: np.ndarray          # (n,)
    gi_inh: np.ndarray          # (n,) (no inh -> inh synapses: stays 0 unless set)
    last_spike_inh: np.ndarray  # (n,) int64
    w: np.ndarray               # input -> exc weights (n_syn,), CSR order of the connectivity
    x_pre: np.ndarray           # per-synapse presynaptic trace (n_syn,)
    x_post1: np.ndarray         # per-synapse fast postsynaptic trace (n_syn,)
    x_post2: np.ndarray         # per-synapse slow postsynaptic trace (n_syn,)
    last_update: np.ndarray     # step of each synapse's last event (n_syn,) int64 (Brian: 0 s)
    history: np.ndarray         # input spikes of the last max_delay+1 steps, ring (D+1, n_in)
    pending_syn: np.ndarray     # input events in flight across a delay change (synapse ids)
    pending_due: np.ndarray     # ... and their due steps (sorted), int64
    pending_next: np.ndarray    # (1,) int64 cursor into the pending events
    queue: np.ndarray           # delivery queue: input blocks due per step (connectivity)
    memo_step: np.ndarray       # scratch: decay-factor memo, valid where == current step
    memo: np.ndarray            # scratch: (post1, post2, pre) factors per elapsed steps (M, 3)
    step: int                   # index of the next step


def _float(name: str, value) -> float:
    return finite_float(name, value)


def _group(params: WTAParams, kind: str, v_th: float, dt_ms: float) -> GroupKernelParams:
    tau = positive(f"tau_{kind}_ms", _float(f"tau_{kind}_ms", getattr(params, f"tau_{kind}_ms")))
    t_ref = _float(f"t_ref_{kind}_ms", getattr(params, f"t_ref_{kind}_ms"))
    v_reset = _float(f"v_reset_{kind}_mv", getattr(params, f"v_reset_{kind}_mv"))
    nominal = _float(f"v_th_{kind}_mv", getattr(params, f"v_th_{kind}_mv"))
    if v_reset > nominal:   # (the excitatory threshold's offset and theta are not counted)
        raise ValueError(f"v_reset_{kind}_mv must be <= v_th_{kind}_mv, got {v_reset} > "
                         f"{nominal}")
    return GroupKernelParams(
        tau_s=tau * 0.001,
        v_rest=_float(f"v_rest_{kind}_mv", getattr(params, f"v_rest_{kind}_mv")),
        v_reset=v_reset,
        v_th=v_th,
        e_exc=_float(f"e_exc_{kind}_mv", getattr(params, f"e_exc_{kind}_mv")),
        e_inh=_float(f"e_inh_{kind}_mv", getattr(params, f"e_inh_{kind}_mv")),
        ref_steps=int(whole_steps(f"t_ref_{kind}_ms", t_ref, dt_ms)),
    )


def _check_params_type(params, stdp) -> None:
    if not isinstance(params, WTAParams):
        raise TypeError(f"params must be WTAParams, got {type(params).__name__}")
    if not isinstance(stdp, STDPParams):
        raise TypeError(f"stdp must be STDPParams, got {type(stdp).__name__}")


def wta_prepare(params: WTAParams = DEFAULT_PARAMS, stdp: STDPParams = DEFAULT_STDP
                ) -> WTAKernelParams:
    """Validate the parameters and derive the kernel's (times in seconds, as Brian2 does)."""
    _check_params_type(params, stdp)
    dt_ms = positive("dt_ms", _float("dt_ms", params.dt_ms))
    if not isinstance(params.conductance, bool | np.bool_):
        raise TypeError(f"conductance must be a bool, got {params.conductance!r}")
    v_th_exc = _float("v_th_exc_mv", params.v_th_exc_mv) - _float("theta_offset_mv",
                                                                   params.theta_offset_mv)

    def tau_s(name):
        return positive(name, _float(name, getattr(params, name))) * 0.001

    return WTAKernelParams(
        dt_s=dt_ms * 0.001,
        tau_ge_s=tau_s("tau_ge_ms"),
        tau_gi_s=tau_s("tau_gi_ms"),
        tau_theta_s=tau_s("tau_theta_ms"),
        theta_plus=non_negative("theta_plus_mv", _float("theta_plus_mv", params.theta_plus_mv)),
        w_ei=_float("w_ei", params.w_ei),
        w_ie=_float("w_ie", params.w_ie),
        conductance=bool(params.conductance),
        w_sum=non_negative("w_sum", _float("w_sum", params.w_sum)),
        exc=_group(params, "exc", v_th_exc, dt_ms),
        inh=_group(params, "inh", _float("v_th_inh_mv", params.v_th_inh_mv), dt_ms),
        stdp=stdp_prepare(stdp),
    )


def input_connectivity(w, *, delay_ms=0.0, dt_ms: float = 0.5) -> SparseConnectivity:
    """All-to-all input -> excitatory synapses from dense weights ``(n, n_in)``.

    Every pair is a synapse, zero weights included (they can grow). ``delay_ms`` is a scalar or
    an ``(n, n_in)`` array of whole multiples of ``dt_ms``.
    """
    dense = as_float_array("w", w, ndim=2)
    n, n_in = dense.shape
    post, pre = np.divmod(np.arange(n * n_in, dtype=np.int64), n_in)  # row-major (post, pre)
    delay = as_float_array("delay_ms", delay_ms)    # a string such as '0.1': TypeError
    if delay.ndim == 2:
        check_shape("delay_ms", delay, (n, n_in))
        delay = delay.ravel()
    elif delay.ndim != 0:
        raise ValueError(f"delay_ms must be a scalar or shape ({n}, {n_in}), got {delay.shape}")
    return connectivity_from_arrays(pre, post, dense.ravel(), n_in, n, delay_ms=delay,
                                    dt_ms=dt_ms)


def _check_conn(conn, n: int) -> None:
    """``conn`` well formed, and every post index one of the ``n`` excitatory neurons."""
    check_connectivity(conn, n_post=n)


def wta_init(n: int, params: WTAParams | None = None, conn: SparseConnectivity | None = None,
             *, w0=None, v0_mv=None, theta0_mv=20.0) -> WTAState:
    """Initial state: potentials at rest (or ``v0_mv``), no conductances, traces 0.

    ``w0`` (n_syn,, CSR order) defaults to ``conn.weight``: the state's plastic weights *are*
    that array, not a copy (simulate runs on a private copy, so ``conn`` is never modified;
    calling :func:`wta_advance` yourself on this state would update it in place).
    ``theta0_mv`` is 20 mV in Diehl & Cook's code (scalar or (n,)). Brian's ``lastupdate``
    starts at 0 s, i.e. step 0. Change input delays between runs with
    :func:`bioplastic.neurons.change_delays`.
    """
    n = positive_int("n", n)
    if conn is None:
        raise TypeError("wta_init needs conn, the input connectivity (see input_connectivity)")
    _check_conn(conn, n)
    kp = wta_prepare(DEFAULT_PARAMS if params is None else params)
    w = conn.weight if w0 is None else as_float_array("w0", w0, ndim=1)
    check_shape("w0", w, (conn.n_synapses,))
    v0 = np.full(n, kp.exc.v_rest) if v0_mv is None else per_unit("v0_mv", v0_mv, n)
    theta0 = per_unit("theta0_mv", theta0_mv, n)
    n_syn = conn.n_synapses
    return WTAState(
        v=v0, ge=np.zeros(n), gi=np.zeros(n), theta=theta0,
        last_spike=np.full(n, NEVER_SPIKED, dtype=np.int64),
        v_inh=np.full(n, kp.inh.v_rest), ge_inh=np.zeros(n), gi_inh=np.zeros(n),
        last_spike_inh=np.full(n, NEVER_SPIKED, dtype=np.int64),
        w=w, x_pre=np.zeros(n_syn), x_post1=np.zeros(n_syn), x_post2=np.zeros(n_syn),
        last_update=np.zeros(n_syn, dtype=np.int64),
        **spike_queue(conn),
        memo_step=np.full(_DECAY_CACHE_STEPS, -1, dtype=np.int64),
        memo=np.zeros((_DECAY_CACHE_STEPS, 3)),
        step=0,
    )


# ----------------------------------------------------------------------------------------------
# kernels


@njit
def _decayed(g, tau_s, dt_s):
    """Euler decay in Brian2's printed form: ``((-dt)*g)/tau + g``."""
    return (((-dt_s) * g) / tau_s) + g


@njit
def _membrane(v, ge, gi, g, dt_s, conductance):
    """Euler membrane update in Brian2's printed form (``* int(not_refractory)`` = ``* 1``)."""
    if conductance:
        drive = (((ge * (g.e_exc - v)) + (gi * (g.e_inh - v))) - v) + g.v_rest
    else:
        drive = ((ge - gi) - v) + g.v_rest
    return ((dt_s * drive) / g.tau_s) + v


@njit
def _update_group(v, ge, gi, last_spike, step, g, p, theta, spikes):
    """Groups and thresholds slots of one population, in place. ``theta`` empty: none."""
    adaptive = theta.size > 0
    for k in range(v.size):
        ge_k, gi_k = ge[k], gi[k]
        ge[k] = _decayed(ge_k, p.tau_ge_s, p.dt_s)
        gi[k] = _decayed(gi_k, p.tau_gi_s, p.dt_s)
        threshold = g.v_th
        if adaptive:
            theta[k] = _decayed(theta[k], p.tau_theta_s, p.dt_s)
            threshold = g.v_th + theta[k]
        if (step - last_spike[k]) >= g.ref_steps:
            v[k] = _membrane(v[k], ge_k, gi_k, g, p.dt_s, p.conductance)
            if v[k] > threshold:
                spikes[k] = True
                last_spike[k] = step


@njit
def _factors(elapsed_ok, factors, step, last, t_s, p):
    """Decay factors (post1, post2, pre) for a synapse whose last event was at step ``last``.

    Memoised per elapsed step count within the current step (``elapsed_ok[k] == step``).
    """
    k = step - last
    if 0 <= k < elapsed_ok.size and elapsed_ok[k] == step:
        return factors[k, 0], factors[k, 1], factors[k, 2]
    f1, f2, fp = stdp_decay_factors(t_s, last * p.dt_s, p.stdp)
    if 0 <= k < elapsed_ok.size:
        elapsed_ok[k] = step
        factors[k, 0] = f1
        factors[k, 1] = f2
        factors[k, 2] = fp
    return f1, f2, fp


# The event loops take the synapse arrays one by one: passing the whole state tuple into a
# per-event helper costs a reference-count update per array per call (measured 20x slower).


@njit
def _input_events(ge, w, x_pre, x_post1, x_post2, last_update, x, history, queue,
                  pending_syn, pending_due, pending_next, step, t_s, p, conn, elapsed_ok,
                  factors):
    """input -> exc ``on_pre``: push this step's input spikes ``x`` onto the delivery queue,
    then every event due now, in Brian2's spike-queue order.

    Per event (Brian's pre pathway, :func:`~bioplastic.rules.stdp.stdp_on_pre`): decay the
    synapse's traces, ``ge_post += w`` (old w), bump the pre trace, depression. Consecutive
    synapses of one input usually share their last event step, so the decay factors are looked
    up only when it changes.
    """
    s = p.stdp
    first, stop = pending_now(pending_due, pending_next, step)
    for q in range(first, stop):   # events in flight across a delay change: the oldest
        syn = pending_syn[q]
        f1, f2, fp = _factors(elapsed_ok, factors, step, last_update[syn], t_s, p)
        w_old = w[syn]
        w[syn], x_pre[syn], x_post1[syn], x_post2[syn] = stdp_on_pre(
            w_old, x_pre[syn], x_post1[syn], x_post2[syn], f1, f2, fp, s)
        last_update[syn] = step
        ge[conn.post[syn]] += w_old
    if conn.post.size == 0:
        return
    if queue.shape[0] > 1:   # delays: the blocks of every input spike go onto the queue
        queue_push(queue, x, step, conn)
    slot = step % queue.shape[0]
    n_blocks = queue[slot, 0]
    if n_blocks < 0 or queue.shape[0] == 1:
        # a full slot, or no delays (one slot, never used): the same blocks, in the same
        # order, from the ring
        starts, stops = due_blocks(history, step, conn)
        whole_rows = blocks_are_rows(conn)   # no delays: read in place, no delay_order
        for b in range(starts.size):
            _input_block(starts[b], stops[b], whole_rows, ge, w, x_pre, x_post1, x_post2,
                         last_update, step, t_s, p, conn, elapsed_ok, factors)
    else:
        for b in range(n_blocks):
            start, stop = queue[slot, 1 + 2 * b], queue[slot, 2 + 2 * b]
            # stop >= 0: marked at push time as the plain CSR range (no delay_order lookup)
            _input_block(start, stop if stop >= 0 else ~stop, stop >= 0, ge, w, x_pre,
                         x_post1, x_post2, last_update, step, t_s, p, conn, elapsed_ok,
                         factors)
    queue[slot, 0] = 0


@njit
def _input_block(start, stop, csr, ge, w, x_pre, x_post1, x_post2, last_update, step, t_s, p,
                 conn, elapsed_ok, factors):
    """``on_pre`` for the synapses ``conn.delay_order[start:stop]`` in that order (``csr``:
    they are the synapses ``start..stop-1`` themselves)."""
    s = p.stdp
    order = conn.delay_order
    last, f1, f2, fp = -1, 1.0, 1.0, 1.0
    for q in range(start, stop):
        syn = q if csr else order[q]
        if last_update[syn] != last:
            last = last_update[syn]
            f1, f2, fp = _factors(elapsed_ok, factors, step, last, t_s, p)
        w_old = w[syn]
        w[syn], x_pre[syn], x_post1[syn], x_post2[syn] = stdp_on_pre(
            w_old, x_pre[syn], x_post1[syn], x_post2[syn], f1, f2, fp, s)
        last_update[syn] = step
        ge[conn.post[syn]] += w_old


@njit
def _post_events(lo, hi, spikes, w, x_pre, x_post1, x_post2, last_update, step, t_s, p,
                 by_post, elapsed_ok, factors):
    """input -> exc ``on_post`` for every excitatory neuron ``lo..hi-1`` that spiked at this
    step (:func:`~bioplastic.rules.stdp.stdp_on_post` per synapse)."""
    s = p.stdp
    for j in range(lo, hi):
        if not spikes[j]:
            continue
        for q in range(by_post.indptr[j], by_post.indptr[j + 1]):
            syn = by_post.synapses[q]
            f1, f2, fp = _factors(elapsed_ok, factors, step, last_update[syn], t_s, p)
            w[syn], x_pre[syn], x_post1[syn], x_post2[syn] = stdp_on_post(
                w[syn], x_pre[syn], x_post1[syn], x_post2[syn], f1, f2, fp, s)
            last_update[syn] = step


@njit
def wta_advance(x: np.ndarray, state: WTAState, params: WTAKernelParams,
                conn: SparseConnectivity, by_post: PostIndex) -> tuple[np.ndarray, WTAState]:
    """One step of the whole network, updating the arrays of ``state`` in place.

    Parameters
    ----------
    x : bool (n_in,)
        Input spikes of this step (pre-drawn).
    state : WTAState
        Updated in place; the returned state holds the same arrays and ``step + 1``.
    params : WTAKernelParams
        From :func:`wta_prepare`. ``params.w_sum`` is applied by :func:`wta_normalise` at the
        start of each presentation (:func:`present_blocks`), not here.
    conn : SparseConnectivity
        Input -> excitatory synapses (topology and delays; not modified).
    by_post : PostIndex
        ``post_index(conn.post, n)``.

    Returns
    -------
    spikes : bool (2n,)
        Excitatory neurons ``0..n-1``, inhibitory ``n..2n-1``.
    state : WTAState
    """
    st = state
    step = st.step
    n = st.v.size
    t_s = step * params.dt_s
    p = params
    spikes = np.zeros(2 * n, dtype=np.bool_)
    exc_spikes = spikes[:n]
    inh_spikes = spikes[n:]
    # groups + thresholds (no cross-neuron terms, so fused per neuron)
    _update_group(st.v, st.ge, st.gi, st.last_spike, step, p.exc, p, st.theta, exc_spikes)
    _update_group(st.v_inh, st.ge_inh, st.gi_inh, st.last_spike_inh, step, p.inh, p,
                  np.empty(0), inh_spikes)
    st.history[step % st.history.shape[0]] = x
    # synapses: pre pathways (input->exc with STDP, exc->inh, inh->exc), then the post pathway
    _input_events(st.ge, st.w, st.x_pre, st.x_post1, st.x_post2, st.last_update, x,
                  st.history, st.queue, st.pending_syn, st.pending_due, st.pending_next, step,
                  t_s, p, conn, st.memo_step, st.memo)
    for k in range(n):
        if exc_spikes[k]:
            st.ge_inh[k] += p.w_ei
    for i in range(n):
        if inh_spikes[i]:
            for j in range(n):
                if j != i:
                    st.gi[j] += p.w_ie
    _post_events(0, n, exc_spikes, st.w, st.x_pre, st.x_post1, st.x_post2, st.last_update,
                 step, t_s, p, by_post, st.memo_step, st.memo)
    # resets
    for k in range(n):
        if exc_spikes[k]:
            st.v[k] = p.exc.v_reset
            st.theta[k] += p.theta_plus
        if inh_spikes[k]:
            st.v_inh[k] = p.inh.v_reset
    return spikes, with_step(st, step + 1)


@njit
def _normalise_rows(w, post, n, total):
    """Scale each excitatory neuron's input weights to sum to ``total`` (sums in CSR order)."""
    sums = np.zeros(n)
    for syn in range(w.size):
        sums[post[syn]] += w[syn]
    for syn in range(w.size):
        j = post[syn]
        if sums[j] > 0.0:
            w[syn] = w[syn] * (total / sums[j])


@njit
def wta_normalise(state: WTAState, params: WTAKernelParams, conn: SparseConnectivity,
                  by_post: PostIndex) -> None:
    """Start of a presentation, in place: if ``params.w_sum > 0``, rescale each excitatory
    neuron's input weights to sum to ``w_sum`` (the ``on_block`` hook of
    :func:`bioplastic.simulate_blocks`)."""
    if params.w_sum > 0.0:
        _normalise_rows(state.w, conn.post, state.v.size, params.w_sum)


@njit
def _wta_step(x, state, params, conn, by_post):
    """The jitted pure step behind :func:`wta_step` (unchecked)."""
    return wta_advance(x, copy_state(state), params, conn, by_post)


def wta_step(x: np.ndarray, state: WTAState, params: WTAKernelParams, conn: SparseConnectivity,
             by_post: PostIndex, *, check: bool = True) -> tuple[np.ndarray, WTAState]:
    """One pure step: :func:`wta_advance` on a copy of ``state`` (arguments not modified).

    ``check`` (default on) first checks that ``x`` (bool ``(n_in,)``), ``state``, ``params``,
    ``conn`` and ``by_post`` fit together, as :func:`bioplastic.simulate` does, and the new
    state for NaN/inf after the step; ``check=False`` skips both (a mismatch then reads out
    of bounds).
    """
    return checked_step(_wta_step, check_consistency, "wta_step", x, state, params, conn,
                        by_post, check=check)


# ----------------------------------------------------------------------------------------------
# front ends


def normalise_input_weights(w, conn: SparseConnectivity, n: int, total: float) -> np.ndarray:
    """Return ``w`` (n_syn,) rescaled so each excitatory neuron's inputs sum to ``total``."""
    n = count("n", n, low=1)
    _check_conn(conn, n)            # a post index >= n would write past the sums
    w = as_float_array("w", w, ndim=1).copy()
    check_shape("w", w, (conn.n_synapses,))
    _normalise_rows(w, conn.post, n, positive("total", _float("total", total)))
    return w


def poisson_spikes(rates_hz, n_steps: int, dt_ms: float = 0.5, seed=None) -> np.ndarray:
    """Pre-drawn Bernoulli approximation of Poisson trains: ``rand < rate*dt``.

    ``rates_hz``: ``(n_in,)`` (constant rates) or ``(n_steps, n_in)`` (one row per step); a
    scalar is one input. Non-negative, with ``rate*dt <= 1``; any other shape is a
    ``ValueError``. Returns bool ``(n_steps, n_in)``. Diehl & Cook: ``rate = pixel/8 *
    intensity`` Hz.
    """
    rng = as_generator(seed)
    rates = as_float_array("rates_hz", rates_hz)
    if np.any(rates < 0):
        raise ValueError("rates_hz must be non-negative")
    n_steps = non_negative_int("n_steps", n_steps)
    _check_rates_shape(rates, n_steps)
    p = rates * (positive("dt_ms", _float("dt_ms", dt_ms)) * 0.001)
    if np.any(p > 1):
        raise ValueError(f"rates_hz * dt_ms * 0.001 must be <= 1 (a probability per step), got "
                         f"a maximum of {p.max()}")
    n_in = rates.shape[-1] if rates.ndim else 1
    return rng.random((n_steps, n_in)) < np.broadcast_to(p, (n_steps, n_in))


def _check_rates_shape(rates: np.ndarray, n_steps: int) -> None:
    """Only the documented shapes: a (5, n) array for 10 steps would otherwise reach
    ``broadcast_to`` and fail there with a message that names neither argument."""
    if rates.ndim <= 1 or (rates.ndim == 2 and rates.shape[0] == n_steps):
        return
    raise ValueError(f"rates_hz must have shape (n_in,) or (n_steps, n_in) = ({n_steps}, *) "
                     f"for n_steps={n_steps}, got {rates.shape}")


def _check_finite_state(state: WTAState) -> WTAState:
    """Raise :class:`DivergenceError` if the run produced non-finite values (never garbage).

    Weights are clipped, and the resets keep membranes bounded even where forward Euler is
    unstable (``dt * g / tau > 2``); what remains is overflow of conductances (``inf - inf``)
    or a non-finite state handed in to continue a run. Every floating-point field is checked.
    """
    return check_finite(state)


def _check_spikes(name: str, spikes, n_in: int | None = None, ndim: int = 2) -> np.ndarray:
    array = np.asarray(spikes)
    if array.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean spike array, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    if n_in is not None and array.shape[-1] != n_in:
        raise ValueError(f"{name} must have {n_in} inputs on its last axis, got {array.shape}")
    if 0 in array.shape[:-1]:
        raise ValueError(f"{name} must hold at least one step, got shape {array.shape}")
    return array


def _dense_w0(w0) -> np.ndarray:
    w = as_float_array("w0", w0, ndim=2)
    if 0 in w.shape:
        raise ValueError(f"w0 must have shape (n, n_in) with n >= 1 and n_in >= 1, got {w.shape}")
    return w


def _network(n, w0, delay_ms, dt_ms):
    w = as_float_array("w0", w0, ndim=2)
    if w.shape[0] != n:
        raise ValueError(f"w0 must have shape (n, n_in) = ({n}, *), got {w.shape}")
    conn = input_connectivity(w, delay_ms=delay_ms, dt_ms=dt_ms)
    return conn, post_index(conn.post, n)


def _front_end_params(function: str, params, stdp, w0) -> tuple[WTAParams, STDPParams]:
    """``params``/``stdp`` of a ``run_<model>``-shaped front end, defaults filled in. An array
    where ``params`` belongs is the old positional ``w0`` and is named as such (``w0`` has a
    ``None`` default only so that this call reaches here)."""
    if isinstance(params, np.ndarray | list):
        raise TypeError(f"{function} takes w0 as a keyword argument: "
                        f"{function}(inputs, params=None, *, w0=..., stdp=None, ...); the second "
                        f"positional argument is params (WTAParams), got {type(params).__name__}")
    if w0 is None:
        raise TypeError(f"{function} needs w0, the initial weights (n, n_in), as a keyword "
                        "argument")
    params = DEFAULT_PARAMS if params is None else params
    stdp = DEFAULT_STDP if stdp is None else stdp
    _check_params_type(params, stdp)
    return params, stdp


def run_wta(input_spikes, params: WTAParams | None = None, *, w0=None,
            stdp: STDPParams | None = None,
            delay_ms=0.0, theta0_mv=20.0, threads: int | None = None,
            record=("v", "theta"), record_units=None) -> Trace:
    """Simulate the network step by step on pre-drawn input spikes (records per step).

    Parameters
    ----------
    input_spikes : bool (T, n_in)
    params : WTAParams, optional (default ``WTAParams()``)
    w0 : (n, n_in)
        Initial input -> excitatory weights (dense; every pair is a plastic synapse).
    stdp : STDPParams, optional (default ``STDPParams()``)
    delay_ms : scalar or (n, n_in), whole multiples of ``dt_ms``
    record : state fields to record after every step (``v``, ``theta``, ``w``, ...)
    record_units : optional int indices into the recorded fields (all of equal size)
    threads : int, optional
        ``None`` or 1 (default): the single-core kernel. ``k > 1``: the multi-core kernel on
        ``k`` of Numba's threads (:mod:`bioplastic.neurons.parallel`), bit-identical results.

    Returns
    -------
    Trace
        ``spikes`` (T, 2n): excitatory then inhibitory. ``state.w`` is in the connectivity's
        CSR order; :func:`dense_weights` gives ``(n, n_in)``.
    """
    params, stdp = _front_end_params("run_wta", params, stdp, w0)
    threads = check_threads(threads)
    w_dense = _dense_w0(w0)
    n, n_in = w_dense.shape
    spikes = _check_spikes("input_spikes", input_spikes, n_in)
    conn, by_post = _network(n, w_dense, delay_ms, params.dt_ms)
    state = wta_init(n, params, conn, theta0_mv=theta0_mv)
    if threads > 1:
        from .parallel import run_threads

        trace = run_threads(spikes, state, wta_prepare(params, stdp), conn, by_post,
                            threads=threads, record=record, record_units=record_units)
    else:
        trace = simulate(wta_advance, spikes, state, wta_prepare(params, stdp), conn, by_post,
                         record=record, record_units=record_units)
    _check_finite_state(trace.state)
    return trace


def present_blocks(blocks, params: WTAParams | None = None, *, w0=None,
                   stdp: STDPParams | None = None, delay_ms=0.0, theta0_mv=20.0,
                   threads: int | None = None, record=("w", "theta"),
                   record_units=None) -> Trace:
    """Run presentations: ``blocks`` (n_blocks, T_block, n_in) bool, one block per stimulus.

    Parameters
    ----------
    blocks : bool (n_blocks, T_block, n_in)
    params : WTAParams, optional (default ``WTAParams()``)
    w0 : (n, n_in)
        Initial input -> excitatory weights (dense; every pair is a plastic synapse).
    stdp : STDPParams, optional (default ``STDPParams()``)
    delay_ms, theta0_mv, record_units, threads
        As for :func:`run_wta`.
    record : state fields to record after every block

    Each block is the stimulus followed by its rest (zero rows); ``params.w_sum > 0``
    normalises the input weights at the start of every block. Records are taken after every
    block (e.g. the weights after each presentation).

    This is :func:`bioplastic.simulate_blocks` over :func:`wta_advance`, with
    :func:`wta_normalise` as the start-of-block hook.

    Returns
    -------
    Trace
        ``spikes`` (n_blocks, T_block, 2n); ``records[f]`` (n_blocks, field shape...).
    """
    params, stdp = _front_end_params("present_blocks", params, stdp, w0)
    threads = check_threads(threads)
    w_dense = _dense_w0(w0)
    n, n_in = w_dense.shape
    blocks = _check_spikes("blocks", blocks, n_in, ndim=3)
    conn, by_post = _network(n, w_dense, delay_ms, params.dt_ms)
    state = wta_init(n, params, conn, theta0_mv=theta0_mv)
    check_record(state, record)
    if threads > 1:
        from .parallel import run_threads

        trace = run_threads(blocks, state, wta_prepare(params, stdp), conn, by_post,
                            threads=threads, record=record, record_units=record_units,
                            blocks=True)
    else:
        trace = simulate_blocks(wta_advance, blocks, state, wta_prepare(params, stdp), conn,
                                by_post, on_block=wta_normalise, record=record,
                                record_units=record_units)
    _check_finite_state(trace.state)
    return trace


class WTATraining(NamedTuple):
    """Result of :func:`train_wta`.

    state : WTAState after the last presentation (feed it back to continue)
    conn : SparseConnectivity of the input synapses (``state.w`` is in its CSR order)
    counts : int (n_images, n) excitatory spikes during each accepted presentation
    intensities : float (n_images,) input intensity of each accepted presentation
    repeats : int (n_images,) presentations that had fewer than ``min_spikes`` spikes
    """

    state: WTAState
    conn: SparseConnectivity
    counts: np.ndarray
    intensities: np.ndarray
    repeats: np.ndarray


def train_wta(images, params: WTAParams | None = None, *, w0=None,
              stdp: STDPParams | None = None,
              seed=None, present_ms: float = 350.0, rest_ms: float = 150.0,
              intensity: float = 2.0, min_spikes: int = 5, max_repeats: int = 10,
              delay_ms=0.0, theta0_mv=20.0, state: WTAState | None = None,
              progress: bool = False, threads: int | None = None) -> WTATraining:
    """Diehl & Cook's training protocol, one image at a time.

    Each image (pixel values in [0, 255]) becomes Poisson input at ``pixel/8 * intensity`` Hz
    for ``present_ms``, followed by ``rest_ms`` without input (one block of
    :func:`bioplastic.simulate_blocks`; with ``params.w_sum > 0`` the weights are normalised
    first). If the excitatory neurons fire fewer
    than ``min_spikes`` times, the image is shown again with ``intensity + 1`` (learning from the
    weak presentation is kept, as in the code), at most ``max_repeats`` times. All input spikes
    come from one generator seeded by ``seed``.

    Parameters
    ----------
    images : (n_images, n_in) array in [0, 255]
    params : WTAParams, optional (default ``WTAParams()``)
    w0 : (n, n_in) initial weights (ignored when ``state`` continues a run)
    stdp : STDPParams, optional (default ``STDPParams()``)
    state : WTAState, optional
        Continue from a previous :func:`train_wta` (its ``conn`` must match ``w0``'s shape).
    threads : int, optional
        As for :func:`run_wta` (the same training, bit for bit, on ``threads`` cores).
    """
    params, stdp = _front_end_params("train_wta", params, stdp, w0)
    threads = check_threads(threads)
    rng = as_generator(seed)
    pixels = as_float_array("images", images, ndim=2)
    if np.any((pixels < 0) | (pixels > 255)):
        raise ValueError("images must hold pixel values in [0, 255]")
    w_dense = _dense_w0(w0)
    n, n_in = w_dense.shape
    check_shape("images", pixels, (None, n_in))
    dt_ms = positive("dt_ms", _float("dt_ms", params.dt_ms))
    present = int(whole_steps("present_ms", present_ms, dt_ms))
    rest = int(whole_steps("rest_ms", rest_ms, dt_ms))
    if present < 1:
        raise ValueError(f"present_ms must be at least one step of dt_ms={dt_ms}, got "
                         f"{present_ms}")
    for name, value in (("min_spikes", min_spikes), ("max_repeats", max_repeats)):
        non_negative_int(name, value)
    intensity = positive("intensity", _float("intensity", intensity))
    # The brightest pixel at the last retry's intensity must still be a probability per step.
    top_rate_hz = 255 / 8 * (intensity + max_repeats)
    if not top_rate_hz * dt_ms * 1e-3 <= 1:
        raise ValueError(f"intensity {intensity} (+ up to max_repeats={max_repeats} retries) "
                         f"gives a pixel rate of {top_rate_hz:.3g} Hz, more than one spike per "
                         f"dt_ms={dt_ms} step; use intensity <= "
                         f"{1000 / dt_ms / (255 / 8) - max_repeats:.3g}")
    conn, by_post = _network(n, w_dense, delay_ms, dt_ms)
    if state is None:
        state = wta_init(n, params, conn, theta0_mv=theta0_mv)
    kp = wta_prepare(params, stdp)
    present_block = _presenter(threads, kp, conn, by_post)
    counts = np.zeros((len(pixels), n), dtype=np.int64)
    used = np.zeros(len(pixels))
    repeats = np.zeros(len(pixels), dtype=np.int64)
    block = np.zeros((present + rest, n_in), dtype=np.bool_)
    for k in _progress(range(len(pixels)), progress):
        level = intensity
        while True:
            block[:present] = poisson_spikes(pixels[k] / 8.0 * level, present, dt_ms, rng)
            trace = present_block(block[None], state)
            state = _check_finite_state(trace.state)
            counts[k] = trace.spikes[0, :present, :n].sum(axis=0)
            if counts[k].sum() >= min_spikes or repeats[k] >= max_repeats:
                break
            repeats[k] += 1
            level += 1.0
        used[k] = level
    return WTATraining(state, conn, counts, used, repeats)


def _presenter(threads: int, kp: WTAKernelParams, conn: SparseConnectivity, by_post):
    """``present(blocks, state) -> Trace``: one presentation of :func:`train_wta`, single- or
    multi-core (the split of ``conn`` built once for every presentation)."""
    if threads == 1:
        return lambda blocks, state: simulate_blocks(wta_advance, blocks, state, kp, conn,
                                                     by_post, on_block=wta_normalise)
    from .parallel import run_threads, thread_split

    split = thread_split(conn, by_post.indptr.size - 1, threads)
    return lambda blocks, state: run_threads(blocks, state, kp, conn, by_post, threads=threads,
                                             split=split, blocks=True)


def _progress(iterable, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="presentations")


def dense_weights(w, conn: SparseConnectivity, n: int) -> np.ndarray:
    """CSR-ordered synapse values ``(n_syn,)`` as a dense ``(n, n_in)`` matrix."""
    n = count("n", n, low=1)
    _check_conn(conn, n)
    w = as_float_array("w", w, ndim=1)
    check_shape("w", w, (conn.n_synapses,))
    dense = np.zeros((n, conn.n_pre))
    dense[conn.post, conn.pre()] = w
    return dense

