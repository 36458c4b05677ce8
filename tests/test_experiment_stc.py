"""experiments/stc_moving_digits.py: the quick run works end to end."""

import numpy as np
import pytest

from .conftest import assert_results_written, experiment_fixture

pytest.importorskip("torch")


experiment = experiment_fixture("stc_moving_digits")


def test_quick_run_writes_results(experiment, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    metrics = experiment.cli(["--quick", "--out", str(out)])
    stored = assert_results_written(out, "table.md", "predictions_stc_lif.png",
                                    "predictions_lif.png", "gradient_flow.png")
    assert set(stored["summary"]) == {"stc_lif", "lif"}
    for row in metrics["summary"].values():
        assert row["mse_frame_sum"]["mean"] >= 0 and -1 <= row["ssim"]["mean"] <= 1
    # Frame sums are per-pixel means times the 16*16 pixels of a frame.
    row = metrics["per_seed"][0]["lif"]
    assert row["mse_frame_sum"] == pytest.approx(256 * row["mse_pixel"], rel=1e-9)
    flow = metrics["gradient_flow"]
    assert len(flow["lif"]) == 12 and np.all(np.isfinite(flow["stc_lif"]))


def test_baseline_widths_match_parameter_budget(experiment):
    config = experiment.Config(cells=("stc_lif", "lif"), hidden=(32, 32), groups=8)
    sizes = experiment.widths(config)
    stc = experiment.n_parameters(experiment.build(config, "stc_lif", sizes["stc_lif"]))
    lif = experiment.n_parameters(experiment.build(config, "lif", sizes["lif"]))
    assert sizes["lif"][0] > 32 and abs(lif - stc) / stc < 0.25


def test_default_out_is_a_fresh_timestamped_folder(experiment, tmp_path, monkeypatch):
    # the default folder was fixed (results/stc_moving_digits): a second run raised
    # FileExistsError; now each run gets results/stc_moving_digits-<timestamp>-quick[-k]
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        experiment.cli(["--quick", "--cells", "lif"])
    folders = sorted((tmp_path / "results").iterdir())
    assert len(folders) == 2
    for folder in folders:
        assert folder.name.startswith("stc_moving_digits-") and "-quick" in folder.name
        assert_results_written(folder, "table.md")


def test_quick_honours_explicit_cells_and_iterations(experiment, tmp_path):
    import json

    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    metrics = experiment.cli(["--quick", "--cells", "plif", "--iterations", "3", "--out",
                              str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["cells"] == ["plif"] and config["iterations"] == 3
    assert config["size"] == 16                            # the rest is still --quick's
    assert set(metrics["summary"]) == {"plif"}
    with pytest.raises(SystemExit):
        experiment.cli(["--quick", "--iterations", "0", "--out", str(tmp_path / "o2")])
