"""Readouts of the delay-learning RSNN: fixed class groups and Diehl & Cook's label assignment
(bioplastic.neurons.rsnn_train.assign_classes / class_scores / running_assignment and
RSNNClassifier(readout=...))."""

import numpy as np
import pytest

from bioplastic.neurons.rsnn_train import (
    assign_classes,
    class_groups,
    class_scores,
    decide,
    running_assignment,
)
from bioplastic.sklearn import RSNNClassifier

# rows: stimuli (labels below), columns: 4 neurons
_LABELS = np.array([0, 0, 0, 1, 2])
_RESPONSES = np.array([[2, 0, 1, 0],
                       [2, 0, 0, 0],
                       [2, 0, 2, 0],
                       [3, 0, 0, 0],
                       [0, 0, 1, 5]])


def test_assignment_takes_the_class_of_the_highest_mean_response():
    responses, labels = _RESPONSES.copy(), _LABELS.copy()
    got = assign_classes(responses, labels, 3)
    # neuron 0: means 2, 3, 0 -> class 1 (its *summed* response is highest for class 0: 6 > 3);
    # neuron 1 never spikes -> unassigned; neuron 2: means 1, 0, 1 -> tie, the lower class 0;
    # neuron 3 responds to class 2 only
    assert got.tolist() == [1, -1, 0, 2]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(responses, _RESPONSES)        # inputs not modified
    np.testing.assert_array_equal(labels, _LABELS)
    order = np.array([4, 2, 0, 3, 1])                           # stimulus order is irrelevant
    assert assign_classes(_RESPONSES[order], _LABELS[order], 3).tolist() == got.tolist()


@pytest.mark.parametrize("responses, labels, n_classes, error, match", [
    (_RESPONSES[:3], _LABELS[:3], 3, ValueError, r"class index\(es\) \[1, 2\] never occur"),
    (_RESPONSES, np.array([0, 0, 0, 1, 3]), 3, ValueError, r"labels must be class indices"),
    (_RESPONSES, np.array([0, 0, 0, -1, 2]), 3, ValueError, r"labels must be class indices"),
    (_RESPONSES, _LABELS.astype(float), 3, ValueError, "labels must be ints"),
    (_RESPONSES, _LABELS[:4], 3, ValueError, r"labels must be ints of shape \(5,\)"),
    (-_RESPONSES, _LABELS, 3, ValueError, "finite and >= 0"),
    (np.where(_RESPONSES > 2, np.nan, _RESPONSES), _LABELS, 3, ValueError, "finite"),
    (_RESPONSES[0], _LABELS[:1], 3, ValueError, "responses must be a real"),
    (_RESPONSES.astype(str), _LABELS, 3, ValueError, "responses must be a real"),
    (_RESPONSES, _LABELS, 0, ValueError, "n_classes"),
    (_RESPONSES, _LABELS, 3.0, TypeError, "n_classes"),
])
def test_assignment_refuses_bad_input(responses, labels, n_classes, error, match):
    with pytest.raises(error, match=match):
        assign_classes(responses, labels, n_classes)


def test_class_scores_sum_or_mean_and_the_decision_they_give():
    counts = np.array([4, 2, 6, 0, 9])
    groups = np.array([0, 0, 1, -1, -1])     # class 2 has no neuron; neurons 3, 4 unassigned
    assert class_scores(counts, groups, 3).tolist() == [6.0, 6.0, 0.0]
    assert class_scores(counts, groups, 3, statistic="mean").tolist() == [3.0, 6.0, 0.0]
    batch = class_scores(np.stack([counts, 2 * counts]), groups, 3, statistic="mean")
    assert batch.tolist() == [[3.0, 6.0, 0.0], [6.0, 12.0, 0.0]]
    spikes = np.zeros((10, 5), bool)
    for neuron, c in enumerate(counts):
        spikes[:c, neuron] = True
    assert decide(spikes, groups, 3) == -1                       # sums tie: undecided
    assert decide(spikes, groups, 3, statistic="mean") == 1
    with pytest.raises(ValueError, match="statistic"):
        class_scores(counts, groups, 3, statistic="median")
    with pytest.raises(ValueError, match="groups must tag"):
        class_scores(counts, np.full(5, -1), 3)


def test_running_assignment_keeps_the_groups_until_it_can_assign():
    previous = class_groups(3, 2)[:4]                            # [0, 0, 1, 1]
    # class 1 has not occurred yet: keep what is in force (a copy)
    kept = running_assignment(_RESPONSES[:3], _LABELS[:3], 3, previous)
    assert kept.tolist() == previous.tolist() and kept is not previous
    # every class occurred but no neuron spiked: keep it too
    silent = running_assignment(np.zeros((5, 4)), _LABELS, 3, previous)
    assert silent.tolist() == previous.tolist()
    assert running_assignment(_RESPONSES, _LABELS, 3, previous).tolist() == [1, -1, 0, 2]
    with pytest.raises(ValueError, match="groups"):
        running_assignment(_RESPONSES, _LABELS, 3, previous[:3])


# -- the classifier -----------------------------------------------------------------------

_T, _BLOCK, _N_CLASSES = 30, 10, 4


