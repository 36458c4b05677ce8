"""bioplastic.sklearn.SoftHebb: scikit-learn conformance, fit ≡ partial_fit, digits sanity."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from bioplastic.rules import SoftHebbParams, UpdateParams, apply_update, soft_hebb_dw, triangle
from bioplastic.sklearn import SoftHebb

#: Checks of scikit-learn's suite that SoftHebb is known to fail, with the reason. None at
#: present: every check of scikit-learn 1.9 passes (array-API checks skip without
#: SCIPY_ARRAY_API). Add entries here, never silence a check elsewhere.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([SoftHebb(n_components=4, n_epochs=1), SoftHebb()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture
def data(rng):
    return rng.normal(size=(53, 6))          # 53: the last minibatch is partial (53 = 5*10 + 3)


def test_fit_equals_partial_fit_loop(data):
    fitted = SoftHebb(5, n_epochs=3, shuffle=False, random_state=1).fit(data)
    partial = SoftHebb(5, n_epochs=3, shuffle=False, random_state=1)
    for _ in range(3):
        assert partial.partial_fit(data) is partial
    np.testing.assert_array_equal(fitted.components_, partial.components_)
    assert fitted.n_updates_ == partial.n_updates_ == 3 * 6


def test_fit_equals_kernel_loop(data):
    """fit is the rule + apply_update over shuffled minibatches, nothing else."""
    est = SoftHebb(5, temperature=0.5, n_epochs=2, batch_size=7, random_state=3).fit(data)
    rng = np.random.default_rng(3)
    w = rng.normal(scale=10 / np.sqrt(6), size=(5, 6))
    rule, update = SoftHebbParams(0.5, True), UpdateParams(0.05, True, 0.5)
    for _ in range(2):
        x = data[rng.permutation(len(data))]
        for b in range(0, len(x), 7):
            w = apply_update(w, soft_hebb_dw(x[b:b + 7], x[b:b + 7] @ w.T, w, rule), update)
    np.testing.assert_array_equal(est.components_, w)


def test_transform_activations(data):
    est = SoftHebb(4, n_epochs=1, random_state=0).fit(data)
    u = data @ est.components_.T
    np.testing.assert_array_equal(est.transform(data), triangle(u))
    np.testing.assert_array_equal(est.set_params(activation="linear").transform(data), u)
    np.testing.assert_allclose(est.set_params(activation="softmax").transform(data).sum(1), 1.0)
    assert list(est.get_feature_names_out()) == [f"softhebb{i}" for i in range(4)]


def test_digits_softhebb_beats_random_features():
    """Spec §7 CI assertion: K = 32, 5 epochs, seed 0, 60/40 stratified split of the
    standardised digits: SoftHebb − random ≥ 5 points and |mean ‖w‖ − 1| < 0.5 (measured
    prototype: 95.3 % vs 84.1 %, ‖w‖ 1.34; this implementation: 94.2 % vs 84.8 %, ‖w‖ 1.33)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(digits.data, digits.target, test_size=0.4,
                                              stratify=digits.target, random_state=0)
    scaler = StandardScaler().fit(x_tr)
    x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)

    def probe(features_tr, features_te):
        clf = LogisticRegression(max_iter=2000).fit(features_tr, y_tr)
        return clf.score(features_te, y_te)

    est = SoftHebb(32, n_epochs=5, random_state=0).fit(x_tr)
    soft = probe(est.transform(x_tr), est.transform(x_te))
    w_random = np.random.default_rng(0).normal(size=(32, 64))
    random = probe(triangle(x_tr @ w_random.T), triangle(x_te @ w_random.T))
    assert soft - random >= 0.05, (soft, random)
    assert abs(np.linalg.norm(est.components_, axis=1).mean() - 1) < 0.5


@pytest.mark.parametrize("params, match", [
    ({"n_components": 0}, "n_components"),
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"batch_size": 1.5}, "batch_size"),
    ({"learning_rate": np.nan}, "learning_rate"),
    ({"activation": "relu"}, "activation"),
])
def test_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        SoftHebb(**params).fit(data)


def test_bad_input(data):
    with pytest.raises(NotFittedError):
        SoftHebb().transform(data)
    est = SoftHebb(3, n_epochs=1).fit(data)
    with pytest.raises(ValueError, match="features"):
        est.transform(data[:, :4])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(data[:, :4])
    with pytest.raises(ValueError):
        SoftHebb().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        SoftHebb().fit(np.full((3, 3), np.inf))
