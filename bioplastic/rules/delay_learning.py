"""Delay learning (UDL, RDL), its weight rule and homeostasis: pure functions returning updates.

Kernels on the lag between a post spike and a *delayed* pre spike (times in ms)::

    lag = (t_post - t_pre) - d - epsilon          (post time - pre time - delay - margin)

    G(lag) = -B_minus * exp(-lag / theta_minus)   if lag >= 0    delay rule (Δd, ms)
           = +B_plus  * exp(+lag / theta_plus)    if lag <  0
    F(lag) = +A_plus  * exp(-lag / tau_plus)      if lag >= 0    weight rule (Δw)
           = -A_minus * exp(+lag / tau_minus)     if lag <  0

``lag = 0`` belongs to the ``>=`` branch. **UDL** (unsupervised delay learning; Nadafian &
Ganjtabesh, arXiv 2011.09380, journal version *Neural Computation* 36(7):1332-1352, 2024)
applies ``G`` to delays and ``F`` to weights once per stimulus. **RDL** (reward-modulated delay
learning; Nadafian, Mozafari, Masquelier & Ganjtabesh, arXiv 2406.11778, 2024) is the
three-factor form ``Δd = r * e``: the eligibility ``e`` is ``G`` summed over the stimulus' spike
pairs (:func:`stimulus_eligibility`), the reward ``r`` (+1 correct, -1 wrong) comes from the
readout's decision and is applied between stimuli (:func:`rdl_delta`).

Pairing (which spikes enter ``lag``): ``all_pairs=False`` (default) is nearest-neighbour on
*arrival* times ``t_pre + d``: every post spike is paired with the latest arrival at or before
it (``lag >= 0``), and every arrival with the latest post spike before it (``lag < 0``). Only an
arrival before the post spike can have caused it, so pairing by emission time instead (the
latest pre spike *emitted* before the post spike) would pair a long-delay synapse with a spike
that reaches the neuron after it fired, and flip the sign of its eligibility. (The reference
reimplementation, ``ameliegruel/DelayLearning``, ``Nadafian/delay_learning.py`` at commit
85fff8d, pairs the last pre and last post spike of each stimulus, where each input spikes once.)
``all_pairs=True`` sums over every (pre, post) pair of the stimulus.

Homeostasis (per post neuron, over a sliding window of ``window`` stimuli; the reference code)::

    R_obs = mean over the window of "the neuron spiked in that stimulus" (0 or 1)
    K     = (R_target - R_obs) / R_target
    Δd    = -lambda_d * K      Δw = +lambda_w * K      (to every incoming synapse)

The window starts filled with ``R_target`` (the code's initialisation). A neuron below its
target gets shorter delays and larger weights.

Bounds and stop criterion: delays are clipped to ``[d_min_ms, d_max_ms]`` and weights to
``[w_min, w_max]``; a post neuron stops learning (its synapses keep their delays and weights)
once any of its delays is ``<= stop_ms`` (the code's ``c``). ``growth_ms`` is added to every
delay once per stimulus (the code adds ``1e-4`` times the pattern duration).

Defaults are those of the reference code at commit 85fff8d (noise-free variant): B± = 2.5 ms,
θ± = 1 ms, A± = 0.01, τ± = 1 ms, R_target = 0.003, λ_d = 0.0006 ms, λ_w = 3e-5, window 10,
c = 0.5 ms. They are that code's choices; the papers' values may differ.

Every function returns new arrays; nothing is modified in place. :func:`apply_delay_update`
validates everything before it computes, so a failing update never leaves a half-updated result.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._validate import (
    as_float_array,
    check_shape,
    finite_float,
    non_negative,
    positive,
    scalar_or_shaped,
)

__all__ = [
    "DelayRuleParams", "HomeostasisParams", "DelayBounds",
    "delay_kernel", "weight_kernel", "delay_dw", "weight_dw", "spike_lists",
    "stimulus_eligibility", "rdl_delta", "homeostasis_init", "homeostasis_update",
    "stopped_neurons", "apply_delay_update", "bounded_update", "delay_steps_of",
    "eligibility_kernel", "fused_update", "check_rule", "check_bounds",
]


class DelayRuleParams(NamedTuple):
    """Kernels G (delays) and F (weights); defaults: ``ameliegruel/DelayLearning`` @ 85fff8d."""

    b_plus_ms: float = 2.5        # B+: delay increase for a late arrival (lag < 0)
    b_minus_ms: float = 2.5       # B-: delay decrease for an early arrival (lag >= 0)
    theta_plus_ms: float = 1.0    # θ+
    theta_minus_ms: float = 1.0   # θ-
    a_plus: float = 0.01          # A+: potentiation (lag >= 0)
    a_minus: float = 0.01         # A-: depression (lag < 0)
    tau_plus_ms: float = 1.0      # τ+
    tau_minus_ms: float = 1.0     # τ-
    epsilon_ms: float = 0.0       # margin ε in the lag (not given by the papers; 0 = none)
    all_pairs: bool = False       # False: nearest pairs on arrival times (module docstring)


class HomeostasisParams(NamedTuple):
    """Rate homeostasis over a window of stimuli (defaults: the reference code, noise-free)."""

    r_target: float = 0.003       # target fraction of stimuli in which a neuron spikes
    lambda_d_ms: float = 0.0006   # delay rate (ms per unit K)
    lambda_w: float = 0.00003     # weight rate
    window: int = 10              # stimuli in the sliding window


class DelayBounds(NamedTuple):
    """Clip bounds of delays and weights, and the stop criterion."""

    d_min_ms: float = 0.0         # the code uses 0.01 ms (its dt); 0 = same-step delivery
    d_max_ms: float = 15.0        # the code uses the largest initial delay
    w_min: float = 0.0
    w_max: float = 1.0
    stop_ms: float = 0.5          # c: a post neuron stops learning once a delay <= c
    growth_ms: float = 0.0        # added to every delay once per stimulus


DEFAULT_RULE = DelayRuleParams()
DEFAULT_HOMEOSTASIS = HomeostasisParams()
DEFAULT_BOUNDS = DelayBounds()


def _memo(check):
    """Remember the results of a parameter check (the between-stimuli update checks the same
    tuples every stimulus; the checks cost ~0.1 ms of a ~2 ms update). Only accepted tuples are
    stored. The key holds each field's type with its value (a float by its hex form), so ``1``
    never stands in for ``True`` or ``1.0``, nor ``-0.0`` for ``0.0``; unhashable fields are
    simply checked."""
    cache: dict = {}

    def checked(p):
        try:
            key = (type(p), *((type(v), v.hex() if type(v) is float else v) for v in p))
            hit = cache.get(key)
        except TypeError:          # not iterable, or an unhashable field
            return check(p)
        if hit is None:
            hit = check(p)
            if len(cache) < 256:
                cache[key] = hit
        return hit

    checked.__name__, checked.__doc__ = check.__name__, check.__doc__
    checked.__wrapped__ = check
    return checked


@_memo
def check_rule(p: DelayRuleParams) -> DelayRuleParams:
    if not isinstance(p, DelayRuleParams):
        raise TypeError(f"params must be DelayRuleParams, got {type(p).__name__}")
    for name in ("b_plus_ms", "b_minus_ms", "a_plus", "a_minus"):
        non_negative(name, finite_float(name, getattr(p, name)))
    for name in ("theta_plus_ms", "theta_minus_ms", "tau_plus_ms", "tau_minus_ms"):
        positive(name, finite_float(name, getattr(p, name)))
    finite_float("epsilon_ms", p.epsilon_ms)
    if not isinstance(p.all_pairs, bool | np.bool_):
        raise TypeError(f"all_pairs must be a bool, got {p.all_pairs!r}")
    return DelayRuleParams(*(float(v) for v in p[:-1]), bool(p.all_pairs))


@njit
def _g(lag, p):
    if lag >= 0.0:
        return -p.b_minus_ms * math.exp(-lag / p.theta_minus_ms)
    return p.b_plus_ms * math.exp(lag / p.theta_plus_ms)


@njit
def _f(lag, p):
    if lag >= 0.0:
        return p.a_plus * math.exp(-lag / p.tau_plus_ms)
    return -p.a_minus * math.exp(lag / p.tau_minus_ms)


def delay_kernel(lag_ms, params: DelayRuleParams = DEFAULT_RULE) -> np.ndarray:
    """``G(lag)``, the delay change (ms) of one pairing, elementwise; ``lag_ms`` any shape."""
    p = check_rule(params)
    lag = as_float_array("lag_ms", lag_ms)
    return np.vectorize(lambda x: _g(x, p), otypes=[np.float64])(lag)


def weight_kernel(lag_ms, params: DelayRuleParams = DEFAULT_RULE) -> np.ndarray:
    """``F(lag)``, the weight change of one pairing, elementwise."""
    p = check_rule(params)
    lag = as_float_array("lag_ms", lag_ms)
    return np.vectorize(lambda x: _f(x, p), otypes=[np.float64])(lag)


def _pair_lags(pre_times_ms, post_times_ms, d_ms: float, p: DelayRuleParams) -> list[float]:
    pre = np.sort(as_float_array("pre_times_ms", pre_times_ms, ndim=1))
    post = np.sort(as_float_array("post_times_ms", post_times_ms, ndim=1))

    def lag(t_post, t_pre):
        return ((t_post - t_pre) - d_ms) - p.epsilon_ms

    if p.all_pairs:
        return [lag(t_post, t_pre) for t_post in post for t_pre in pre]
    lags = []
    for t_post in post:    # the latest arrival at or before each post spike
        before = [lag(t_post, t_pre) for t_pre in pre if lag(t_post, t_pre) >= 0.0]
        lags.extend(before[-1:])
    for t_pre in pre:      # the latest post spike before each arrival
        after = [lag(t_post, t_pre) for t_post in post if lag(t_post, t_pre) < 0.0]
        lags.extend(after[-1:])
    return lags


def delay_dw(pre_times_ms, post_times_ms, d_ms: float,
             params: DelayRuleParams = DEFAULT_RULE) -> float:
    """Eligibility ``Σ G(lag)`` of one synapse over one stimulus (ms).

    ``pre_times_ms`` / ``post_times_ms``: spike times (1-D) of the synapse's pre and post
    neuron; ``d_ms`` its delay. See the module docstring for the pairing.
    """
    p = check_rule(params)
    d = finite_float("d_ms", d_ms)
    return float(sum(_g(lag, p) for lag in _pair_lags(pre_times_ms, post_times_ms, d, p)))


def weight_dw(pre_times_ms, post_times_ms, d_ms: float,
              params: DelayRuleParams = DEFAULT_RULE) -> float:
    """``Σ F(lag)`` of one synapse over one stimulus (same pairs as :func:`delay_dw`)."""
    p = check_rule(params)
    d = finite_float("d_ms", d_ms)
    return float(sum(_f(lag, p) for lag in _pair_lags(pre_times_ms, post_times_ms, d, p)))


def spike_lists(spikes) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron spike steps of a ``(T, n)`` bool raster: CSR ``(indptr (n+1,), steps)``,
    ascending steps per neuron."""
    raster = np.asarray(spikes)
    if raster.ndim != 2 or raster.dtype != np.bool_:
        raise ValueError(f"spikes must be a (T, n) bool array, got {raster.dtype} "
                         f"{raster.shape}")
    return _spike_lists_kernel(np.ascontiguousarray(raster))


