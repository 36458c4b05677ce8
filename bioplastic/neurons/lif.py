"""Leaky integrate-and-fire neurons with recurrent, delayed synapses: the pattern model.

Equations (per neuron ``k``; voltages in mV, times in ms)::

    dv/dt     = (v_rest + I_ext(t) - v) / tau_m        (unless refractory)
    dtheta/dt = -theta / tau_theta                     (adaptive threshold, optional)
    spike     : v > v_th + theta   and not refractory
    on spike  : v <- v_reset ; theta <- theta + theta_plus ; refractory for t_ref
    synapse   : v_post += w  after delay d (whole steps), dropped while post is refractory

Integration is exact for input held constant over a step (Brian2 ``method='exact'``). The
update is written in the expression form Brian2 2.9.0 generates for these equations, term by
term, so that the twin agrees bit for bit::

    e = exp(-dt/tau_m)           # computed once by lif_prepare, in NumPy, in seconds
    v = ((v*e + v_rest) + (-v_rest - I)*e) + I

**Schedule** (Brian2's order within step ``n``, ``t = n*dt``):
groups (refractory flag ``n - last_spike >= t_ref_steps``; integrate theta, and v where not
refractory) → thresholds (``v > v_th + theta``, strict ``>``; a spiking neuron becomes refractory)
→ synapses (deliver every spike emitted at step ``n - d`` through synapses of delay ``d``,
oldest spikes first, then presynaptic index, then postsynaptic index; ``v_post += w`` only where
the target is not refractory — so a zero-delay input to a neuron that spikes in the same step is
lost, exactly as in Brian2) → resets (``v = v_reset``, ``theta += theta_plus``).

A zero-delay spike at step ``n`` changes ``v`` after step ``n``'s update, so it can cause a spike
at step ``n+1`` at the earliest. Delays must be whole steps (``floor(d/dt + 0.5)`` would round
differently from Brian's queues at half steps, so half steps are refused).

Reference: Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014), ch. 1; Brian2's
documentation of ``exact`` integration and the refractory mechanism. The twin is
:mod:`bioplastic.reference.lif`.

Choices (options): ``theta_plus_mv=0`` turns the adaptive threshold off; every parameter may be
a scalar or a per-neuron array (heterogeneous networks).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba.core import types
from numba.extending import overload

from .._jit import njit
from .._state import copy_into, copy_state, with_step
from .._validate import (
    as_float_array,
    check_shape,
    finite_float,
    non_negative,
    per_unit,
    positive,
    positive_int,
    unitless,
    whole_steps,
)
from ..simulate import Trace, simulate
from ._checks import check_lif as check_consistency  # simulate's hook
from ._checks import checked_step
from .connectivity import (
    SparseConnectivity,
    block_is_csr,
    blocks_are_rows,
    due_blocks,
    no_connectivity,
    pending_now,
    queue_push,
    spike_queue,
)

__all__ = ["LIFParams", "LIFKernelParams", "LIFState", "lif_prepare", "lif_init", "lif_step",
           "lif_advance", "is_homogeneous",
           "lif_groups_thresholds", "lif_resets", "run_lif", "NEVER_SPIKED"]

#: ``last_spike`` of a neuron that has not spiked (Brian2 uses -1e4 s; any value far enough in
#: the past that the refractory test is true works).
NEVER_SPIKED = -(2**40)


class LIFParams(NamedTuple):
    """User-facing parameters; each may be a float or a per-neuron array of shape (n,)."""

    tau_m_ms: float = 10.0        # membrane time constant
    v_rest_mv: float = -65.0      # resting (and leak reversal) potential
    v_reset_mv: float = -65.0     # potential after a spike
    v_th_mv: float = -50.0        # base threshold
    t_ref_ms: float = 2.0         # absolute refractory period (whole steps)
    tau_theta_ms: float = 100.0   # adaptive-threshold decay time constant
    theta_plus_mv: float = 0.0    # threshold increment per spike (0: no adaptation)
    dt_ms: float = 0.1            # time step (scalar)


class LIFKernelParams(NamedTuple):
    """What the kernel reads: per-neuron float64/int64 arrays of shape (n,).

    When every parameter is the same for all neurons (a homogeneous population),
    :func:`lif_prepare` returns each field as a read-only *broadcast view* of its one value
    (shape ``(n,)``, stride 0: :func:`is_homogeneous`), and the kernel reads the seven values
    once per step instead of seven arrays per neuron-step, as Brian2 hoists scalar constants
    out of its loops. The values (and so the results) are the same bits either way.
    """

    decay_m: np.ndarray       # exp(-dt/tau_m)
    decay_theta: np.ndarray   # exp(-dt/tau_theta)
    v_rest: np.ndarray
    v_reset: np.ndarray
    v_th: np.ndarray
    theta_plus: np.ndarray
    ref_steps: np.ndarray     # int64


class LIFState(NamedTuple):
    v: np.ndarray             # membrane potential (n,), mV
    theta: np.ndarray         # threshold adaptation (n,), mV
    last_spike: np.ndarray    # step of each neuron's last spike (n,), int64
    history: np.ndarray       # spikes of the last max_delay+1 steps, ring (D+1, n), bool
    pending_syn: np.ndarray   # events in flight across a delay change: synapse ids, int64
    pending_due: np.ndarray   # ... and the step each is due (sorted), int64
    pending_next: np.ndarray  # (1,) int64 cursor: first pending event not yet delivered
    queue: np.ndarray         # delivery queue: blocks due per step (connectivity), int64
    step: int                 # index of the next step to run



def decay_factor(dt_ms: float, tau_ms) -> np.ndarray:
    """``exp(-dt/tau)`` computed in NumPy and in seconds, as Brian2 computes it (same bits)."""
    return np.exp((-(dt_ms * 0.001)) / (np.asarray(tau_ms) * 0.001))


def lif_prepare(params: LIFParams, n: int, *, hoist: bool = True) -> LIFKernelParams:
    """Validate ``params`` for ``n`` neurons and derive the kernel's per-neuron arrays.

    Decay factors are computed here, in NumPy and in seconds, as Brian2 computes them
    (``exp((-dt)/tau)``); that is what makes the kernel and the twin agree to the last bit.
    With ``hoist`` (the default), a population whose every parameter is uniform gets
    stride-0 views (see :class:`LIFKernelParams`), which the kernel reads as scalars; the
    values are computed exactly as for the per-neuron arrays, so results are the same bits.
    ``hoist=False`` always returns ordinary per-neuron arrays.
    """
    if not isinstance(params, LIFParams):
        raise TypeError(f"params must be LIFParams, got {type(params).__name__}")
    n = positive_int("n", n)
    dt_ms = positive("dt_ms", finite_float("dt_ms", params.dt_ms))
    tau_m = positive("tau_m_ms", per_unit("tau_m_ms", params.tau_m_ms, n))
    tau_theta = positive("tau_theta_ms", per_unit("tau_theta_ms", params.tau_theta_ms, n))
    v_reset = per_unit("v_reset_mv", params.v_reset_mv, n)
    v_th = per_unit("v_th_mv", params.v_th_mv, n)
    check_reset_below_threshold(v_reset, v_th)
    theta_plus = per_unit("theta_plus_mv", params.theta_plus_mv, n)
    non_negative("theta_plus_mv", theta_plus)    # < 0 would lower the threshold per spike
    kernel_params = LIFKernelParams(
        decay_m=decay_factor(dt_ms, tau_m),
        decay_theta=decay_factor(dt_ms, tau_theta),
        v_rest=per_unit("v_rest_mv", params.v_rest_mv, n),
        v_reset=v_reset,
        v_th=v_th,
        theta_plus=theta_plus,
        ref_steps=whole_steps("t_ref_ms", per_unit("t_ref_ms", params.t_ref_ms, n), dt_ms),
    )
    return _hoisted(kernel_params) if hoist else kernel_params


def check_reset_below_threshold(v_reset, v_th) -> None:
    """``v_reset_mv <= v_th_mv`` for every neuron (arrays that broadcast to the neuron shape,
    for the kernel's ``(n,)`` and the torch layers' shapes): a reset above threshold would
    fire on every non-refractory step."""
    try:
        above = np.subtract(v_reset, v_th)
    except ValueError:
        raise ValueError(f"v_reset_mv and v_th_mv must broadcast to one neuron shape, got "
                         f"shapes {np.shape(v_reset)} and {np.shape(v_th)}") from None
    if np.any(above > 0):
        raise ValueError(f"v_reset_mv must be <= v_th_mv for every neuron, got v_reset_mv "
                         f"{np.max(above):.4g} mV above v_th_mv")


def _same_bits(values: np.ndarray) -> bool:
    """Every element has the bits of the first (so -0.0 and 0.0 differ, as they may in v)."""
    bits = values.view(np.int64)
    return bool(np.all(bits == bits[0]))


def _hoisted(kernel_params: LIFKernelParams) -> LIFKernelParams:
    """``kernel_params`` with every field a stride-0 view of its first value when every field
    is uniform (bit for bit); unchanged otherwise. All or none: two kernel types, not 2**7."""
    if not all(_same_bits(value) for value in kernel_params):
        return kernel_params
    return LIFKernelParams(*(np.broadcast_to(value[:1], value.shape) for value in kernel_params))


def is_homogeneous(kernel_params: LIFKernelParams) -> bool:
    """True when ``kernel_params`` holds one value per field (stride-0 views from
    :func:`lif_prepare`): the kernel then reads scalars, not per-neuron arrays."""
    return all(value.size > 0 and value.strides[0] == 0 for value in kernel_params)


def lif_init(n: int, params: LIFParams | None = None, conn: SparseConnectivity | None = None,
             *, v0_mv=None, theta0_mv=0.0) -> LIFState:
    """Initial state: ``v = v0_mv`` (default ``v_rest``), ``theta = theta0_mv``, no spikes yet.

    ``conn`` sizes the spike-history ring (``max_delay + 1`` rows); it must be the
    connectivity later passed to :func:`lif_advance`. To change its delays between runs, use
    :func:`bioplastic.neurons.change_delays` on the state and the connectivity.
    """
    kp = lif_prepare(LIFParams() if params is None else params, n)
    v0 = kp.v_rest.copy() if v0_mv is None else per_unit("v0_mv", v0_mv, n)
    return LIFState(
        v=v0,
        theta=per_unit("theta0_mv", theta0_mv, n),
        last_spike=np.full(n, NEVER_SPIKED, dtype=np.int64),
        **spike_queue(no_connectivity(n) if conn is None else conn),
        step=0,
    )


def _at(value, k):
    """``value[k]`` for a per-neuron array, ``value`` itself for a scalar (hoisted) parameter."""
    return value if np.ndim(value) == 0 else value[k]


@overload(_at, inline="always", jit_options={"fastmath": False})
def _at_jit(value, k):
    # Chosen by type when the caller compiles: a scalar parameter is a loop-invariant register,
    # an array parameter one load per neuron. Nothing generated here enters a signature.
    if isinstance(value, types.Array):
        return lambda value, k: value[k]
    return lambda value, k: value


@njit
def _homogeneous(params) -> bool:
    """:func:`is_homogeneous` in jitted code (a run-time test of the views' strides)."""
    p = params   # written out: numba cannot iterate a tuple of float and int arrays
    return (p.decay_m.strides[0] == 0 and p.decay_theta.strides[0] == 0
            and p.v_rest.strides[0] == 0 and p.v_reset.strides[0] == 0
            and p.v_th.strides[0] == 0 and p.theta_plus.strides[0] == 0
            and p.ref_steps.strides[0] == 0 and p.decay_m.size > 0)


@njit
def _scalars(params) -> LIFKernelParams:
    """The one value of each field of homogeneous ``params``, as a tuple of scalars."""
    p = params
    return LIFKernelParams(p.decay_m[0], p.decay_theta[0], p.v_rest[0], p.v_reset[0],
                           p.v_th[0], p.theta_plus[0], p.ref_steps[0])


@njit
def lif_groups_thresholds(x, v, theta, last_spike, not_refractory, spikes, step, params):
    """Groups then thresholds slots of step ``step``, in place (shared by every LIF network).

    Decays ``theta``, sets ``not_refractory`` (Brian's integer test), integrates ``v`` exactly
    where not refractory and sets every entry of ``spikes``: ``v > v_th + theta`` where not
    refractory (the spiking neurons become refractory and get ``last_spike = step``). ``x``:
    drive (n,) in mV. ``params``: :class:`LIFKernelParams` of per-neuron arrays, or of scalars
    (one value per field, as :func:`lif_advance` passes for homogeneous parameters); compiled
    once for each.
    """
    # No cross-neuron terms, so both slots are fused per neuron. Written with selects, not
    # branches, so that LLVM vectorises the loop (the integration of a refractory neuron is
    # computed and discarded): 1.0 against 1.4 ns per neuron and step, the same values.
    for k in range(v.size):
        decayed = theta[k] * _at(params.decay_theta, k)
        theta[k] = decayed
        free = (step - last_spike[k]) >= _at(params.ref_steps, k)
        e = _at(params.decay_m, k)
        rest = _at(params.v_rest, k)
        integrated = ((v[k] * e + rest) + ((-rest) - x[k]) * e) + x[k]
        v_k = integrated if free else v[k]
        v[k] = v_k
        fired = free & (v_k > _at(params.v_th, k) + decayed)
        spikes[k] = fired
        last_spike[k] = step if fired else last_spike[k]
        not_refractory[k] = free & (not fired)


@njit
def lif_resets(spikes, v, theta, params):
    """Resets slot, in place: ``v = v_reset``, ``theta += theta_plus`` where ``spikes``
    (``params`` as for :func:`lif_groups_thresholds`)."""
    for k in range(v.size):
        if spikes[k]:
            v[k] = _at(params.v_reset, k)
            theta[k] += _at(params.theta_plus, k)


# Inlined into the advance (as due_blocks is): as a call it cost 0.3 us a step, 15 % of a
# 100-neuron network's step (2.1 against 1.8 us), the same compile time.
@njit(inline="always")
def _deliver(v, not_refractory, spikes, history, queue, pending_syn, pending_due, pending_next,
             step, conn):
    """Synapses slot: push this step's spikes onto the delivery queue, then ``v_post += w``
    for every event due now, in Brian2's queue order (events in flight across a delay change
    first: they are the oldest; then the slot's blocks in push order)."""
    if pending_next[0] < pending_due.size:
        start, stop = pending_now(pending_due, pending_next, step)
        _add_listed_weights(v, not_refractory, pending_syn[start:stop], conn)
    if conn.post.size == 0:
        return
    if queue.shape[0] > 1:   # delays: the blocks of every spike go onto the queue
        queue_push(queue, spikes, step, conn)
    slot = step % queue.shape[0]
    n_blocks = queue[slot, 0]
    if n_blocks < 0 or queue.shape[0] == 1:
        # a full slot, or no delays (one slot, never used: every block is due at once, and
        # reading this step's spikes from the ring is faster than a push and a pop): the same
        # blocks, in the same order, from the ring
        starts, stops = due_blocks(history, step, conn)
        # without delays the blocks are rows: no delay_order ends to read per block (two
        # random loads from a matrix-sized array: LIF 10k simulate 45.7 against 50.7 ms)
        # (_add_weights is called here directly, as in the queue branch below: routing these
        # blocks through _deliver_block with a known-CSR flag cost 15 % with delays, measured)
        whole_rows = blocks_are_rows(conn)
        for b in range(starts.size):
            if whole_rows:
                start, stop = starts[b], stops[b]
                _add_weights(v, not_refractory, conn.post[start:stop], conn.weight[start:stop])
            else:
                _deliver_block(v, not_refractory, starts[b], stops[b], conn)
    else:
        for b in range(n_blocks):
            start, stop = queue[slot, 1 + 2 * b], queue[slot, 2 + 2 * b]
            if stop >= 0:
                # marked at push time: the block is synapses start..stop-1 themselves (always
                # so until delays change), read in order with no indirection
                _add_weights(v, not_refractory, conn.post[start:stop], conn.weight[start:stop])
            else:
                _deliver_block(v, not_refractory, start, ~stop, conn)
    queue[slot, 0] = 0


@njit
def _deliver_block(v, not_refractory, start, stop, conn):
    """``v_post += w`` for the synapses ``conn.delay_order[start:stop]``, in that order."""
    if block_is_csr(conn.delay_order, start, stop):
        _add_weights(v, not_refractory, conn.post[start:stop], conn.weight[start:stop])
    else:
        _add_listed_weights(v, not_refractory, conn.delay_order[start:stop], conn)


# The two loops below read slices indexed from 0, so that the loads of posts and weights carry
# no negative-index wraparound test (as in stc._gate_sum; here the time it saves is within
# the run-to-run spread, the delivery being bound by the scattered updates of v).
@njit
def _add_weights(v, not_refractory, posts, weights):
    """``v[posts[i]] += weights[i]`` in order of ``i``, where that neuron is not refractory."""
    for i in range(posts.size):
        j = posts[i]
        if not_refractory[j]:
            v[j] += weights[i]


@njit
def _add_listed_weights(v, not_refractory, synapses, conn):
    """``v_post += w`` for each synapse index in ``synapses``, in that order (as
    :func:`_add_weights`)."""
    for i in range(synapses.size):
        k = synapses[i]
        j = conn.post[k]
        if not_refractory[j]:
            v[j] += conn.weight[k]


@njit
def _lif_step(x, state, params, conn):
    """The jitted pure step behind :func:`lif_step` (unchecked)."""
    return lif_advance(x, copy_state(state), params, conn)


def lif_step(x: np.ndarray, state: LIFState, params: LIFKernelParams,
             conn: SparseConnectivity, *, check: bool = True) -> tuple[np.ndarray, LIFState]:
    """One pure step: :func:`lif_advance` on a copy of ``state`` (arguments not modified).

    ``check`` (default on) first checks that ``x`` ``(n,)``, ``state``, ``params`` and
    ``conn`` fit together, as :func:`bioplastic.simulate` does, and the new state for NaN/inf
    after the step; ``check=False`` skips both (a mismatch then reads out of bounds).
    """
    return checked_step(_lif_step, check_consistency, "lif_step", x, state, params, conn,
                        check=check)


@njit
def lif_advance(x: np.ndarray, state: LIFState, params: LIFKernelParams,
                conn: SparseConnectivity) -> tuple[np.ndarray, LIFState]:
    """One step for all neurons, updating the arrays of ``state`` in place.

    Parameters
    ----------
    x : float64 (n,)
        External drive of this step in mV.
    state : LIFState
        Updated in place (its arrays); the returned state holds the same arrays and
        ``step + 1``.
    params : LIFKernelParams
        From :func:`lif_prepare`.
    conn : SparseConnectivity
        Recurrent synapses (``no_connectivity(n)`` for none); not modified.

    Returns
    -------
    spikes : bool (n,)
    state : LIFState

    Run it with ``bioplastic.simulate(lif_advance, inputs, state, params, conn)``, which hands
    it a private copy of the initial state.
    """
    n = state.v.size
    step = state.step
    v, theta, last_spike, history = state.v, state.theta, state.last_spike, state.history
    not_refractory = np.empty(n, dtype=np.bool_)
    spikes = np.zeros(n, dtype=np.bool_)
    if _homogeneous(params):   # one test per step; then every parameter is a register
        one = _scalars(params)
        lif_groups_thresholds(x, v, theta, last_spike, not_refractory, spikes, step, one)
        copy_into(history[step % history.shape[0]], spikes)
        _deliver(v, not_refractory, spikes, history, state.queue, state.pending_syn,
                 state.pending_due, state.pending_next, step, conn)
        lif_resets(spikes, v, theta, one)
    else:
        lif_groups_thresholds(x, v, theta, last_spike, not_refractory, spikes, step, params)
        copy_into(history[step % history.shape[0]], spikes)
        _deliver(v, not_refractory, spikes, history, state.queue, state.pending_syn,
                 state.pending_due, state.pending_next, step, conn)
        lif_resets(spikes, v, theta, params)
    return spikes, with_step(state, step + 1)


def _check_drive(inputs, n_steps, n):
    if inputs is None:
        return np.zeros((n_steps, n))
    drive = as_float_array("inputs", inputs, ndim=2)
    check_shape("inputs", drive, (None, n))
    return drive


def run_lif(inputs, params: LIFParams | None = None, *, n: int | None = None, weight=None,
            delay_ms=0.0, v0_mv=None, threads: int | None = None, record=("v",),
            record_units=None) -> Trace:
    """Simulate a (recurrent) LIF population; the convenient front end over :func:`simulate`.

    Parameters
    ----------
    inputs : array (T, n)
        External drive in mV (added to ``v_rest`` as the steady-state target).
    params : LIFParams
    weight : array (n, n) or scipy.sparse or SparseConnectivity, optional
        Recurrent weights ``(n_post, n_pre)`` in mV; non-zero entries are synapses.
    delay_ms : float or array (n, n)
        Synaptic delays, whole multiples of ``dt_ms``.
    v0_mv : float or array (n,), optional
    record : sequence of str
        State fields to record (``"v"``, ``"theta"``).
    record_units : int array, optional
        Record only these neurons (see :func:`bioplastic.simulate`).
    threads : int, optional
        ``None`` or 1 (default): the single-core kernel. ``k > 1``: the multi-core kernel on
        ``k`` of Numba's threads (:mod:`bioplastic.neurons.parallel`), bit-identical results.

    Returns
    -------
    Trace
        ``spikes`` (T, n) and the records (T, n) or (T, len(record_units)).
    """
    from .._jit import check_threads
    from .connectivity import connectivity

    threads = check_threads(threads)

    params = LIFParams() if params is None else params
    if not isinstance(params, LIFParams):
        raise TypeError(f"params must be LIFParams, got {type(params).__name__}")
    # a Brian2 quantity in mV, converted before NumPy strips it to volts
    inputs = np.asarray(unitless("inputs", inputs, unit="_mv"))
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be 2-dimensional (T, n), got shape {inputs.shape}")
    n = inputs.shape[1] if n is None else n
    drive = _check_drive(inputs, len(inputs), n)
    if weight is None:
        conn = no_connectivity(n)
    elif isinstance(weight, SparseConnectivity):
        conn = weight
    else:
        if np.shape(weight) != (n, n):   # (5, 8) for n = 8 would leave neurons 5-7 unreached
            raise ValueError(f"weight must have shape (n, n) = ({n}, {n}) (n_post, n_pre), got "
                             f"{np.shape(weight)}")
        conn = connectivity(weight, delay_ms=delay_ms, dt_ms=params.dt_ms)
    if conn.n_pre != n or (conn.post.size and conn.post.max() >= n):
        raise ValueError(f"weight must connect {n} neurons to themselves, got n_pre={conn.n_pre}")
    state = lif_init(n, params, conn, v0_mv=v0_mv)
    if threads > 1:
        from .parallel import run_threads

        return run_threads(drive, state, lif_prepare(params, n), conn, threads=threads,
                           record=record, record_units=record_units)
    return simulate(lif_advance, drive, state, lif_prepare(params, n), conn, record=record,
                    record_units=record_units)
