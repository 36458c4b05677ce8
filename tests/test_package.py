"""Packaging, import isolation, CLI, benchmarks and demo."""

import json
import subprocess
import sys

import pytest

import bioplastic
from bioplastic._bench import all_benchmarks
from bioplastic.cli import main


def test_import_leaves_heavy_dependencies_unimported():
    code = ("import sys, time; t=time.perf_counter(); import bioplastic; "
            "print(time.perf_counter()-t); "
            "print([m for m in ('torch','brian2','tonic','matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, loaded = out.stdout.strip().splitlines()
    assert loaded == "[]"
    assert float(seconds) < 10.0  # generous: a cold numba import alone takes ~1 s


def test_public_api_is_explicit():
    for name in bioplastic.__all__:
        assert hasattr(bioplastic, name), name


def test_validate_json_reports_lif(capsys):
    code = main(["validate", "--json", "--case", "lif_recurrent"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert rows[0]["case"] == "lif_recurrent" and rows[0]["ok"] and rows[0]["spikes_equal"]


@pytest.mark.slow
@pytest.mark.parametrize("bench", all_benchmarks(), ids=lambda b: b.name)
def test_quick_benchmarks_report_targets(bench):
    for module in bench.needs:
        pytest.importorskip(module)
    rows = bench.run(True)
    assert rows
    for row in rows:
        assert {"name", "target", "ratio", "met"} <= set(row), row
        assert row["ratio"] > 0


def test_demo_quick_prints_a_table_of_three_models_beside_their_twins(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["demo", "--quick", "--out", str(tmp_path / "demo")])
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert code == 0
    # a neuron model, a rich neuron model and a learning rule, each with its twin
    assert [r["model"] for r in summary["twins"]] == ["lif", "pcnn", "rate_rules"]
    assert summary["twins"][0]["spikes_ours"] > 0 and summary["twins"][1]["spikes_ours"] > 0
    assert all(row["ok"] or row["not_checkable"] for row in summary["golden_cases"])
    lines = printed.splitlines()
    header = next(line for line in lines if line.startswith("case"))
    assert "verdict" in header and "× faster" in header
    for row in summary["twins"]:
        line = next(line for line in lines if line.startswith(row["case"]))
        if "identical" in row:
            assert row["identical"] and line.rstrip().endswith("identical")
            assert (tmp_path / "demo" / f"{row['case']}.png").exists()
    assert "golden twin traces:" in printed
    for name in ("config.json", "versions.json", "summary.txt"):
        assert (tmp_path / "demo" / name).exists()


def test_demo_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    # the CLI refuses in one line with exit status 2, no traceback (tests/test_bad_input.py)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--quick", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "already holds files" in capsys.readouterr().err


def test_versions_record_the_cpu_the_kernels_dispatch_to():
    # float32 torch results depend on the instruction set (docs/results.md), so a results
    # folder must say which one ran; torch is reported only when the run imported it
    code = ("import sys, json; from bioplastic.results import package_versions; "
            "v = package_versions(); print(json.dumps(v['cpu'])); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cpu_line, torch_loaded = out.stdout.strip().splitlines()
    cpu = json.loads(cpu_line)
    from llvmlite import binding as llvm

    assert cpu["llvm_host_cpu"] == llvm.get_host_cpu_name()
    assert "torch_cpu_capability" not in cpu and torch_loaded == "False"
    torch = pytest.importorskip("torch")
    from bioplastic.results import package_versions

    assert package_versions()["cpu"]["torch_cpu_capability"] == \
        torch.backends.cpu.get_cpu_capability()


def test_cli_prints_its_version(capsys):
    # Before: "the following arguments are required: command" (exit 2) for --version.
    from bioplastic import __version__
    from bioplastic.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"bioplastic {__version__}"


def test_python_dash_m_bioplastic_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "bioplastic", "warmup", "--only", "nope"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "unknown" in done.stderr, done.stderr