def _separable(n_per_class: int, seed: int):
    """Class ``c`` drives input block ``c`` (10 of 40 units) at 0.3 spikes per step and the
    rest at 0.02: separable by *which* inputs spike, with no class in the network's groups."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(_N_CLASSES):
        for _ in range(n_per_class):
            p = np.full(_N_CLASSES * _BLOCK, 0.02)
            p[c * _BLOCK:(c + 1) * _BLOCK] = 0.3
            X.append(rng.random((_T, p.size)) < p)
            y.append(c)
    return X, np.array(y)


def _clf(readout: str = "assigned", seed: int = 0, **kw) -> RSNNClassifier:
    base = {"delay_learning": "none", "n_per_class": 4, "n_epochs": 1, "max_delay_ms": 5.0,
            "readout": readout, "random_state": seed}
    return RSNNClassifier(**{**base, **kw})


def test_assigned_readout_reads_what_fixed_groups_cannot():
    X, y = _separable(4, seed=1)
    X_test, y_test = _separable(4, seed=2)
    accuracy = {}
    for readout in ("groups", "assigned"):
        accuracy[readout] = [float(np.mean(_clf(readout, seed, n_per_class=8).fit(X, y)
                                           .predict(X_test) == y_test)) for seed in range(3)]
    chance = 1.0 / _N_CLASSES
    # measured (seeds 0-2): assigned 1.0, 0.94, 1.0; fixed groups 0.19, 0.44, 0.25 (their
    # classes do not follow the input blocks). The "none" arm's training does not use the
    # decision, so both readouts read the same trained network.
    assert min(accuracy["assigned"]) >= 0.9
    assert np.mean(accuracy["groups"]) <= chance + 0.25
    assert min(np.subtract(accuracy["assigned"], accuracy["groups"])) >= 0.4


def test_reward_follows_the_running_assignment():
    """With the assigned readout the training decisions (and so the reward) improve once the
    groups are re-assigned; with fixed groups they stay near chance (-0.5 mean reward)."""
    X, y = _separable(6, seed=3)
    kw = {"n_epochs": 2}
    fixed = RSNNClassifier(delay_learning="rdl", n_per_class=4, max_delay_ms=5.0,
                           random_state=0, **kw).fit(X, y)
    assigned = RSNNClassifier(delay_learning="rdl", n_per_class=4, max_delay_ms=5.0,
                              readout="assigned", random_state=0, **kw).fit(X, y)
    second = slice(len(y), None)                                  # the second epoch
    # measured: second-epoch mean reward +0.75 assigned, -0.83 fixed groups (first epoch:
    # +0.33 and -1.0: the assigned groups start as the fixed maps)
    assert assigned.rewards_[second].mean() >= 0.5
    assert fixed.rewards_[second].mean() <= 0.0
    # reward +1 exactly when the decision was right; undecided (-1) is wrong
    correct = assigned.rewards_ > 0
    assert np.all(assigned.decisions_[correct] >= 0)


def test_final_assignment_is_the_assignment_of_the_trained_networks_counts():
    X, y = _separable(3, seed=4)
    clf = _clf("assigned").fit(X, y)
    np.testing.assert_array_equal(clf.assignment_, assign_classes(clf.spike_counts(X), y, 4))
    np.testing.assert_array_equal(clf.groups_, class_groups(4, 4))
    running = _clf("assigned", final_assignment="running", assignment_window=8).fit(X, y)
    assert running.assignment_.shape == (16,)


def test_groups_readout_scores_the_fixed_maps():
    X, y = _separable(2, seed=5)
    clf = _clf("groups").fit(X, y)
    np.testing.assert_array_equal(clf.assignment_, clf.groups_)
    counts = clf.spike_counts(X)
    # neuron k belongs to class k // n_per_class: the sum over each block of 4
    np.testing.assert_array_equal(clf.decision_function(X),
                                  counts.reshape(len(X), 4, 4).sum(axis=2))
    mean = _clf("groups", readout_statistic="mean").fit(X, y)
    np.testing.assert_allclose(mean.decision_function(X), clf.decision_function(X) / 4)
    np.testing.assert_array_equal(mean.predict(X), clf.predict(X))


def test_fit_is_deterministic_per_seed():
    X, y = _separable(3, seed=6)
    a, b = (_clf("assigned", delay_learning="rdl").fit(X, y) for _ in range(2))
    for name in ("assignment_", "decisions_", "rewards_", "delay_history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    other = _clf("assigned", seed=1, delay_learning="rdl").fit(X, y)
    assert not np.array_equal(other.delay_history_, a.delay_history_)


@pytest.mark.parametrize("kw, error, match", [
    ({"readout": "best"}, ValueError, "readout must be one of"),
    ({"readout_statistic": "median"}, ValueError, "readout_statistic"),
    ({"reassign_every": -1}, ValueError, "reassign_every"),
    ({"reassign_every": 1.5}, TypeError, "reassign_every"),
    ({"assignment_window": 0}, ValueError, "assignment_window"),
    ({"final_assignment": "test"}, ValueError, "final_assignment"),
    ({"n_epochs": -1}, ValueError, "n_epochs"),
])
def test_bad_readout_parameters_are_refused(kw, error, match):
    X, y = _separable(1, seed=7)
    with pytest.raises(error, match=match):
        _clf(**{"readout": "assigned", **kw}).fit(X, y)
