"""``bioplastic bench --peers`` plumbing (speed itself is never asserted: issue 13)."""

from __future__ import annotations

import pytest

from bioplastic._bench import all_benchmarks, peers


def test_missing_peer_is_a_reason_not_an_error():
    reason = peers.import_peer("bioplastic_no_such_peer_module")
    assert isinstance(reason, str) and "bioplastic_no_such_peer_module" in reason


def test_plain_bench_does_not_run_the_peers():
    assert "peers" not in {b.name for b in all_benchmarks()}


def test_interleaved_medians_use_own_timing_when_given():
    calls = []
    med = peers.interleaved_medians({"a": lambda: calls.append("a") or 2.0,
                                     "b": lambda: calls.append("b")}, repeats=3)
    assert med["a"] == 2.0 and med["b"] >= 0.0
    assert calls == ["a", "b"] * 4   # one warm-up round, then 3 rounds, interleaved


def test_table_skips_missing_peers_on_a_tiny_torch_workload(monkeypatch):
    pytest.importorskip("torch")
    real = peers.import_peer

    def only_torch(name):   # every peer library "missing": bioplastic alone must still run
        return real(name) if name == "torch" else f"{name} not installed"

    monkeypatch.setattr(peers, "import_peer", only_torch)
    rows = peers.torch_rows(quick=True, repeats=1)
    skipped = [r for r in rows if "skipped" in r]
    # fwd+bwd: snntorch, spikingjelly, norse; fwd: the same three plus bindsnet.
    assert len(skipped) == 7 and len(skipped) == len(rows)
    table = peers.ratio_table(rows + [{"name": "lif_network_vs_brian2",
                                       "skipped": "brian2 not installed"}])
    assert "skipped lif_network_vs_brian2: brian2 not installed" in table
    assert "skipped lif_layer_fwd_vs_bindsnet: bindsnet.network.nodes not installed" in table


def test_table_rows_and_ratio():
    rows = [{"name": "lif_layer_fwd_vs_snntorch", "workload": "w", "bioplastic_s": 1.0,
             "peer_s": 2.0, "ratio": 0.5},
            {"name": "lif_network_vs_brian2_cpp_standalone", "workload": "net", "neurons": 10,
             "bioplastic_s": 3.0, "peer_s": 1.5, "ratio": 2.0, "identical": True,
             "peer_build_s": 12.0}]
    table = peers.ratio_table(rows)
    assert "| w |  | snntorch | 1 | 2 | 0.5 |" in table
    assert "| net | 10 | brian2_cpp_standalone | 3 | 1.5 | 2 | identical spikes; build 12.0 s" \
        in table
    assert "- snntorch: Leaky" in table and "- brian2:" in table


@pytest.mark.brian2
def test_tiny_network_against_brian2_numpy_has_identical_spikes():
    pytest.importorskip("brian2")
    params, drive, conn, v0 = peers.network_case(50, 30, heterogeneous=False)
    fn, result = peers._brian_runtime("numpy", params, drive, conn, v0)
    assert fn() >= 0.0
    from bioplastic.neurons.lif import lif_advance, lif_init, lif_prepare
    from bioplastic.simulate import simulate

    trace = simulate(lif_advance, drive, lif_init(50, params, conn, v0_mv=v0),
                     lif_prepare(params, 50), conn)
    steps, index = trace.spike_pairs()
    assert steps.size > 0
    assert (steps.tolist(), index.tolist()) == tuple(a.tolist() for a in result["spikes"])


def test_scaling_rows_report_rates_bandwidth_and_the_scalar_specialisation():
    rows = peers.scaling_rows(quick=True, repeats=1)
    # quick: 500 and 2,000 neurons, heterogeneous and homogeneous parameters each
    assert [(r["neurons"], r["name"]) for r in rows] == [
        (n, f"lif_scaling_{kind}") for n in (500, 2000)
        for kind in ("heterogeneous", "homogeneous")]
    for row in rows:
        assert row["neuron_steps_per_s"] > 0 and row["memory_bandwidth_gb_per_s"] > 0
        assert row["bytes_per_neuron_step"] == peers.bytes_per_neuron_step(
            row["name"].endswith("homogeneous"))
    homogeneous = [r for r in rows if r["name"].endswith("homogeneous")]
    assert all(r["identical"] and r["per_neuron_arrays_s"] > 0 for r in homogeneous)
    table = peers.scaling_table(rows)
    assert "| homogeneous | 2000 | 100 |" in table and "identical spikes" in table
