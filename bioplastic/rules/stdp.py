"""Trace-based spike-timing-dependent plasticity (STDP): kernels that return ``dw``.

Traces and updates (per synapse; ``x_pre`` is the presynaptic trace, ``x_post1``/``x_post2`` the
fast and slow postsynaptic traces; times in seconds inside the kernels)::

    dx/dt = -x / tau                              (each trace, between spikes)
    on a presynaptic spike  : dw = -eta_pre * x_post1 * f_dep(w) ;  x_pre  <- bump(x_pre)
    on a postsynaptic spike : dw = +eta_post * x_pre * [x_post2 before the spike] * f_pot(w)
                              x_post1 <- bump(x_post1) ; x_post2 <- bump(x_post2)
    w <- clip(w + dw, w_min, w_max)               (after every event)

    f_dep(w) = w ** mu_dep          f_pot(w) = (w_max - w) ** mu_pot     (both 1 when mu = 0)
    bump(x)  = 1         (nearest-spike traces, all_to_all=False; Diehl & Cook's code)
             = x + 1     (all-to-all traces, all_to_all=True; Song, Miller & Abbott 2000)

The ``[x_post2 before the spike]`` factor is the "triplet" form of Diehl & Cook's (2015) code
(``post2before``; Pfister & Gerstner 2006's minimal triplet rule): potentiation needs a recent
*earlier* postsynaptic spike. ``triplet=False`` gives the classic pair rule (factor 1).
``mu_dep = mu_pot = 0`` is additive STDP (Diehl & Cook's code); ``mu > 0`` gives the
weight-dependent (soft-bound) forms of Gütig et al. (2003); Diehl & Cook's paper writes
potentiation as ``(w_max - w) ** mu``.

Traces are *event-driven*, as in Brian2's ``(event-driven)`` equations: a synapse stores its
traces and the time of its last event, and decays them on the next event with
``x * exp(-(t - t_last) / tau)`` (:func:`event_decay`). When a presynaptic and a postsynaptic
event fall in the same step, the presynaptic one is processed first (Brian2 runs ``on_pre``
before ``on_post``), so the potentiation of that step sees the freshly bumped ``x_pre``.

Every expression is written in the form Brian2 2.9.0 prints for the twin's statements (the
multiplication order matters for the last bit), so kernels built from these functions agree
with :mod:`bioplastic.reference.wta` to float64 round-off (NumPy's SIMD ``exp``/``power`` may
differ from libm's by one ulp; the compiled Brian targets use libm and agree bit for bit).

Rules return ``dw`` and never change ``w``; the network kernel applies ``dw`` per event with
:func:`bounded` (the per-event clip is part of the rule: Brian's ``w = clip(w + dw, ...)``).

References: Song, Miller & Abbott, *Nat. Neurosci.* 3:919 (2000); Pfister & Gerstner,
*J. Neurosci.* 26:9673 (2006); Gütig et al., *J. Neurosci.* 23:3697 (2003); Diehl & Cook,
*Front. Comput. Neurosci.* 9:99 (2015).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._validate import count, finite_float, non_negative, positive

__all__ = [
    "STDPParams", "STDPKernelParams", "stdp_prepare", "event_decay", "trace_on_spike",
    "depression_dw", "potentiation_dw", "bounded", "PostIndex", "post_index",
    "pair_window", "run_synapse", "stdp_decay_factors", "stdp_on_pre", "stdp_on_post",
]


class STDPParams(NamedTuple):
    """User-facing STDP parameters (defaults: Diehl & Cook 2015, code variant)."""

    tau_pre_ms: float = 20.0      # presynaptic trace time constant
    tau_post_ms: float = 20.0     # fast postsynaptic trace (read by depression)
    tau_post2_ms: float = 40.0    # slow postsynaptic trace (read by triplet potentiation)
    eta_pre: float = 1e-4         # depression per presynaptic spike (x post trace)
    eta_post: float = 1e-2        # potentiation per postsynaptic spike (x pre trace)
    w_min: float = 0.0            # lower weight bound
    w_max: float = 1.0            # upper weight bound
    mu_dep: float = 0.0           # weight dependence of depression, f = w**mu (0: additive)
    mu_pot: float = 0.0           # weight dependence of potentiation, f = (w_max-w)**mu
    all_to_all: bool = False      # False: nearest-spike traces (x <- 1); True: x <- x + 1
    triplet: bool = True          # potentiation x slow post trace before the spike


DEFAULT_STDP = STDPParams()


class STDPKernelParams(NamedTuple):
    """What the kernels read (times in seconds, flags as bools)."""

    tau_pre_s: float
    tau_post_s: float
    tau_post2_s: float
    eta_pre: float
    eta_post: float
    w_min: float
    w_max: float
    mu_dep: float
    mu_pot: float
    all_to_all: bool
    triplet: bool


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def stdp_prepare(params: STDPParams) -> STDPKernelParams:
    """Validate ``params`` and convert times to seconds (``tau_ms * 0.001``, as Brian2 does)."""
    if not isinstance(params, STDPParams):
        raise TypeError(f"params must be STDPParams, got {type(params).__name__}")
    taus = {f: positive(f, finite_float(f, getattr(params, f)))
            for f in ("tau_pre_ms", "tau_post_ms", "tau_post2_ms")}
    w_min = finite_float("w_min", params.w_min)
    w_max = finite_float("w_max", params.w_max)
    if not w_min < w_max:
        raise ValueError(f"w_min must be < w_max, got w_min={w_min}, w_max={w_max}")
    mu_dep = non_negative("mu_dep", finite_float("mu_dep", params.mu_dep))
    mu_pot = non_negative("mu_pot", finite_float("mu_pot", params.mu_pot))
    if mu_dep > 0 and w_min < 0:
        raise ValueError(f"mu_dep > 0 needs w_min >= 0 (w**mu of a negative w), got {w_min}")
    return STDPKernelParams(
        tau_pre_s=taus["tau_pre_ms"] * 0.001,
        tau_post_s=taus["tau_post_ms"] * 0.001,
        tau_post2_s=taus["tau_post2_ms"] * 0.001,
        eta_pre=non_negative("eta_pre", finite_float("eta_pre", params.eta_pre)),
        eta_post=non_negative("eta_post", finite_float("eta_post", params.eta_post)),
        w_min=w_min,
        w_max=w_max,
        mu_dep=mu_dep,
        mu_pot=mu_pot,
        all_to_all=_flag("all_to_all", params.all_to_all),
        triplet=_flag("triplet", params.triplet),
    )


@njit
def event_decay(t_s, t_last_s, tau_s):
    """``exp(-(t - t_last)/tau)``, Brian2's event-driven decay, in its printed form."""
    return math.exp((-(t_s - t_last_s)) / tau_s)


