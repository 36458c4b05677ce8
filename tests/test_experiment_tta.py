"""experiments/tta_digits_c.py: the quick run works end to end and its protocol holds."""

import dataclasses
import json

import numpy as np
import pytest

from .conftest import load_experiment

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def experiment():
    return load_experiment("tta_digits_c")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    metrics = experiment.main(experiment.parse_args(["--quick", "--out", str(out)]))
    for name in ("config.json", "versions.json", "metrics.json", "table.md", "tta_digits_c.png"):
        assert (out / name).exists(), name
    stored = json.loads((out / "metrics.json").read_text())
    summary = stored["error_pct"]
    assert set(summary) == {"clean", "test/s5", "held_out/s5", "continual/s5"}
    for setting in ("test/s5", "continual/s5"):
        for method in experiment.METHODS:
            errors = summary[setting][method]["per_corruption"]
            assert set(errors) == {"gaussian_noise", "contrast", "motion_blur"}
            assert all(0.0 <= e["mean"] <= 100.0 for e in errors.values())
    # without adaptation the first corruption sees the same model in both protocols
    assert metrics["per_seed_error_pct"][0]["test/s5"]["source"] == \
        metrics["per_seed_error_pct"][0]["continual/s5"]["source"]
    # the trained source model is far better than chance (90 % error) on clean digits
    assert summary["clean"]["source"]["mean"] < 30.0


def test_batches_keep_at_least_two_samples(experiment):
    for n, b in ((719, 64), (129, 64), (128, 64), (5, 2)):
        slices = experiment.batch_slices(n, b)
        sizes = [s.stop - s.start for s in slices]
        assert sum(sizes) == n and min(sizes) >= 2 and max(sizes) <= b + 1


def test_all_severities_flag(experiment):
    config = experiment.parse_args(["--quick", "--all-severities", "--out", "x"])
    assert config.severities == (1, 2, 3, 4, 5)
    assert experiment.parse_args(["--out", "x"]).seeds == (0, 1, 2)


def test_adapters_do_not_touch_the_source_model(experiment):
    config = dataclasses.replace(experiment.quick_config("unused"), epochs=1)
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 1, 8, 8)), rng.integers(0, 10, 40)
    model = experiment.train_source(config, x, y, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for method in experiment.METHODS:
        experiment.stream_error(experiment.make_adapter(method, model, config), x, y, 16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
