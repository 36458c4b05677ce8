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


def test_demo_quick_writes_its_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    code = main(["demo", "--quick", "--out", str(tmp_path / "demo")])
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert code == 0
    assert summary["spikes_ours"] > 0
    assert all(row["ok"] for row in summary["golden_cases"])
    if "comparison" in summary:
        assert summary["comparison"]["spikes_equal"]
        assert (tmp_path / "demo" / "raster.png").exists()
    for name in ("config.json", "versions.json"):
        assert (tmp_path / "demo" / name).exists()
