"""experiments/softhebb_digits.py: the quick run works end to end; arms do what they say."""

import numpy as np
import pytest

from .conftest import assert_results_written, experiment_fixture

experiment = experiment_fixture("softhebb_digits")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    metrics = experiment.cli(["--quick", "--out", str(out)])
    stored = assert_results_written(out, "table.md", "filters.png", "accuracy.png")
    assert set(stored["summary"]) == set(experiment.ARMS) | {"raw_pixels"}
    for arm, row in metrics["summary"].items():
        assert 0.0 <= row["accuracy_frac"]["mean"] <= 1.0, arm
    # 10 classes, 719 test images: even the untrained control is far above chance (10 %).
    assert metrics["summary"]["random"]["accuracy_frac"]["mean"] > 0.3


def test_training_is_seeded_and_random_arm_is_the_start(experiment):
    config = experiment.quick_config("unused")
    x = np.random.default_rng(0).normal(size=(40, 64))
    a = experiment.train("softhebb", config, x, np.random.default_rng(5))
    b = experiment.train("softhebb", config, x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    start = experiment.initial_weights("softhebb", config, 64, np.random.default_rng(5))
    np.testing.assert_array_equal(experiment.train("random", config, x,
                                                   np.random.default_rng(5)), start)
    assert not np.array_equal(a, start)          # learning changed the weights