@njit
def trace_on_spike(x, all_to_all):
    """A trace after its neuron spikes: ``x + 1`` (all-to-all) or ``1`` (nearest spike)."""
    return x + 1.0 if all_to_all else 1.0


@njit
def depression_dw(w, x_post1, p):
    """``dw`` of a presynaptic spike: ``-(eta_pre*x_post1) * w**mu_dep``."""
    dw = -(p.eta_pre * x_post1)
    if p.mu_dep != 0.0:
        dw = dw * (w ** p.mu_dep)
    return dw


@njit
def potentiation_dw(w, x_pre, x_post2_before, p):
    """``dw`` of a postsynaptic spike: ``((eta_post*x_pre)*x_post2_before) * (w_max-w)**mu_pot``.

    ``x_post2_before`` is ignored unless ``p.triplet``.
    """
    dw = p.eta_post * x_pre
    if p.triplet:
        dw = dw * x_post2_before
    if p.mu_pot != 0.0:
        dw = dw * ((p.w_max - w) ** p.mu_pot)
    return dw


@njit
def bounded(w, dw, p):
    """``clip(w + dw, w_min, w_max)`` (NumPy's ``clip`` order: max with the floor first)."""
    return min(max(w + dw, p.w_min), p.w_max)


class PostIndex(NamedTuple):
    """Post-major access to pre-major (CSR) synapses, for postsynaptic events.

    indptr : int64 (n_post + 1,)   post ``j`` owns ``synapses[indptr[j]:indptr[j+1]]``
    synapses : int64 (n_syn,)      synapse ids (positions in the CSR arrays), ascending per post
    """

    indptr: np.ndarray
    synapses: np.ndarray


