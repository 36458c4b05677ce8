"""``bioplastic bench --peers`` plumbing (speed itself is never asserted: issue 13)."""

from __future__ import annotations

import numpy as np
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


def test_delayed_network_case_draws_whole_step_delays_in_range():
    params, drive, conn, v0 = peers.network_case(200, 5, heterogeneous=False,
                                                 delays=peers.DELAYS)
    lo, hi = peers.DELAYS
    assert conn.delay_steps.min() >= lo and conn.delay_steps.max() <= hi
    assert conn.max_delay == conn.delay_steps.max()
    # the delays have their own random stream: the rest of the network is unchanged
    _, drive0, conn0, v00 = peers.network_case(200, 5, heterogeneous=False)
    assert (drive0 == drive).all() and (v00 == v0).all()

    def synapses(c):
        pre, post = c.pre(), c.post
        order = np.lexsort((post, pre))
        return pre[order].tolist(), post[order].tolist(), c.weight[order].tolist()
    assert synapses(conn0) == synapses(conn)
    assert (conn0.delay_steps == 0).all()


@pytest.mark.brian2
def test_tiny_delayed_network_against_brian2_numpy_row_has_identical_spikes():
    pytest.importorskip("brian2")
    rows = peers.network_rows(True, 1, sizes=(60,), targets=("numpy",),
                              delays=(peers.DELAYS,))
    # one size x heterogeneous/homogeneous x one delay setting x one target
    assert [r["name"] for r in rows] == ["lif_network_delays_vs_brian2_numpy"] * 2
    for row in rows:
        assert row["identical"] and row["spikes"] > 0
        assert row["max_delay_steps"] <= peers.DELAYS[1] and row["load_average"] >= 0.0
        assert "delays 1-20 steps" in row["workload"]


def test_diehl_cook_without_bindsnet_is_a_skipped_row(monkeypatch):
    monkeypatch.setattr(peers, "import_bindsnet", lambda module: f"{module} not installed")
    rows = peers.diehl_cook_rows(quick=True, repeats=1)
    assert rows == [{"name": "diehl_cook_vs_bindsnet",
                     "skipped": "bindsnet.models not installed"}]
    assert "skipped diehl_cook_vs_bindsnet: bindsnet.models not installed" in \
        peers.ratio_table(rows)


def test_tiny_diehl_cook_against_bindsnet_when_installed():
    pytest.importorskip("torch")
    if isinstance(peers.import_bindsnet("bindsnet.models"), str):
        pytest.skip("BindsNET not installed (pip install --no-deps bindsnet==0.3.4)")
    rows = peers.diehl_cook_rows(quick=True, repeats=1)
    assert [r["name"] for r in rows] == ["diehl_cook_vs_bindsnet"]
    row = rows[0]
    assert "skipped" not in row, row.get("skipped")
    cfg = peers.DIEHL_COOK_QUICK
    assert row["neurons"] == 2 * cfg["n"] and row["input_spikes"] > 0
    assert row["steps"] == cfg["presentations"] * round(cfg["present_ms"] / cfg["dt_ms"])
    assert row["bioplastic_s"] > 0 and row["peer_s"] > 0
    table = peers.ratio_table(rows)
    assert "| bindsnet |" in table and "- bindsnet_diehl_cook: DiehlAndCook2015" in table


def test_cpp_standalone_ratio_is_taken_on_the_binarys_clock():
    # our wall time 2 s, CPU time 1 s; the binary reported 1 s of CPU time: the ratio compares
    # CPU with CPU (1.0), the wall ratio (2.0) is kept beside it; other targets stay on wall time
    row = peers._ratio_fields("cpp_standalone", 2.0, 1.0, 1.0)
    assert row["ratio"] == 1.0 and row["ratio_wall"] == 2.0 and row["bioplastic_cpu_s"] == 1.0
    assert peers._ratio_fields("cython", 2.0, 1.0, 1.0) == {"ratio": 2.0}
    table = peers.ratio_table([{"name": "lif_network_vs_brian2_cpp_standalone",
                                "workload": "w", "neurons": 10, "bioplastic_s": 2.0,
                                "peer_s": 1.0, **row}])
    assert "| w | 10 | brian2_cpp_standalone | 1 | 1 | 1 |" in table
    assert "CPU time both sides (wall ratio 2)" in table


@pytest.mark.brian2
def test_brian2_standalone_times_its_loop_with_std_clock():
    # the premise of the CPU-time ratio above: without OpenMP the generated network.cpp takes
    # the main loop's time from std::clock() (process CPU time), not from a wall clock
    brian2 = pytest.importorskip("brian2")
    from pathlib import Path
    template = (Path(brian2.__file__).parent / "devices" / "cpp_standalone" / "templates"
                / "network.cpp").read_text()
    rest = template.split("elapsed_realtime = omp_get_wtime() - start;")[1]
    no_openmp = rest.split("{% else %}")[1].split("{% endif %}")[0]
    assert "current = std::clock();" in no_openmp
    assert "elapsed_realtime = (double)(current - start)" in no_openmp


@pytest.mark.brian2
def test_rsnn_bench_ratio_is_on_cpu_time_with_the_wall_ratio_beside_it():
    # the runtime targets run in this process: their ratio compares process CPU times (a wait
    # for a core is not the simulator's time), and the wall-clock ratio is reported beside it
    pytest.importorskip("brian2")
    from bioplastic._bench import rsnn

    row = next(r for r in rsnn.run(quick=True) if r["name"] == "rsnn_vs_brian2_numpy")
    assert row["identical_spikes"]
    assert row["ratio"] == row["brian2_cpu_s"] / row["numba_cpu_s"]
    assert row["ratio_wall"] == row["brian2_s"] / row["numba_s"]
    assert 0 < row["numba_cpu_s"] and 0 < row["brian2_cpu_s"]
