"""Presentation protocol of the delay-learning RSNN: readout, decision, reward, updates.

One stimulus is one :func:`~bioplastic.neurons.rsnn.run_rsnn` (one Brian2 ``run()`` in the
twin). Between stimuli (the schedule of UDL and RDL):

1. **decision** — the readout counts the spikes of each class group (excitatory neurons
   tagged with a class) inside the decision window; the group with the most spikes (or the
   highest mean count per neuron, ``statistic="mean"``) is the decision; a tie for the maximum
   (silence included) is *undecided* (label ``-1``);
2. **reward** — ``r = +1`` if the decision equals the label, ``-1`` otherwise (undecided is
   wrong);
3. **update** (:func:`delay_weight_update`) of the learned synapses (pathways ``input_exc``
   and ``exc_exc``): delays by ``r * Σ G`` (RDL), ``Σ G`` (UDL) or not at all; weights by
   ``Σ F``; rate homeostasis on both; the constant growth; bounds and the stop criterion
   (:mod:`bioplastic.rules.delay_learning`);
4. the new delays enter the network with :func:`~bioplastic.neurons.rsnn.rsnn_set_delays`.

The class groups are either fixed (:func:`class_groups`: contiguous blocks, one map per
class) or **assigned by response** (:func:`assign_classes`), the label assignment of Diehl &
Cook (2015): each excitatory neuron takes the class for which its mean spike count over the
labelled stimuli is highest, and the decision is the class whose neurons have the highest
mean count (:func:`class_scores`). :func:`running_assignment` re-assigns from the responses
recorded so far during training, so the decision that sets the reward always uses groups
computed from earlier stimuli only.

Nothing here modifies its arguments; an invalid reward or update raises before anything is
computed, so delays and weights stay as they were.

Reference for the assigned readout: P. U. Diehl, M. Cook, "Unsupervised learning of digit
recognition using spike-timing-dependent plasticity", *Front. Comput. Neurosci.* 9:99 (2015),
and its code (``peter-u-diehl/stdp-mnist``: ``get_new_assignments``,
``get_recognized_number_ranking``).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .._validate import (
    as_float_array,
    check_finite,
    check_shape,
    finite_float,
    non_negative_int,
    positive,
    positive_int,
)
from ..rules.delay_learning import (
    DelayBounds,
    DelayRuleParams,
    HomeostasisParams,
    check_bounds,
    check_rule,
    fused_update,
    homeostasis_init,
    homeostasis_update,
    spike_lists,
)
from ..rules.stdp import STDPParams
from .rsnn import (
    _PLASTIC,
    DEFAULT_RSNN_STDP,
    RSNNParams,
    RSNNState,
    RSNNTopology,
    _all_finite,
    rsnn_init,
    rsnn_set_delays,
    run_rsnn,
)

__all__ = ["LearningParams", "decide", "reward_for", "class_groups", "learned_synapses",
           "delay_weight_update", "LearnerState", "learner_init", "present",
           "NO_DELAY_LEARNING", "UDL", "RDL", "READOUT_STATISTICS", "assign_classes",
           "class_scores", "running_assignment", "decision_window"]

#: How the readout scores a class from its neurons' spike counts.
READOUT_STATISTICS = ("sum", "mean")


class LearningParams(NamedTuple):
    """What changes between stimuli (the three arms of the experiment are presets below)."""

    rule: DelayRuleParams = DelayRuleParams()
    bounds: DelayBounds = DelayBounds()
    homeostasis: HomeostasisParams = HomeostasisParams()
    learn_delays: bool = True        # delay rule on
    reward_modulated: bool = True    # True: RDL (r * Σ G); False: UDL (Σ G)
    learn_weights: bool = True       # weight rule F between stimuli
    use_homeostasis: bool = True     # rate homeostasis on delays (if learned) and weights
    reward_decided_only: bool = False   # r reaches only the synapses onto the decided group
    reward_weights: bool = False     # weights by r * Σ F instead of Σ F


RDL = LearningParams()
UDL = LearningParams(reward_modulated=False)
NO_DELAY_LEARNING = LearningParams(learn_delays=False)


class LearnerState(NamedTuple):
    window: np.ndarray        # homeostasis activity window (W, n_exc)
    stimulus_index: int


def learner_init(topo: RSNNTopology, learning: LearningParams = RDL) -> LearnerState:
    return LearnerState(homeostasis_init(topo.n_exc, learning.homeostasis), 0)


def class_groups(n_classes: int, per_class: int) -> np.ndarray:
    """Class of each of ``n_classes * per_class`` excitatory neurons: contiguous blocks."""
    return np.repeat(np.arange(positive_int("n_classes", n_classes)),
                     positive_int("per_class", per_class))


def _check_groups(groups, n_exc: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or g.dtype.kind not in "iu" or g.size != n_exc:
        raise ValueError(f"groups must be an int array of shape ({n_exc},) (class of each "
                         f"excitatory neuron, -1 for none), got {g.dtype} {g.shape}")
    if not np.any(g >= 0):
        raise ValueError("groups must tag at least one excitatory neuron with a class "
                         "(the readout has no class groups)")
    return g.astype(np.int64)


def _check_statistic(statistic: str) -> str:
    if statistic not in READOUT_STATISTICS:
        raise ValueError(f"statistic must be one of {READOUT_STATISTICS}, got {statistic!r}")
    return statistic


def class_scores(counts, groups, n_classes: int, *, statistic: str = "sum") -> np.ndarray:
    """Score of each class from per-neuron spike counts: the sum or the mean over its neurons.

    Parameters
    ----------
    counts : (n_exc,) or (n_samples, n_exc)
        Spike count of each excitatory neuron in the decision window.
    groups : int (n_exc,)
        Class of each neuron (``-1``: none), from :func:`class_groups` or
        :func:`assign_classes`.
    statistic : {"sum", "mean"}
        ``"mean"`` divides by the number of neurons of the class (Diehl & Cook's readout); a
        class without neurons scores 0 under both (as in their code).

    Returns
    -------
    (n_classes,) or (n_samples, n_classes) float64
    """
    _check_statistic(statistic)
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim not in (1, 2):
        raise ValueError(f"counts must be (n_exc,) or (n_samples, n_exc), got {c.shape}")
    g = _check_groups(groups, c.shape[-1])
    n_classes = _check_n_classes(n_classes, g)
    tagged = g >= 0
    onehot = np.zeros((g.size, n_classes))
    onehot[np.nonzero(tagged)[0], g[tagged]] = 1.0
    scores = c @ onehot
    if statistic == "mean":
        sizes = onehot.sum(axis=0)
        scores = np.divide(scores, sizes, out=np.zeros_like(scores), where=sizes > 0)
    return scores


def _check_n_classes(n_classes, groups: np.ndarray) -> int:
    n = positive_int("n_classes", n_classes)
    if groups.max() >= n:
        raise ValueError(f"n_classes must exceed every group label, got {n_classes}")
    return n


def decision_window(start_step, stop_step, n_steps: int) -> tuple[int, int]:
    """The readout window ``[start_step, stop_step)`` (``stop_step`` None: to the end) checked
    against the stimulus' ``n_steps``, as ``(start, stop)`` with ``stop`` at most ``n_steps``
    (as slicing clips it). A negative step would count from the end (Python slicing) and a
    window past the end would score silence, both silently: they raise."""
    start = non_negative_int("start_step", start_step)
    stop = n_steps if stop_step is None else non_negative_int("stop_step", stop_step)
    if not start < min(stop, n_steps):
        raise ValueError(f"the decision window [start_step, stop_step) = [{start}, {stop}) "
                         f"must hold at least one of the stimulus' {n_steps} steps")
    return start, min(stop, n_steps)


def decide(exc_spikes, groups, n_classes: int, *, start_step: int = 0,
           stop_step: int | None = None, statistic: str = "sum") -> int:
    """Decision of the readout: the class group with the most spikes in the window.

    exc_spikes : bool (T, n_exc); groups : int (n_exc,), class per neuron (-1: none);
    statistic : ``"sum"`` (the group's spike count) or ``"mean"`` (per neuron of the group,
    see :func:`class_scores`). Returns the class, or ``-1`` when the maximum is shared
    (silence included).
    """
    spikes = np.asarray(exc_spikes)
    if spikes.ndim != 2:
        raise ValueError(f"exc_spikes must be (T, n_exc), got shape {spikes.shape}")
    start, stop = decision_window(start_step, stop_step, spikes.shape[0])
    scores = class_scores(spikes[start:stop].sum(axis=0), groups, n_classes,
                          statistic=statistic)
    best = scores.max()
    if np.count_nonzero(scores == best) > 1:
        return -1
    return int(scores.argmax())


def _check_responses(responses, labels, n_classes) -> tuple[np.ndarray, np.ndarray, int]:
    r = np.asarray(responses)
    if r.ndim != 2 or r.dtype.kind not in "iuf":
        raise ValueError(f"responses must be a real (n_samples, n_neurons) array, got "
                         f"{r.dtype} {r.shape}")
    r = r.astype(np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("responses must be finite and >= 0 (spike counts)")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or y.shape != (r.shape[0],):
        raise ValueError(f"labels must be ints of shape ({r.shape[0]},) (one class index per "
                         f"row of responses), got {y.dtype} {y.shape}")
    n = positive_int("n_classes", n_classes)
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"labels must be class indices in [0, {n}), got values in "
                         f"[{y.min()}, {y.max()}]")
    return r, y.astype(np.int64), n


def assign_classes(responses, labels, n_classes: int) -> np.ndarray:
    """Diehl & Cook's label assignment: each neuron takes the class it responds to most.

    Parameters
    ----------
    responses : (n_samples, n_neurons)
        Spike count of each neuron for each labelled stimulus (>= 0).
    labels : int (n_samples,)
        Class index of each stimulus, in ``[0, n_classes)``; every class must occur.
    n_classes : int

    Returns
    -------
    int64 (n_neurons,)
        The class with the highest **mean** response over its stimuli (means, so a class
        with more stimuli is not favoured); ties go to the lowest class index; ``-1`` for a
        neuron that never spiked (Diehl & Cook's evaluation code leaves those unassigned).

    Raises
    ------
    ValueError
        A class with no stimulus (its neurons could not be assigned fairly), labels outside
        ``[0, n_classes)``, mismatched shapes, or negative / non-finite responses.
    """
    r, y, n = _check_responses(responses, labels, n_classes)
    seen = np.bincount(y, minlength=n)
    if np.any(seen == 0):
        raise ValueError(f"every class must have at least one stimulus; class index(es) "
                         f"{np.nonzero(seen == 0)[0].tolist()} never occur in labels")
    means = np.zeros((n, r.shape[1]))
    np.add.at(means, y, r)
    means /= seen[:, None]
    out = means.argmax(axis=0).astype(np.int64)     # first maximum: the lowest class
    out[means.max(axis=0) <= 0.0] = -1
    return out


def running_assignment(responses, labels, n_classes: int, previous) -> np.ndarray:
    """Re-assignment during training, from the responses recorded so far.

    The same rule as :func:`assign_classes`, but ``previous`` (the groups in force, e.g.
    :func:`class_groups` before the first re-assignment) is kept, unchanged, when the record
    cannot assign fairly: a class has no stimulus in it yet, or no neuron spiked at all.
    """
    r, y, n = _check_responses(responses, labels, n_classes)
    prev = _check_groups(previous, r.shape[1])
    _check_n_classes(n, prev)
    if np.any(np.bincount(y, minlength=n) == 0):
        return prev.copy()
    out = assign_classes(r, y, n)
    return prev.copy() if not np.any(out >= 0) else out


def reward_for(decision: int, label: int) -> float:
    """``+1.0`` for a correct decision, ``-1.0`` otherwise (undecided ``-1`` is wrong)."""
    return 1.0 if decision == label and decision >= 0 else -1.0


def learned_synapses(topo: RSNNTopology) -> np.ndarray:
    """Indices of the synapses whose delays and weights learn (pathways input_exc, exc_exc)."""
    return np.nonzero(np.asarray(_PLASTIC)[topo.pathway])[0]


def delay_weight_update(topo: RSNNTopology, delay_ms, weight, src_spikes, post_spikes, reward,
                        learner: LearnerState, dt_ms: float,
                        learning: LearningParams = RDL, *, modulated=None
                        ) -> tuple[np.ndarray, np.ndarray, LearnerState]:
    """New delays, weights and learner state after one stimulus (inputs unchanged).

    Parameters
    ----------
    delay_ms, weight : (n_syn,)
        Delays in force during the stimulus and weights at its end (topology order).
    src_spikes : bool (T, n_in + n)
        Spikes of every source during the stimulus (inputs, then neurons).
    post_spikes : bool (T, n)
        Spikes of the neurons (``src_spikes[:, n_in:]``).
    reward : float
        The stimulus' reward (``reward_for``); must be finite even when unused.
    modulated : bool (n,), optional
        Post neurons whose incoming synapses receive the reward; the others get ``r = 0``
        (their delays and, with ``reward_weights``, weights keep only homeostasis and growth).
        Default: every neuron.
    """
    r = finite_float("reward", reward)
    n = topo.n_neurons
    src, post = np.asarray(src_spikes), np.asarray(post_spikes)
    for name, spikes in (("src_spikes", src), ("post_spikes", post)):
        if spikes.dtype != np.bool_:
            raise TypeError(f"{name} must be a bool spike raster, got dtype {spikes.dtype}")
    check_shape("src_spikes", src, (None, topo.n_in + n))
    check_shape("post_spikes", post, (src.shape[0], n))
    if not isinstance(learner, LearnerState):
        raise TypeError(f"learner must be a LearnerState (learner_init), got "
                        f"{type(learner).__name__}")
    non_negative_int("learner.stimulus_index", learner.stimulus_index)
    d = as_float_array("delay_ms", delay_ms, ndim=1, finite=False)
    w = as_float_array("weight", weight, ndim=1, finite=False)
    check_shape("delay_ms", d, (topo.n_synapses,))
    check_shape("weight", w, (topo.n_synapses,))
    for name, values in (("delay_ms", d), ("weight", w)):
        if not _all_finite(values):
            check_finite(name, values)
    rule, bounds = check_rule(learning.rule), check_bounds(learning.bounds)
    # the learned pathways (input_exc, exc_exc) are the first synapses of the topology
    hi = int(topo.pathway_ptr[2])
    _warn_outside_bounds(w[:hi], bounds)
    r_post = np.full(n, r)
    if modulated is not None:
        mask = np.asarray(modulated)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(f"modulated must be bool of shape ({n},), got {mask.dtype} "
                             f"{mask.shape}")
        r_post = np.where(mask, r, 0.0)
    window, index = learner.window, learner.stimulus_index
    hd_post, hw_post = np.zeros(n), np.zeros(n)
    if learning.use_homeostasis:
        spiked = post[:, :topo.n_exc].any(axis=0)
        window, hd_post[:topo.n_exc], hw_post[:topo.n_exc] = homeostasis_update(
            window, index, spiked, learning.homeostasis)
    if not learning.learn_delays:   # delays fixed: no stop criterion, no growth
        hd_post[:] = 0.0
        bounds = bounds._replace(stop_ms=-1.0, growth_ms=0.0)
    # the fused pass writes every learned element: copy only the static tail
    d_new, w_new = np.empty_like(d), np.empty_like(w)
    d_new[hi:], w_new[hi:] = d[hi:], w[hi:]
    fused_update(topo.pre[:hi], topo.post[:hi], d[:hi], w[:hi], *spike_lists(src),
                 *spike_lists(post), positive("dt_ms", finite_float("dt_ms", dt_ms)), rule,
                 r_post, bool(learning.reward_modulated), bool(learning.reward_weights),
                 bool(learning.learn_delays), bool(learning.learn_weights), hd_post, hw_post,
                 bounds, d_new[:hi], w_new[:hi])
    return d_new, w_new, LearnerState(window, index + 1)


def _check_label(label, n_classes) -> int:
    n = positive_int("n_classes", n_classes)
    if isinstance(label, bool | np.bool_) or not isinstance(label, int | np.integer):
        raise TypeError(f"label must be an int class index, got {label!r}")
    if not 0 <= label < n:
        raise ValueError(f"label must be a class in [0, n_classes) = [0, {n}), got {label}")
    return int(label)


def _warn_outside_bounds(learned_w: np.ndarray, bounds: DelayBounds) -> None:
    """The update clips every learned weight to ``[w_min, w_max]``: weights drawn on another
    scale (``DelayBounds``' default ``w_max = 1`` against weights in mV) would be cut at the
    first stimulus without a word."""
    outside = np.count_nonzero((learned_w < bounds.w_min) | (learned_w > bounds.w_max))
    if outside:
        warnings.warn(f"{outside} of {learned_w.size} learned weights lie outside "
                      f"learning.bounds [w_min, w_max] = [{bounds.w_min}, {bounds.w_max}] and "
                      "are clipped to it by this update; set learning.bounds.w_min/w_max to "
                      "the weights' scale", RuntimeWarning, stacklevel=3)


def present(stimulus, label: int, state: RSNNState, topo: RSNNTopology, learner: LearnerState,
            groups, n_classes: int, params: RSNNParams | None = None,
            stdp: STDPParams = DEFAULT_RSNN_STDP, learning: LearningParams = RDL, *,
            start_step: int = 0, stop_step: int | None = None, learn: bool = True,
            fresh: bool = False, statistic: str = "sum"):
    """One stimulus: run, decide, reward, update (``learn``), set the new delays.

    ``groups`` are the readout's class groups (fixed, or assigned by response); with
    ``learning.reward_decided_only`` the reward reaches the neurons of the decided class in
    ``groups``. ``statistic``: how :func:`decide` scores a group.

    ``fresh=True`` starts the stimulus from rest (membranes, adaptive thresholds ``theta``,
    traces and spike queue cleared as :func:`rsnn_init` sets them, weights and delays kept);
    otherwise the network runs on from ``state`` (spikes still queued cross the delay change,
    as in Brian2). ``label`` is a class in ``[0, n_classes)``. Returns
    ``(new_state, new_learner, decision, reward, spikes (T, n))``.
    """
    params = RSNNParams() if params is None else params
    label = _check_label(label, n_classes)
    if learn and learning.learn_delays and learning.bounds.d_max_ms > params.max_delay_ms:
        raise ValueError(f"learning.bounds.d_max_ms ({learning.bounds.d_max_ms}) must not "
                         f"exceed params.max_delay_ms ({params.max_delay_ms}), the ring size")
    if fresh:
        state = rsnn_init(topo, params, state.w, state.delay_ms)._replace(step=state.step)
    trace = run_rsnn(stimulus, state, topo, params, stdp)
    spikes = trace.spikes
    decision = decide(spikes[:, :topo.n_exc], groups, n_classes, start_step=start_step,
                      stop_step=stop_step, statistic=statistic)
    reward = reward_for(decision, label)
    if not learn:
        return trace.state, learner, decision, reward, spikes
    src = np.concatenate([np.asarray(stimulus, dtype=np.bool_), spikes], axis=1)
    modulated = None
    if learning.reward_decided_only:
        g = np.asarray(groups)
        modulated = np.concatenate([(g == decision) & (decision >= 0),
                                    np.zeros(topo.n_inh, np.bool_)])
    d_new, w_new, learner = delay_weight_update(topo, trace.state.delay_ms, trace.state.w, src,
                                                spikes, reward, learner, float(params.dt_ms),
                                                learning, modulated=modulated)
    # run_rsnn has just checked trace.state's structure against this topo; d_new and w_new
    # are fresh arrays nobody else holds, so the new state takes them without a copy
    new_state = rsnn_set_delays(trace.state, topo, params, d_new, weight=w_new, check=False,
                                copy=False)
    return new_state, learner, decision, reward, spikes
