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
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .rules.apply import UpdateParams, apply_update
from .rules.inhibition import soft_wta_kernel, triangle
from .rules.softhebb import SoftHebbParams, soft_hebb_dw

__all__ = ["SoftHebb", "ACTIVATIONS"]

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
        for name in ("temperature", "radius", "triangle_power"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        for name in ("learning_rate", "power_lr"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")

    def _rule_params(self) -> tuple[SoftHebbParams, UpdateParams]:
        return (SoftHebbParams(float(self.temperature), bool(self.anti_hebbian)),
                UpdateParams(float(self.learning_rate), bool(self.max_normalise),
                             float(self.power_lr)))

    # ---------------------------------------------------------------------------- fitting
    def _initialise(self, n_features: int, rng: np.random.Generator) -> None:
        # Gaussian with std R/√n, so E‖w_k‖ ≈ R (SoftHebb's init after BN; spec §3.4).
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