def post_index(post: np.ndarray, n_post: int) -> PostIndex:
    """Build the post-major index of synapses whose postsynaptic indices are ``post``."""
    n_post = count("n_post", n_post, low=1)
    post = np.asarray(post)
    if post.dtype.kind not in "iu":
        raise TypeError(f"post must be an integer array, got dtype {post.dtype}")
    if post.ndim != 1 or (post.size and (post.min() < 0 or post.max() >= n_post)):
        raise ValueError(f"post must be 1-D indices in [0, {n_post}), got shape {post.shape}")
    order = np.argsort(post, kind="stable").astype(np.int64)
    indptr = np.zeros(n_post + 1, dtype=np.int64)
    np.cumsum(np.bincount(post, minlength=n_post), out=indptr[1:])
    return PostIndex(indptr, order)


@njit
def stdp_decay_factors(t_s, t_last_s, p):
    """Event-driven decay factors ``(post1, post2, pre)`` since a synapse's last event.

    ``post2`` is 1 when ``p.triplet`` is off (the slow trace is then never read).
    """
    f1 = event_decay(t_s, t_last_s, p.tau_post_s)
    f2 = event_decay(t_s, t_last_s, p.tau_post2_s) if p.triplet else 1.0
    fp = event_decay(t_s, t_last_s, p.tau_pre_s)
    return f1, f2, fp


# The two per-synapse event bodies below are the only copy of the STDP update; the network
# kernels (bioplastic.neurons.wta) and the one-synapse loop here both call them. They work on
# scalars (the caller loads and stores one synapse's values): a helper that takes the synapse
# arrays costs reference counting per call, measured 2-3x slower on the WTA network.


@njit
def stdp_on_pre(w, x_pre, x_post1, x_post2, f1, f2, fp, p):
    """A presynaptic event (Brian2's ``on_pre``): returns ``(w, x_pre, x_post1, x_post2)``.

    Decay the traces by the factors of :func:`stdp_decay_factors`, bump the pre trace, apply
    depression. The spike transmits the weight *before* this update.
    """
    x_post1 = x_post1 * f1
    if p.triplet:
        x_post2 = x_post2 * f2
    x_pre = trace_on_spike(x_pre * fp, p.all_to_all)
    return bounded(w, depression_dw(w, x_post1, p), p), x_pre, x_post1, x_post2


@njit
def stdp_on_post(w, x_pre, x_post1, x_post2, f1, f2, fp, p):
    """A postsynaptic event (Brian2's ``on_post``): returns ``(w, x_pre, x_post1, x_post2)``.

    Decay, potentiation with the slow trace *before* its bump, then bump the post traces.
    """
    x_pre = x_pre * fp
    post2_before = x_post2 * f2 if p.triplet else 0.0
    w = bounded(w, potentiation_dw(w, x_pre, post2_before, p), p)
    x_post1 = trace_on_spike(x_post1 * f1, p.all_to_all)
    if p.triplet:
        x_post2 = trace_on_spike(post2_before, p.all_to_all)
    return w, x_pre, x_post1, x_post2


