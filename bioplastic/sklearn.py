"""scikit-learn front end: :class:`SoftHebb`, an unsupervised feature-learning transformer.

A dense SoftHebb layer (:mod:`bioplastic.rules.softhebb`) trained without labels:
``fit`` = ``n_epochs`` passes of ``partial_fit`` over (shuffled) data in minibatches;
``transform`` returns ``activation(X @ components_.T)``. The defaults are the digits sanity
setup of the spec (§7: ICLR rule with anti-Hebbian losers, max-normalised ``dw``, norm-dependent
rate η₀ = 0.05 with power 0.5, τ = 1, radius 10, batch 10, Triangle features). Inputs are used
as given: standardise them first (e.g. ``make_pipeline(StandardScaler(), SoftHebb())``).

Conventions (scikit-learn's): ``__init__`` stores its arguments; ``partial_fit`` returns
``self`` and initialises on its first call; fitted state ends in ``_``; one ``random_state``
draws the initial weights and then the epoch permutations.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validate import finite_float
from .rules.apply import UpdateParams, apply_update
from .rules.inhibition import soft_wta_kernel, triangle
from .rules.softhebb import SoftHebbParams, soft_hebb_dw

__all__ = ["SoftHebb", "ACTIVATIONS", "RSNNClassifier", "DELAY_LEARNING", "READOUTS",
           "FINAL_ASSIGNMENTS"]

#: What ``transform`` returns: Triangle features (the SoftHebb forward path), the linear
#: pre-activations, or the soft-WTA posteriors.
ACTIVATIONS = ("triangle", "linear", "softmax")


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):   # scikit-learn style state
        return np.random.default_rng(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, int | np.integer)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator, got "
                    f"{random_state!r}")


class SoftHebb(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Unsupervised SoftHebb features.

    Parameters
    ----------
    n_components : int, number of units K.
    temperature : float > 0, soft-WTA temperature τ.
    anti_hebbian : bool, ICLR-2023 anti-Hebbian losers.
    learning_rate : float >= 0, η₀.
    power_lr : float >= 0, exponent of the norm-dependent rate (0: constant rate).
    max_normalise : bool, divide each ``dw`` by its ``max |·|``.
    radius : float > 0, expected initial row norm (weights ~ N(0, radius²/n_features)).
    batch_size : int >= 1.
    n_epochs : int >= 1, passes of ``fit`` over the data.
    activation : 'triangle', 'linear' or 'softmax' (what ``transform`` returns).
    triangle_power : float > 0.
    shuffle : bool, permute the samples every epoch in ``fit``.
    random_state : None, int, RandomState or Generator.

    Attributes
    ----------
    components_ : (n_components, ``n_features_in_``) weights.
    n_features_in_ : int.
    n_updates_ : int, weight updates applied so far.
    """

    def __init__(self, n_components=32, *, temperature=1.0, anti_hebbian=True,
                 learning_rate=0.05, power_lr=0.5, max_normalise=True, radius=10.0,
                 batch_size=10, n_epochs=5, activation="triangle", triangle_power=1.0,
                 shuffle=True, random_state=None):
        self.n_components = n_components
        self.temperature = temperature
        self.anti_hebbian = anti_hebbian
        self.learning_rate = learning_rate
        self.power_lr = power_lr
        self.max_normalise = max_normalise
        self.radius = radius
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.activation = activation
        self.triangle_power = triangle_power
        self.shuffle = shuffle
        self.random_state = random_state

    # ---------------------------------------------------------------------------- checks
    def _check_params(self) -> None:
        for name in ("n_components", "batch_size", "n_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, low_ok in (("temperature", False), ("radius", False),
                             ("triangle_power", False), ("learning_rate", True),
                             ("power_lr", True)):
            value = finite_float(name, getattr(self, name))   # a real scalar: TypeError else
            if value < 0 or (value == 0 and not low_ok):
                raise ValueError(f"{name} must be finite and {'>=' if low_ok else '>'} 0, got "
                                 f"{value!r}")
        for name in ("anti_hebbian", "max_normalise", "shuffle"):
            # bool("no") is True: a flag given as a string would silently turn it on
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")

    def _rule_params(self) -> tuple[SoftHebbParams, UpdateParams]:
        return (SoftHebbParams(float(self.temperature), bool(self.anti_hebbian)),
                UpdateParams(float(self.learning_rate), bool(self.max_normalise),
                             float(self.power_lr)))

    # ---------------------------------------------------------------------------- fitting
    def _initialise(self, n_features: int, rng: np.random.Generator) -> None:
        # Gaussian with std R/√n, so E‖w_k‖ ≈ R (SoftHebb's init after BN; docs/softhebb.md).
        scale = self.radius / np.sqrt(n_features)
        self.components_ = rng.normal(scale=scale, size=(self.n_components, n_features))
        self.n_updates_ = 0

    def _one_pass(self, X: np.ndarray) -> None:
        rule, update = self._rule_params()
        w = self.components_
        for start in range(0, X.shape[0], self.batch_size):
            batch = X[start:start + self.batch_size]
            w = apply_update(w, soft_hebb_dw(batch, batch @ w.T, w, rule), update)
            self.n_updates_ += 1
        self.components_ = w

    def partial_fit(self, X, y=None):
        """One pass over ``X`` (in order, minibatches of ``batch_size``); returns ``self``."""
        self._check_params()
        first = not hasattr(self, "components_")
        X = validate_data(self, X, reset=first, dtype=np.float64)
        if first:
            self._initialise(X.shape[1], _generator(self.random_state))
        self._one_pass(X)
        return self

    def fit(self, X, y=None):
        """Initialise, then ``n_epochs`` passes (samples permuted each epoch if ``shuffle``)."""
        self._check_params()
        X = validate_data(self, X, reset=True, dtype=np.float64)
        rng = _generator(self.random_state)
        self._initialise(X.shape[1], rng)
        for _ in range(self.n_epochs):
            self._one_pass(X[rng.permutation(X.shape[0])] if self.shuffle else X)
        return self

    # ---------------------------------------------------------------------------- output
    def transform(self, X):
        """Features ``activation(X @ components_.T)``: (n_samples, n_components)."""
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        u = X @ self.components_.T
        if self.activation == "triangle":
            return triangle(u, self.triangle_power)
        if self.activation == "softmax":
            return soft_wta_kernel(np.ascontiguousarray(u), float(self.temperature))
        return u

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