@njit
def _spike_lists_kernel(raster):
    n_steps, n = raster.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(n_steps):
        row = raster[t]
        for i in range(n):
            if row[i]:
                indptr[i + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    steps = np.empty(indptr[n], dtype=np.int64)
    for t in range(n_steps):   # time-major scan: each neuron's steps come out ascending
        row = raster[t]
        for i in range(n):
            if row[i]:
                steps[fill[i]] = t
                fill[i] += 1
    return indptr, steps


@njit(inline="always")
def _synapse_eligibility(i, j, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p):
    """``(Σ G, Σ F)`` of one synapse ``i -> j`` with delay ``d`` over one stimulus."""
    if not p.all_pairs:
        return _nearest_eligibility(i, j, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p)
    acc_d, acc_w = 0.0, 0.0
    for a in range(post_ptr[j], post_ptr[j + 1]):
        t_post = post_steps[a]
        for b in range(pre_ptr[i], pre_ptr[i + 1]):
            g, f = _g_and_f((((t_post - pre_steps[b]) * dt_ms) - d) - p.epsilon_ms, p)
            acc_d += g
            acc_w += f
    return acc_d, acc_w


@njit(inline="always")
def _nearest_eligibility(i, j, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p):
    """Nearest pairing on *arrival* times ``t_pre + d``: every post spike with the latest
    arrival at or before it (``lag >= 0``), then every arrival with the latest post spike
    before it (``lag < 0``). See :func:`_nearest_walk`."""
    return _nearest_walk(i, j, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms,
                         p.epsilon_ms, p.b_minus_ms, p.b_plus_ms, p.theta_minus_ms,
                         p.theta_plus_ms, p.a_plus, p.a_minus, p.tau_plus_ms, p.tau_minus_ms)


@njit(inline="always")
def _nearest_walk(i, j, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, eps, b_minus,
                  b_plus, theta_minus, theta_plus, a_plus, a_minus, tau_plus, tau_minus):
    """The nearest-pairing walk on the rule's constants passed as scalars (read once by the
    caller: reading them from the tuple inside the walk cost ~40 % of the fused update).
    ``lag`` falls as the pre spike gets later and rises as the post spike does, so each side
    is one monotone walk."""
    acc_d, acc_w = 0.0, 0.0
    pre_lo, pre_hi, post_lo, post_hi = pre_ptr[i], pre_ptr[i + 1], post_ptr[j], post_ptr[j + 1]
    q = pre_lo
    for a in range(post_lo, post_hi):        # post side: depression of delays, LTP
        t_post = post_steps[a]
        while q < pre_hi and (((t_post - pre_steps[q]) * dt_ms) - d) - eps >= 0.0:
            q += 1
        if q > pre_lo:
            g, f = _gf((((t_post - pre_steps[q - 1]) * dt_ms) - d) - eps, b_minus, b_plus,
                       theta_minus, theta_plus, a_plus, a_minus, tau_plus, tau_minus)
            acc_d += g
            acc_w += f
    c = post_lo
    for b in range(pre_lo, pre_hi):          # arrival side: lag < 0
        t_pre = pre_steps[b]
        while c < post_hi and (((post_steps[c] - t_pre) * dt_ms) - d) - eps < 0.0:
            c += 1
        if c > post_lo:
            g, f = _gf((((post_steps[c - 1] - t_pre) * dt_ms) - d) - eps, b_minus, b_plus,
                       theta_minus, theta_plus, a_plus, a_minus, tau_plus, tau_minus)
            acc_d += g
            acc_w += f
    return acc_d, acc_w


@njit(inline="always")
def _g_and_f(lag, p):
    """``(G(lag), F(lag))``, bit for bit :func:`_g` and :func:`_f` (see :func:`_gf`)."""
    return _gf(lag, p.b_minus_ms, p.b_plus_ms, p.theta_minus_ms, p.theta_plus_ms, p.a_plus,
               p.a_minus, p.tau_plus_ms, p.tau_minus_ms)


@njit(inline="always")
def _gf(lag, b_minus, b_plus, theta_minus, theta_plus, a_plus, a_minus, tau_plus, tau_minus):
    """``(G(lag), F(lag))`` on scalar constants; when a branch's two time constants are equal
    (the defaults) the same ``exp`` serves both, halving the cost."""
    if lag >= 0.0:
        e = math.exp(-lag / theta_minus)
        f = a_plus * e if tau_plus == theta_minus else a_plus * math.exp(-lag / tau_plus)
        return -b_minus * e, f
    e = math.exp(lag / theta_plus)
    f = -a_minus * e if tau_minus == theta_plus else -a_minus * math.exp(lag / tau_minus)
    return b_plus * e, f


@njit
def eligibility_kernel(pre, post, d_ms, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p,
                       out_d, out_w):
    for s in range(pre.size):
        out_d[s], out_w[s] = _synapse_eligibility(pre[s], post[s], d_ms[s], pre_ptr, pre_steps,
                                                  post_ptr, post_steps, dt_ms, p)


@njit
def fused_update(pre, post, d, w, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p, r_post,
                 reward_delays, reward_weights, learn_delays, learn_weights, hd_post, hw_post,
                 b, d_out, w_out):
    """Eligibility, reward, homeostasis and bounds in one pass, into ``d_out``/``w_out``.

    Per synapse ``s`` onto ``j``: ``dd = (r_j * Σ G if reward_delays else Σ G) + hd_j``,
    ``dw = (r_j * Σ F if reward_weights else Σ F) + hw_j`` (``Σ F`` replaced by 0 unless
    ``learn_weights``), then :func:`bounded_update`'s clip; post neurons with a delay
    ``<= b.stop_ms`` keep ``d`` and ``w``, and delays are kept unless ``learn_delays``.
    Every element of ``d_out`` and ``w_out`` is written (kept values are copied), so they
    may start uninitialised. The same arithmetic, in the same order, as the separate
    functions of this module.
    """
    stop_ms = b.stop_ms
    stop = np.zeros(hd_post.size, dtype=np.bool_)
    for k in range(d.size):
        if d[k] <= stop_ms:
            stop[post[k]] = True
    if p.all_pairs:
        _fused_all_pairs(pre, post, d, w, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p,
                         r_post, reward_delays, reward_weights, learn_delays, learn_weights,
                         hd_post, hw_post, b, stop, d_out, w_out)
        return
    # bounds and the rule's constants read once (the nearest walk takes them as scalars), the
    # walk skipped for a silent pre or post neuron (Σ = 0 exactly), the all-pairs loop
    # compiled apart: ~1.6x faster than the walk reading the tuples (and ~2x before that)
    growth, d_min, d_max, w_min, w_max = b.growth_ms, b.d_min_ms, b.d_max_ms, b.w_min, b.w_max
    eps, b_minus, b_plus, theta_minus, theta_plus = (p.epsilon_ms, p.b_minus_ms, p.b_plus_ms,
                                                     p.theta_minus_ms, p.theta_plus_ms)
    a_plus, a_minus, tau_plus, tau_minus = p.a_plus, p.a_minus, p.tau_plus_ms, p.tau_minus_ms
    for k in range(d.size):
        j = post[k]
        d_k = d[k]
        if stop[j]:
            d_out[k], w_out[k] = d_k, w[k]
            continue
        i = pre[k]
        e_d, e_w = 0.0, 0.0
        if pre_ptr[i] != pre_ptr[i + 1] and post_ptr[j] != post_ptr[j + 1]:
            e_d, e_w = _nearest_walk(i, j, d_k, pre_ptr, pre_steps, post_ptr, post_steps,
                                     dt_ms, eps, b_minus, b_plus, theta_minus, theta_plus,
                                     a_plus, a_minus, tau_plus, tau_minus)
        dd = (r_post[j] * e_d if reward_delays else e_d) + hd_post[j]
        if not learn_weights:
            e_w = 0.0
        dw = (r_post[j] * e_w if reward_weights else e_w) + hw_post[j]
        d_out[k] = min(max((d_k + dd) + growth, d_min), d_max) if learn_delays else d_k
        w_out[k] = min(max(w[k] + dw, w_min), w_max)


@njit
def _fused_all_pairs(pre, post, d, w, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p,
                     r_post, reward_delays, reward_weights, learn_delays, learn_weights,
                     hd_post, hw_post, b, stop, d_out, w_out):
    growth, d_min, d_max, w_min, w_max = b.growth_ms, b.d_min_ms, b.d_max_ms, b.w_min, b.w_max
    for k in range(d.size):
        j = post[k]
        if stop[j]:
            d_out[k], w_out[k] = d[k], w[k]
            continue
        i = pre[k]
        e_d, e_w = 0.0, 0.0
        if post_ptr[j] != post_ptr[j + 1] and pre_ptr[i] != pre_ptr[i + 1]:
            e_d, e_w = _synapse_eligibility(i, j, d[k], pre_ptr, pre_steps, post_ptr,
                                            post_steps, dt_ms, p)
        dd = (r_post[j] * e_d if reward_delays else e_d) + hd_post[j]
        if not learn_weights:
            e_w = 0.0
        dw = (r_post[j] * e_w if reward_weights else e_w) + hw_post[j]
        d_out[k] = min(max((d[k] + dd) + growth, d_min), d_max) if learn_delays else d[k]
        w_out[k] = min(max(w[k] + dw, w_min), w_max)


def stimulus_eligibility(pre_spikes, post_spikes, pre, post, d_ms, dt_ms: float,
                         params: DelayRuleParams = DEFAULT_RULE
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-synapse ``(Σ G, Σ F)`` over one stimulus: the UDL updates and the RDL eligibility.

    Parameters
    ----------
    pre_spikes : bool (T, n_pre)
        Spikes of the presynaptic sources during the stimulus (step ``k`` is time ``k*dt``).
    post_spikes : bool (T, n_post)
    pre, post : int (n_syn,)
        Synapse endpoints.
    d_ms : float (n_syn,)
        Delays (ms) in force during the stimulus.
    dt_ms : float

    Returns
    -------
    elig_d : float64 (n_syn,)   Σ G (ms)
    elig_w : float64 (n_syn,)   Σ F
    """
    p = check_rule(params)
    dt_ms = positive("dt_ms", finite_float("dt_ms", dt_ms))
    pre_ptr, pre_steps = spike_lists(pre_spikes)
    post_ptr, post_steps = spike_lists(post_spikes)
    pre = _indices("pre", pre, pre_ptr.size - 1)
    post = _indices("post", post, post_ptr.size - 1)
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have equal length, got {pre.size}, {post.size}")
    d = as_float_array("d_ms", d_ms, ndim=1)
    check_shape("d_ms", d, (pre.size,))
    if np.asarray(pre_spikes).shape[0] != np.asarray(post_spikes).shape[0]:
        raise ValueError("pre_spikes and post_spikes must cover the same steps, got "
                         f"{np.shape(pre_spikes)[0]} and {np.shape(post_spikes)[0]}")
    out_d, out_w = np.empty(pre.size), np.empty(pre.size)
    eligibility_kernel(pre, post, d, pre_ptr, pre_steps, post_ptr, post_steps, dt_ms, p, out_d,
                       out_w)
    return out_d, out_w


def _indices(name: str, value, bound: int) -> np.ndarray:
    idx = np.asarray(value)
    if idx.ndim != 1 or (idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0
                                       or idx.max() >= bound)):
        raise ValueError(f"{name} must be 1-D integer indices in [0, {bound}), got {idx!r}")
    return idx.astype(np.int64)


def rdl_delta(eligibility, reward) -> np.ndarray:
    """RDL: ``r * e``, the delay change of each synapse for the stimulus' reward ``r``.

    ``reward``: a finite real (the readout gives +1 for a correct decision, -1 for a wrong one;
    0 leaves the delays unchanged), or one value per synapse.
    """
    e = as_float_array("eligibility", eligibility)
    r = np.asarray(reward, dtype=np.float64) if np.asarray(reward).dtype.kind in "biuf" else None
    if r is None:
        raise TypeError(f"reward must be a real number, got {reward!r}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"reward must be finite, got {reward!r}")
    if r.ndim and r.shape != e.shape:
        raise ValueError(f"reward must be a scalar or shape {e.shape}, got {r.shape}")
    return r * e


@_memo
def _check_homeostasis(p: HomeostasisParams) -> HomeostasisParams:
    if not isinstance(p, HomeostasisParams):
        raise TypeError(f"params must be HomeostasisParams, got {type(p).__name__}")
    if not isinstance(p.window, int | np.integer) or p.window < 1:
        raise ValueError(f"window must be a positive integer, got {p.window!r}")
    return HomeostasisParams(positive("r_target", finite_float("r_target", p.r_target)),
                             non_negative("lambda_d_ms", p.lambda_d_ms),
                             non_negative("lambda_w", p.lambda_w), int(p.window))


def homeostasis_init(n_post: int, params: HomeostasisParams = DEFAULT_HOMEOSTASIS) -> np.ndarray:
    """The activity window ``(window, n_post)``, filled with ``r_target``."""
    p = _check_homeostasis(params)
    return np.full((p.window, int(n_post)), p.r_target)


def homeostasis_update(window, stimulus_index: int, spiked,
                       params: HomeostasisParams = DEFAULT_HOMEOSTASIS
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stimulus of rate homeostasis.

    Parameters
    ----------
    window : float (W, n_post)
        Activity of the last ``W`` stimuli (from :func:`homeostasis_init` or a previous call).
    stimulus_index : int
        Index of this stimulus (its row is ``stimulus_index % W``).
    spiked : bool (n_post,)
        Whether each post neuron spiked during this stimulus.

    Returns
    -------
    new_window : (W, n_post)
    dd_ms : (n_post,)   ``-lambda_d * K``, for every incoming synapse of the neuron
    dw : (n_post,)      ``+lambda_w * K``
    """
    p = _check_homeostasis(params)
    win = as_float_array("window", window, ndim=2)
    check_shape("window", win, (p.window, None))
    act = np.asarray(spiked)
    if act.dtype != np.bool_ or act.shape != (win.shape[1],):
        raise ValueError(f"spiked must be bool of shape ({win.shape[1]},), got {act.dtype} "
                         f"{act.shape}")
    new = win.copy()
    new[int(stimulus_index) % p.window] = act
    k = (p.r_target - new.mean(axis=0)) / p.r_target
    return new, -p.lambda_d_ms * k, p.lambda_w * k


@_memo
def check_bounds(b: DelayBounds) -> DelayBounds:
    if not isinstance(b, DelayBounds):
        raise TypeError(f"bounds must be DelayBounds, got {type(b).__name__}")
    vals = [finite_float(name, getattr(b, name)) for name in DelayBounds._fields]
    b = DelayBounds(*vals)
    non_negative("d_min_ms", b.d_min_ms)
    if not b.d_min_ms <= b.d_max_ms:
        raise ValueError(f"d_min_ms must be <= d_max_ms, got {b.d_min_ms}, {b.d_max_ms}")
    if not b.w_min <= b.w_max:
        raise ValueError(f"w_min must be <= w_max, got {b.w_min}, {b.w_max}")
    return b


def stopped_neurons(d_ms, post, n_post: int, stop_ms: float) -> np.ndarray:
    """bool (n_post,): post neurons with any incoming delay ``<= stop_ms`` (learning stopped)."""
    d = as_float_array("d_ms", d_ms, ndim=1)
    post = _indices("post", post, n_post)
    check_shape("post", post, d.shape)
    out = np.zeros(n_post, dtype=np.bool_)
    out[post[d <= stop_ms]] = True
    return out


def delay_steps_of(d_ms, dt_ms: float) -> np.ndarray:
    """Integer step delays ``floor(d/dt + 0.5)`` (nearest step, halves up: Brian's C++ queue)."""
    d = as_float_array("d_ms", d_ms)
    if np.any(d < 0):
        raise ValueError(f"d_ms must be >= 0, got minimum {d.min()}")
    return np.floor(d / positive("dt_ms", dt_ms) + 0.5).astype(np.int64)


def apply_delay_update(d_ms, w, dd_ms, dw, post, n_post: int,
                       bounds: DelayBounds = DEFAULT_BOUNDS, *, frozen=None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """New delays and weights after one between-stimuli update (new arrays; inputs untouched).

    ``d_new = clip(d + dd + growth, d_min, d_max)``, ``w_new = clip(w + dw, w_min, w_max)``,
    except for synapses onto a post neuron that has stopped learning (any delay ``<= stop_ms``
    before the update) or is marked in ``frozen`` (bool (n_post,)): those keep ``d`` and ``w``.
    Every argument is checked (finite, shapes) before anything is computed.
    """
    b = check_bounds(bounds)
    d = as_float_array("d_ms", d_ms, ndim=1)
    w_arr = as_float_array("w", w, ndim=1)
    check_shape("w", w_arr, d.shape)
    ddelta = scalar_or_shaped("dd_ms", dd_ms, d.shape, "one per synapse")
    wdelta = scalar_or_shaped("dw", dw, d.shape, "one per synapse")
    post = _indices("post", post, n_post)
    check_shape("post", post, d.shape)
    if frozen is None:
        frozen = np.zeros(n_post, dtype=np.bool_)
    frozen = np.asarray(frozen)
    if frozen.dtype != np.bool_ or frozen.shape != (n_post,):
        raise ValueError(f"frozen must be bool of shape ({n_post},), got {frozen!r}")
    return bounded_update(d, w_arr, np.ascontiguousarray(ddelta), np.ascontiguousarray(wdelta),
                          post, frozen, b)


@njit
def bounded_update(d, w, dd, dw, post, frozen, b):
    """The arithmetic of :func:`apply_delay_update` on checked arrays (one pass, new arrays):
    post neurons with a delay ``<= b.stop_ms`` or ``frozen`` keep ``d`` and ``w``."""
    stop = frozen.copy()
    for k in range(d.size):
        if d[k] <= b.stop_ms:
            stop[post[k]] = True
    d_new, w_new = d.copy(), w.copy()
    for k in range(d.size):
        if not stop[post[k]]:
            d_new[k] = min(max((d[k] + dd[k]) + b.growth_ms, b.d_min_ms), b.d_max_ms)
            w_new[k] = min(max(w[k] + dw[k], b.w_min), b.w_max)
    return d_new, w_new