@njit
def _synapse_loop(pre_spikes, post_spikes, w0, dt_s, p):
    """One event-driven synapse through the network kernel's event bodies.

    Returns the weight after every step, shape (T,). Schedule per step: presynaptic event
    then postsynaptic event (Brian2 runs ``on_pre`` before ``on_post``).
    """
    n_steps = pre_spikes.size
    w, x_pre, x_post1, x_post2 = w0, 0.0, 0.0, 0.0
    last = 0
    out = np.empty(n_steps)
    for step in range(n_steps):
        t = step * dt_s
        if pre_spikes[step]:
            f1, f2, fp = stdp_decay_factors(t, last * dt_s, p)
            w, x_pre, x_post1, x_post2 = stdp_on_pre(w, x_pre, x_post1, x_post2, f1, f2, fp, p)
            last = step
        if post_spikes[step]:
            f1, f2, fp = stdp_decay_factors(t, last * dt_s, p)
            w, x_pre, x_post1, x_post2 = stdp_on_post(w, x_pre, x_post1, x_post2, f1, f2, fp, p)
            last = step
        out[step] = w
    return out


def _spike_train(name: str, spikes) -> np.ndarray:
    array = np.asarray(spikes)
    if array.ndim != 1 or array.dtype != np.bool_:
        raise ValueError(f"{name} must be a 1-D boolean array (one entry per step), "
                         f"got dtype {array.dtype} shape {array.shape}")
    return array


def run_synapse(pre_spikes, post_spikes, params: STDPParams = DEFAULT_STDP, *, w0: float = 0.5,
                dt_ms: float = 0.5) -> np.ndarray:
    """Weight trajectory of one synapse under given pre/post spike trains.

    Parameters
    ----------
    pre_spikes, post_spikes : bool arrays, shape (T,)
    params : STDPParams
    w0 : float
        Initial weight, within ``[w_min, w_max]``.
    dt_ms : float

    Returns
    -------
    ndarray, shape (T,)
        The weight after each step.
    """
    pre = _spike_train("pre_spikes", pre_spikes)
    post = _spike_train("post_spikes", post_spikes)
    if pre.shape != post.shape:
        raise ValueError(f"pre_spikes and post_spikes must have equal length, got {pre.shape} "
                         f"and {post.shape}")
    p = stdp_prepare(params)
    w0 = finite_float("w0", w0)
    if not p.w_min <= w0 <= p.w_max:
        raise ValueError(f"w0 must lie in [w_min, w_max] = [{p.w_min}, {p.w_max}], got {w0}")
    dt_s = positive("dt_ms", finite_float("dt_ms", dt_ms)) * 0.001
    return _synapse_loop(pre, post, w0, dt_s, p)


def pair_window(lags_steps, params: STDPParams = DEFAULT_STDP, *, w0: float = 0.5,
                dt_ms: float = 0.5) -> np.ndarray:
    """STDP window: ``dw`` of one pre/post pairing at each lag ``post - pre`` (in steps).

    Each pairing is simulated from rest (all traces 0) with :func:`run_synapse`; positive lags
    are pre-before-post. With ``triplet=True`` a single pairing never potentiates (there is no
    earlier postsynaptic spike), which is the point of that rule.

    Returns
    -------
    ndarray, shape (len(lags_steps),)
    """
    lags = np.asarray(lags_steps)
    if lags.ndim != 1 or lags.dtype.kind not in "iu":
        raise ValueError(f"lags_steps must be a 1-D integer array, got {lags!r}")
    reach = int(np.abs(lags).max()) if lags.size else 0
    out = np.empty(lags.size)
    for k, lag in enumerate(lags):
        pre = np.zeros(2 * reach + 1, dtype=np.bool_)
        post = np.zeros_like(pre)
        pre[reach] = True
        post[reach + lag] = True
        out[k] = run_synapse(pre, post, params, w0=w0, dt_ms=dt_ms)[-1] - w0
    return out