# ----------------------------------------------------------------------------------------------
# RSNN classifier with learned delays (issue 12)

#: ``delay_learning`` values of :class:`RSNNClassifier`.
DELAY_LEARNING = ("rdl", "udl", "none")

#: ``readout`` values of :class:`RSNNClassifier`: fixed class groups (one map per class) or
#: groups assigned by response (Diehl & Cook 2015).
READOUTS = ("groups", "assigned")

#: ``final_assignment`` values: a frozen pass over the training set, or the running record.
FINAL_ASSIGNMENTS = ("pass", "running")


class RSNNClassifier(ClassifierMixin, BaseEstimator):
    """Classify spike trains (or event streams) with the delay-learning E/I network.

    The network (:mod:`bioplastic.neurons.rsnn`): every input unit projects to a random
    fraction ``p_input`` of the excitatory neurons with heterogeneous delays; the excitatory
    neurons form one map of ``n_per_class`` neurons per class (the class groups of the
    readout), sparse recurrent excitation ``p_recurrent``, and lateral inhibition between the
    maps through one inhibitory partner per excitatory neuron. ``fit`` presents every sample
    ``n_epochs`` times (shuffled), each from rest; after each one the readout decides (the
    group with the most spikes in the decision window), the reward is ±1 and delays and
    weights learn (:mod:`bioplastic.neurons.rsnn_train`): ``"rdl"`` reward-modulated delays,
    ``"udl"`` unsupervised delays, ``"none"`` fixed delays; the weight rule, threshold and
    rate homeostasis act in every arm. ``predict`` runs each sample from rest without learning
    and returns the class whose group spiked most (ties: the first).

    **Readout.** ``readout="groups"`` reads the fixed maps: neuron ``k`` belongs to class
    ``k // n_per_class``. Since every neuron samples the whole input at random, these groups
    start with no class preference. ``readout="assigned"`` is the label assignment of Diehl &
    Cook (2015, *Front. Comput. Neurosci.* 9:99): each excitatory neuron is assigned the class
    for which its mean spike count over training stimuli is highest (never-spiking neurons
    are unassigned), and the decision is the class whose assigned neurons have the highest
    mean count. During training the groups start as the fixed maps and are re-assigned every
    ``reassign_every`` stimuli from the counts recorded so far (the last
    ``assignment_window`` stimuli, or all), once every class has occurred; the decision, and
    so the reward and the neurons it reaches, uses the groups of the earlier stimuli only
    (Diehl & Cook re-assign from the running responses every 10,000 stimuli). After training
    the groups are assigned once more: from a pass over the training set with learning off
    (``final_assignment="pass"``, as in their evaluation) or from the running record.

    Parameters
    ----------
    delay_learning : {"rdl", "udl", "none"}
    n_per_class : int
    n_epochs : int
    p_input, p_recurrent : float
        Connection probabilities input -> exc and exc -> exc.
    w_input, w_recurrent : float
        Initial weights drawn uniformly in ``[0, w]`` (mV).
    max_delay_ms : float
        Initial delays uniform in whole steps ``1..max_delay_ms``; also the learned delays'
        upper bound.
    w_max : float, optional
        Upper bound of the learned weights, for the online STDP and for the between-stimuli
        updates alike (``learning.bounds.w_max`` is replaced by it). Default
        ``max(w_input, w_recurrent, 1)``: no initial weight lies above it.
    w_ei, w_ie : float
        Lateral inhibition weights (exc -> inh partner, inh -> other maps; ``w_ie < 0``).
    theta_plus_mv : float
        Threshold homeostasis increment per spike (0: off).
    stdp : bool
        Online pair STDP on the input and recurrent synapses.
    sensor_size : (W, H, P), optional
        Needed when samples are event arrays; they are binned to ``dt_ms`` steps.
    events_t_start_us : float, optional
        Start of step 0 for event arrays. ``None``: each stream's own first event, so streams
        that differ only by their onset give the same raster (and rasters differ in length); a
        number (e.g. ``0.0``, as ``experiments/gestures_rdl.py`` bins): one origin for all,
        which keeps the onset.
    decision_window_ms : (start, stop)
        Window of the readout within each stimulus (``stop=None``: to the end).
    learning : LearningParams, optional
        Overrides the rule constants (bounds, homeostasis, kernels) of the chosen arm.
    readout : {"groups", "assigned"}
        Fixed class groups, or groups assigned by response (above).
    readout_statistic : {"sum", "mean"}, optional
        How a class is scored from its neurons' counts. Default: ``"sum"`` for ``"groups"``
        (equal-sized groups: the same decisions as ``"mean"``), ``"mean"`` for ``"assigned"``
        (Diehl & Cook's; the assigned groups differ in size).
    reassign_every : int
        Stimuli between re-assignments during training (``readout="assigned"``); 0: only the
        final assignment (the fixed maps decide during training).
    assignment_window : int, optional
        The running re-assignment uses the last ``assignment_window`` stimuli (None: all).
    final_assignment : {"pass", "running"}
        After training: re-assign from a pass over the training set with learning off, or
        from the running record (the last ``assignment_window`` stimuli).
    random_state : int, Generator or None

    Attributes
    ----------
    classes_ : (n_classes,)
    groups_ : int (n_exc,)
        The fixed maps (class of each excitatory neuron).
    assignment_ : int (n_exc,)
        The groups the readout uses: ``groups_``, or the final assignment (``-1``: none).
    rewards_, decisions_ : (n_epochs * n_samples,)
        Reward and decision (class index, ``-1`` undecided) of every training stimulus.
    delay_history_ : (n_epochs * n_samples + 1, n_synapses)
    """

    def __init__(self, delay_learning: str = "rdl", n_per_class: int = 8, n_epochs: int = 1,
                 p_input: float = 0.3, p_recurrent: float = 0.05, w_input: float = 3.0,
                 w_recurrent: float = 1.0, max_delay_ms: float = 20.0, w_ei: float = 8.0,
                 w_ie: float = -6.0, theta_plus_mv: float = 0.2, stdp: bool = True,
                 sensor_size=None, decision_window_ms=(0.0, None), learning=None,
                 dt_ms: float = 1.0, w_max: float | None = None, readout: str = "groups",
                 readout_statistic: str | None = None, reassign_every: int = 1,
                 assignment_window: int | None = None, final_assignment: str = "pass",
                 random_state=None, events_t_start_us: float | None = None):
        self.delay_learning = delay_learning
        self.n_per_class = n_per_class
        self.n_epochs = n_epochs
        self.p_input = p_input
        self.p_recurrent = p_recurrent
        self.w_input = w_input
        self.w_recurrent = w_recurrent
        self.max_delay_ms = max_delay_ms
        self.w_ei = w_ei
        self.w_ie = w_ie
        self.theta_plus_mv = theta_plus_mv
        self.stdp = stdp
        self.sensor_size = sensor_size
        self.decision_window_ms = decision_window_ms
        self.learning = learning
        self.dt_ms = dt_ms
        self.w_max = w_max
        self.readout = readout
        self.readout_statistic = readout_statistic
        self.reassign_every = reassign_every
        self.assignment_window = assignment_window
        self.final_assignment = final_assignment
        self.random_state = random_state
        self.events_t_start_us = events_t_start_us

    # -- helpers --------------------------------------------------------------------------
    def _rasters(self, X) -> list:
        from .neurons.rsnn import check_inputs

        if isinstance(X, np.ndarray) and X.dtype.names is None and X.ndim == 3:
            X = list(X)
        if not isinstance(X, list | tuple) or not X:
            raise ValueError("X must be a non-empty sequence of spike rasters (T, n_in) or "
                             "event arrays")
        rasters = []
        for sample in X:
            sample = np.asarray(sample)
            if sample.dtype.names is not None:
                if self.sensor_size is None:
                    raise ValueError("sensor_size must be given to classify event arrays")
                from .data.events import events_to_spikes

                sample = events_to_spikes(sample, self.sensor_size,
                                          dt_us=float(self.dt_ms) * 1000.0,
                                          t_start_us=self.events_t_start_us)
            rasters.append(sample)
        n_in = rasters[0].shape[1] if rasters[0].ndim == 2 else -1
        return [check_inputs(r, n_in) for r in rasters]

    def _arm(self):
        from .neurons.rsnn_train import NO_DELAY_LEARNING, RDL, UDL

        arms = dict(zip(DELAY_LEARNING, (RDL, UDL, NO_DELAY_LEARNING), strict=True))
        if self.delay_learning not in arms:
            raise ValueError(f"delay_learning must be one of {DELAY_LEARNING}, got "
                             f"{self.delay_learning!r}")
        base = arms[self.delay_learning]
        if self.learning is not None:
            base = self.learning._replace(learn_delays=base.learn_delays,
                                          reward_modulated=base.reward_modulated)
        # one weight bound for STDP and the between-stimuli clip: with the bounds' own default
        # (1.0) the first update used to clip every initial weight above it (w_input = 3)
        return base._replace(bounds=base.bounds._replace(d_max_ms=float(self.max_delay_ms),
                                                         w_max=self._w_max()))

    def _w_max(self) -> float:
        if self.w_max is not None:
            return float(self.w_max)
        return max(float(self.w_input), float(self.w_recurrent), 1.0)

    def _check_network(self) -> None:
        """The network's hyperparameters, before anything is drawn (scikit-learn estimators
        check in ``fit``): a bad value would otherwise surface as a NumPy error deep inside,
        or not at all (a probability of 2, a flag given as a string)."""
        from ._validate import finite_float, in_range, non_negative, positive, positive_int

        positive_int("n_per_class", self.n_per_class)
        for name in ("p_input", "p_recurrent"):
            in_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("w_input", "w_recurrent", "theta_plus_mv"):
            non_negative(name, getattr(self, name))
        finite_float("w_ei", self.w_ei)
        finite_float("w_ie", self.w_ie)
        dt = positive("dt_ms", self.dt_ms)
        if not positive("max_delay_ms", self.max_delay_ms) >= dt:
            raise ValueError(f"max_delay_ms must be at least one step (dt_ms = {dt}), got "
                             f"{self.max_delay_ms!r}")
        if self.w_max is not None:
            positive("w_max", self.w_max)
        if not isinstance(self.stdp, bool | np.bool_):
            raise TypeError(f"stdp must be a bool, got {self.stdp!r}")
        self._window()

    def _build(self, n_in: int, n_classes: int, rng):
        from .neurons.rsnn import (
            DEFAULT_RSNN_STDP,
            RSNNParams,
            lateral_inhibition,
            rsnn_init,
            rsnn_topology,
        )

        n_exc = n_classes * int(self.n_per_class)
        steps_max = int(np.floor(float(self.max_delay_ms) / float(self.dt_ms) + 0.5))
        ie = np.nonzero(rng.random((n_in, n_exc)) < self.p_input)
        ee = np.nonzero(rng.random((n_exc, n_exc)) < self.p_recurrent)
        synapses = {
            "input_exc": (*ie, rng.uniform(0.0, self.w_input, ie[0].size),
                          rng.integers(1, steps_max + 1, ie[0].size) * float(self.dt_ms)),
            "exc_exc": (*ee, rng.uniform(0.0, self.w_recurrent, ee[0].size),
                        rng.integers(1, steps_max + 1, ee[0].size) * float(self.dt_ms)),
            **lateral_inhibition(n_classes, int(self.n_per_class), self.w_ei, self.w_ie)}
        topo, w, d = rsnn_topology(n_in, n_exc, n_exc, synapses)
        params = RSNNParams(dt_ms=float(self.dt_ms), max_delay_ms=float(self.max_delay_ms),
                            theta_plus_mv=float(self.theta_plus_mv), stdp_input=bool(self.stdp),
                            stdp_recurrent=bool(self.stdp))
        stdp = DEFAULT_RSNN_STDP._replace(w_max=self._w_max())
        return topo, params, stdp, rsnn_init(topo, params, w, d)

    def _readout(self) -> tuple[bool, str]:
        """(assigned?, statistic), after checking the readout parameters."""
        from ._validate import non_negative_int, positive_int
        from .neurons.rsnn_train import READOUT_STATISTICS

        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        statistic = self.readout_statistic
        if statistic is None:
            statistic = "mean" if self.readout == "assigned" else "sum"
        if statistic not in READOUT_STATISTICS:
            raise ValueError(f"readout_statistic must be one of {READOUT_STATISTICS} or None, "
                             f"got {statistic!r}")
        non_negative_int("reassign_every", self.reassign_every)
        if self.assignment_window is not None:
            positive_int("assignment_window", self.assignment_window)
        if self.final_assignment not in FINAL_ASSIGNMENTS:
            raise ValueError(f"final_assignment must be one of {FINAL_ASSIGNMENTS}, got "
                             f"{self.final_assignment!r}")
        return self.readout == "assigned", statistic

    def _recent(self, n: int) -> slice:
        """The running record's rows the re-assignment uses, of ``n`` recorded."""
        window = self.assignment_window
        return slice(0 if window is None else max(0, n - int(window)), n)

    def _counts(self, spikes: np.ndarray, n_exc: int) -> np.ndarray:
        from .neurons.rsnn_train import decision_window

        start, stop = decision_window(*self._window(), spikes.shape[0])
        return spikes[start:stop, :n_exc].sum(axis=0)

    def _window(self):
        """The decision window in steps ``(start, stop or None)``."""
        from ._validate import finite_float, non_negative, positive

        window = self.decision_window_ms
        if not isinstance(window, tuple | list) or len(window) != 2:
            raise ValueError(f"decision_window_ms must be a (start, stop) pair in ms (stop None "
                             f"for the end), got {window!r}")
        dt = positive("dt_ms", self.dt_ms)
        start = non_negative("decision_window_ms[0]", window[0])
        if window[1] is not None and not finite_float("decision_window_ms[1]",
                                                      window[1]) > start:
            raise ValueError(f"decision_window_ms must have stop > start, got {window!r}")
        return (int(round(start / dt)),
                None if window[1] is None else int(round(float(window[1]) / dt)))

    # -- API ------------------------------------------------------------------------------
    def fit(self, X, y, *, progress=None):
        """Train on samples ``X`` (spike rasters (T, n_in) bool, or event arrays) with labels
        ``y``. ``progress``: optional callable ``progress(i, n_total, info)`` per stimulus."""
        from ._validate import non_negative_int
        from .neurons.rsnn_train import class_groups, learner_init, present, running_assignment

        self._check_network()
        rasters = self._rasters(X)
        y = np.asarray(y)
        if y.shape != (len(rasters),):
            raise ValueError(f"y must have one label per sample ({len(rasters)}), got {y.shape}")
        n_epochs = non_negative_int("n_epochs", self.n_epochs)
        assigned, statistic = self._readout()
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        n_classes = self.classes_.size
        rng = _generator(self.random_state)
        n_in = rasters[0].shape[1]
        self.n_features_in_ = n_in
        topo, params, stdp, state = self._build(n_in, n_classes, rng)
        learning = self._arm()
        groups = class_groups(n_classes, int(self.n_per_class))
        learner = learner_init(topo, learning)
        start, stop = self._window()
        total = n_epochs * len(rasters)
        # running record of (exc counts, label) per training stimulus, for the re-assignment
        responses, labels = np.zeros((total, topo.n_exc)), np.zeros(total, np.int64)
        rewards, decisions, delays = [], [], [state.delay_ms.copy()]
        readout = groups
        every = int(self.reassign_every)
        for epoch in range(n_epochs):
            for i in rng.permutation(len(rasters)):
                k = len(rewards)
                state, learner, decision, reward, spikes = present(
                    rasters[i], int(y_idx[i]), state, topo, learner, readout, n_classes,
                    params, stdp, learning, start_step=start, stop_step=stop, fresh=True,
                    statistic=statistic)
                responses[k], labels[k] = self._counts(spikes, topo.n_exc), y_idx[i]
                rewards.append(reward)
                decisions.append(decision)
                delays.append(state.delay_ms.copy())
                if assigned and every > 0 and (k + 1) % every == 0:
                    rows = self._recent(k + 1)
                    readout = running_assignment(responses[rows], labels[rows], n_classes,
                                                 readout)
                if progress is not None:
                    progress(k + 1, total, {"epoch": epoch, "reward": reward})
        self.topology_, self.params_, self.stdp_, self.state_ = topo, params, stdp, state
        self.groups_ = groups
        self.rewards_ = np.asarray(rewards, dtype=np.float64)
        self.decisions_ = np.asarray(decisions, dtype=np.int64)
        self.delay_history_ = np.asarray(delays)
        if assigned:
            if self.final_assignment == "pass":
                responses, labels = self.spike_counts(rasters), y_idx.astype(np.int64)
            else:
                rows = self._recent(total)
                responses, labels = responses[rows], labels[rows]
            readout = running_assignment(responses, labels, n_classes, readout)
        self.assignment_ = readout
        return self

    def spike_counts(self, X) -> np.ndarray:
        """Spike count of each excitatory neuron in the decision window, shape (n_samples,
        n_exc), each sample run from rest without learning (what the readout reads)."""
        from .neurons.rsnn import rsnn_init, run_rsnn

        check_is_fitted(self, "state_")
        rasters = self._rasters(X)
        topo, st = self.topology_, self.state_
        out = np.zeros((len(rasters), topo.n_exc))
        for k, raster in enumerate(rasters):
            if raster.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {raster.shape[1]} input units, the fit had "
                                 f"{self.n_features_in_}")
            state = rsnn_init(topo, self.params_, st.w, st.delay_ms)
            spikes = run_rsnn(raster, state, topo, self.params_, self.stdp_).spikes
            out[k] = self._counts(spikes, topo.n_exc)
        return out

    def decision_function(self, X) -> np.ndarray:
        """Score of each class in the decision window, shape (n_samples, n_classes): the
        spike count (``readout_statistic="sum"``) or the mean count per neuron (``"mean"``)
        of the class's group in ``assignment_``; each sample run from rest without
        learning."""
        from .neurons.rsnn_train import class_scores

        check_is_fitted(self, "assignment_")
        _, statistic = self._readout()
        return class_scores(self.spike_counts(X), self.assignment_, self.classes_.size,
                            statistic=statistic)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def spikes(self, x) -> np.ndarray:
        """Spike raster (T, n_exc + n_inh) of one sample run from rest with the fitted network."""
        from .neurons.rsnn import rsnn_init, run_rsnn

        check_is_fitted(self, "state_")
        raster = self._rasters([x])[0]
        st = self.state_
        state = rsnn_init(self.topology_, self.params_, st.w, st.delay_ms)
        return run_rsnn(raster, state, self.topology_, self.params_, self.stdp_).spikes
