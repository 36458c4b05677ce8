"""experiments/tta_digits_c.py: the quick run works end to end and its protocol holds."""

import dataclasses

import numpy as np
import pytest

from .conftest import assert_results_written, experiment_fixture

torch = pytest.importorskip("torch")


experiment = experiment_fixture("tta_digits_c")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    metrics = experiment.main(experiment.parse_args(["--quick", "--out", str(out)]))
    stored = assert_results_written(out, "table.md", "tta_digits_c.png", "tta_continual.png")
    summary = stored["error_pct"]
    assert set(summary) == {"clean", "test/s5", "held_out/s5", "continual/s5"}
    quick = experiment.quick_config("unused")
    for setting in ("test/s5", "continual/s5"):
        assert set(summary[setting]) == set(experiment.METHODS + quick.ablations)
        for method in summary[setting]:
            errors = summary[setting][method]["per_corruption"]
            assert set(errors) == {"gaussian_noise", "contrast"}
            assert all(0.0 <= e["mean"] <= 100.0 for e in errors.values())
    # the held-out shifts are run by the methods only, never by the ablations
    assert set(summary["held_out/s5"]) == set(experiment.METHODS)
    # the continual curve has one error per batch of the whole stream (12 batches of 719)
    curve = stored["per_seed_error_pct"][0]["curve"]["tent"]
    assert len(curve) == 2 * len(experiment.batch_slices(719, 64))
    # without adaptation the first corruption sees the same model in both protocols
    assert metrics["per_seed_error_pct"][0]["test/s5"]["source"] == \
        metrics["per_seed_error_pct"][0]["continual/s5"]["source"]
    # CoTTA's threshold is recorded per seed (the tuned default, docs/tta.md)
    assert stored["cotta_ap"] == [experiment.Config.cotta_ap]
    # the trained source model is far better than chance (90 % error) on clean digits
    assert summary["clean"]["source"]["mean"] < 30.0


def test_batches_keep_at_least_two_samples(experiment):
    for n, b in ((719, 64), (129, 64), (128, 64), (5, 2)):
        slices = experiment.batch_slices(n, b)
        sizes = [s.stop - s.start for s in slices]
        assert sum(sizes) == n and min(sizes) >= 2 and max(sizes) <= b + 1


def test_tune_runs_on_held_out_shifts_only(experiment, tmp_path):
    config = experiment.parse_args(["--quick", "--tune", "--out", str(tmp_path / "t")])
    assert not set(config.held_out) & set(experiment.DIGITS_CORRUPTIONS)
    config = dataclasses.replace(config, epochs=1)
    table = experiment.main(config, tuning=True)
    assert set(table) == {"tent", "mod_only"} | {experiment._label(o)
                                                 for o in experiment.TUNE_GRID}
    assert (tmp_path / "t" / "tuning.md").exists()


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
    fisher_x = torch.tensor(x[:16], dtype=torch.float32)
    for method in experiment.METHODS + experiment.ABLATIONS:
        adapter = experiment.make_adapter(method, model, config, fisher_x)
        experiment.stream_error(adapter, x, y, 16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_tune_cotta_runs_on_held_out_shifts_only(experiment, tmp_path, monkeypatch):
    # two grid entries keep it short; the authors' rule is resolved on the training images
    monkeypatch.setattr(experiment, "COTTA_TUNE_GRID", ({"ap": 1.0}, {"ap": "rule"}))
    config = experiment.parse_args(["--quick", "--tune-cotta", "--out", str(tmp_path / "c")])
    assert not set(config.held_out) & set(experiment.DIGITS_CORRUPTIONS)
    config = dataclasses.replace(config, epochs=1)
    result = experiment.main(config, tuning="cotta")
    table = result["tuning"]
    assert set(table) == {"tent", "cotta ap=1.0", "cotta ap=rule"}
    assert table["cotta ap=1.0"]["augmented_frac"] == 1.0   # confidence < 1 always
    assert 0.0 <= table["cotta ap=rule"]["ap_per_seed"][0] <= 1.0
    assert result["chosen"] in table and result["chosen"] != "tent"
    assert (tmp_path / "c" / "tuning.md").exists()


def test_tune_baselines_tries_each_learning_rate_on_held_out_shifts_only(experiment, tmp_path,
                                                                          monkeypatch):
    # two learning rates 5,000x apart, so that the rate demonstrably reaches the adapters
    monkeypatch.setattr(experiment, "BASELINE_TUNE_GRID", {"eata": (1e-5, 5e-2),
                                                           "sar": (1e-5, 5e-2)})
    config = experiment.parse_args(["--quick", "--tune-baselines", "--out",
                                    str(tmp_path / "b")])
    assert not set(config.held_out) & set(experiment.DIGITS_CORRUPTIONS)
    # the quick config's 3 epochs: after 1 the net is too unsure for EATA to select a sample
    result = experiment.main(config, tuning="baselines")
    table = result["tuning"]
    assert set(table) == {"tent", "eata lr=1e-05", "eata lr=0.05", "sar lr=1e-05",
                          "sar lr=0.05"}
    for method in ("eata", "sar"):
        assert table[f"{method} lr=1e-05"] != table[f"{method} lr=0.05"]
        assert result["chosen_lr"][method] in (1e-5, 5e-2)
        best = min(table[f"{method} lr={lr:g}"]["score"] for lr in (1e-5, 5e-2))
        chosen = table[f"{method} lr={result['chosen_lr'][method]:g}"]["score"]
        assert chosen <= best + experiment.BASELINE_TIE_POINTS
    assert "(chosen)" in (tmp_path / "b" / "tuning.md").read_text()


def test_baseline_learning_rates_default_to_the_tuned_ones_and_take_the_authors(experiment):
    # docs/tta.md: --tune-baselines chose 1e-2 (EATA) and 2.5e-3 (SAR); the authors' 2.5e-4
    config = experiment.parse_args([])
    assert (config.eata_lr, config.sar_lr) == (1e-2, 2.5e-3)
    config = experiment.parse_args(["--eata-lr", "2.5e-4", "--sar-lr", "2.5e-4"])
    assert (config.eata_lr, config.sar_lr) == (2.5e-4, 2.5e-4)
    with pytest.raises(SystemExit):
        experiment.parse_args(["--sar-lr", "0"])
