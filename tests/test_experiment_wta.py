"""experiments/wta_digits.py: the quick run works end to end; the readout is Diehl & Cook's."""

import numpy as np
import pytest

from .conftest import assert_results_written, experiment_fixture

experiment = experiment_fixture("wta_digits")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = experiment.main(experiment.quick_config(str(tmp_path / "out")))
    stored = assert_results_written(tmp_path / "out", "wta_digits_weights.png")
    assert set(stored["summary"]) == {"stdp", "untrained"}
    for run in metrics["runs"]:
        assert 0.0 <= run["stdp_accuracy_frac"] <= 1.0 and run["stdp_mean_spikes"] > 0
    # the printed summary is a table: a header and one aligned row per arm
    lines = experiment.table(metrics).splitlines()
    assert lines[0].split()[:3] == ["arm", "test", "accuracy"]
    assert [line.split()[0] for line in lines[1:]] == ["stdp", "untrained"]
    assert (tmp_path / "out" / "table.txt").read_text() == experiment.table(metrics)


def test_readout_labels_neurons_by_mean_response(experiment):
    # Neuron 0 answers class 3, neuron 1 class 7: test images are voted accordingly.
    y_train = np.array([3, 3, 7, 7] + list(range(10)))
    counts_train = np.zeros((14, 2))
    counts_train[:2, 0] = 5.0
    counts_train[2:4, 1] = 5.0
    counts_test = np.array([[4.0, 0.0], [0.0, 2.0], [1.0, 3.0]])
    accuracy = experiment.label_and_test(counts_train, y_train, counts_test,
                                         np.array([3, 7, 3]))
    assert accuracy == pytest.approx(2 / 3)
