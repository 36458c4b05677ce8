"""experiments/dpcnn_digits.py: the quick run works end to end and its counts are right."""

import pytest

from .conftest import assert_results_written, experiment_fixture

pytest.importorskip("torch")

experiment = experiment_fixture("dpcnn_digits")


def test_quick_run_writes_results(experiment, tmp_path):
    metrics = experiment.main(experiment.quick_config(str(tmp_path / "out")))
    stored = assert_results_written(tmp_path / "out", "dpcnn_digits.png")
    assert set(stored["summary"]) == set(experiment.ARMS)
    for row in metrics["runs"]:
        assert 0.0 <= row["test_accuracy_frac"] <= 1.0 and row["train_time_s"] > 0


def test_counts(experiment):
    """Widths (8, 16) on 16×16 input: neurons 8·16² + 16·8² = 3,072 (base), twice that wide;
    the inter arm adds exactly the C²k² linking weights per layer (8²·9 + 16²·9 = 2,880)
    over the intra arm's Ck² (8·9 + 16·9 = 216)."""
    config = experiment.Config()
    rows = {arm: experiment.counts(experiment.SpikingVGG(arm, config, 16))
            for arm in experiment.ARMS}
    assert rows["lif"]["neurons"] == 3072 == rows["pcnn_inter"]["neurons"]
    assert rows["lif_wide"]["neurons"] == 2 * 3072
    assert rows["pcnn_intra"]["synapses"] - rows["lif"]["synapses"] == 216
    assert rows["pcnn_inter"]["synapses"] - rows["lif"]["synapses"] == 2880
    # Conv fan-in: 8·16²·9 + 16·8²·(8·9), readout 10·(16·4²) counted once per post-unit.
    assert rows["lif"]["connections"] == 8 * 256 * 9 + 16 * 64 * 72 + 10 * 256


def test_lif_and_pcnn_blocks_emit_binary_spikes(experiment):
    import torch

    config = experiment.Config(time_steps=3)
    x = torch.rand(3, 2, 1, 16, 16)
    for arm in ("lif", "pcnn_inter"):
        out, _ = experiment._block(arm, 1, 4, config)(x)     # (spikes, final state)
        assert out.shape == (3, 2, 4, 16, 16)
        assert set(out.unique().tolist()) <= {0.0, 1.0}
