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
