"""experiments/gestures_rdl.py: the quick run works end to end for the three arms."""

import numpy as np
import pytest

from .conftest import assert_results_written, experiment_fixture

experiment = experiment_fixture("gestures_rdl")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = experiment.main(experiment.quick_config(str(tmp_path / "out")))
    stored = assert_results_written(tmp_path / "out", "gestures_rdl_raster.png",
                                    "gestures_rdl_delays.png", "gestures_rdl_weights.png",
                                    "gestures_rdl_confusion.png")
    assert set(stored["summary"]) == {"rdl", "none", "udl"}
    for arm, s in metrics["summary"].items():
        assert 0.0 <= s["accuracy_frac_mean"] <= 1.0, arm
        # quick config: 2 classes x 2 test samples, one seed
        assert np.asarray(s["confusion_sum"]).sum() == 4
    assert stored["readout"] == "assigned"     # the Config default, the same for every arm
    assert 0.0 <= stored["untrained_readout_accuracy_frac"]["mean"] <= 1.0


def test_confusion_counts_true_against_predicted(experiment):
    c = experiment.confusion([3, 3, 4], [3, 4, 4], (3, 4))
    assert c.tolist() == [[1, 1], [0, 1]]
