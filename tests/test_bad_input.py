"""Bad input, one class of failure at a time: parameters that overflow or make no physical
sense, results that overflow to inf/NaN, and CLI mistakes. Each test failed on the code before
the fix (a silently accepted value, a NaN result, a traceback or a silent exit 0).

The generated (hypothesis) counterpart is ``tests/test_properties.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.cli import main as cli_main
from bioplastic.neurons import input_connectivity, pcnn_init, pcnn_prepare, train_wta, wta_prepare
from bioplastic.rules import (
    DivergenceError,
    KrotovParams,
    UpdateParams,
    apply_update,
    hebb_dw,
    instar_dw,
    krotov_current,
    krotov_hopfield_dw,
    oja_dw,
    row_norms,
    sanger_dw,
    soft_hebb_bias_db,
    soft_hebb_conv_dw,
    soft_hebb_dw,
    triangle,
)

# ------------------------------------------------------------------ class 3: parameter sanity


@pytest.mark.parametrize("t_ref_ms", [1e20, 1e12])
def test_lif_huge_refractory_period_is_refused(t_ref_ms):
    # 1e20 ms / 0.1 ms = 1e21 steps wrapped int64 to -2**63 (never refractory); 1e12 ms = 1e13
    # steps exceeds the never-spiked marker 2**40, so a neuron that never spiked was refractory
    # forever. Both were accepted.
    with pytest.raises(ValueError, match="t_ref_ms"):
        bp.lif_prepare(bp.LIFParams(t_ref_ms=t_ref_ms), 4)


def test_lif_negative_threshold_increment_is_refused():
    with pytest.raises(ValueError, match="theta_plus_mv"):
        bp.lif_prepare(bp.LIFParams(theta_plus_mv=-0.5), 4)


def test_lif_reset_above_threshold_is_refused():
    with pytest.raises(ValueError, match="v_reset_mv"):
        bp.lif_prepare(bp.LIFParams(v_reset_mv=-40.0, v_th_mv=-50.0), 4)
    # per-neuron: one bad neuron is enough
    with pytest.raises(ValueError, match="v_reset_mv"):
        bp.lif_prepare(bp.LIFParams(v_reset_mv=np.array([-65.0, -45.0])), 2)


def test_wta_physical_sanity():
    with pytest.raises(ValueError, match="theta_plus_mv"):
        wta_prepare(bp.WTAParams(theta_plus_mv=-0.05))
    with pytest.raises(ValueError, match="v_reset_inh_mv"):
        wta_prepare(bp.WTAParams(v_reset_inh_mv=-30.0))     # v_th_inh_mv is -40
    with pytest.raises(ValueError, match="t_ref_exc_ms"):
        wta_prepare(bp.WTAParams(t_ref_exc_ms=1e20))


def test_string_delay_is_refused():
    w = np.eye(3)
    with pytest.raises(TypeError, match="delay_ms"):
        bp.connectivity(w, delay_ms="0.1")
    with pytest.raises(TypeError, match="delay_ms"):
        bp.run_lif(np.zeros((2, 3)), weight=w, delay_ms="0.1")
    with pytest.raises(TypeError, match="delay_ms"):
        input_connectivity(np.ones((2, 3)), delay_ms="0.5")


@pytest.mark.parametrize("name", ["max_repeats", "min_spikes"])
def test_bool_is_not_a_count(name):
    images, w0 = np.zeros((1, 4)), np.full((2, 4), 0.1)
    with pytest.raises(TypeError, match=name):
        train_wta(images, w0=w0, seed=0, present_ms=1.0, rest_ms=0.0, **{name: True})


@pytest.mark.parametrize("shape", [(2.5, 4, 4), (1, 4.0, 4), (True, 4, 4)])
def test_pcnn_shape_must_be_integers(shape):
    # (2.5, 4, 4) was truncated to (2, 4, 4) without a word.
    with pytest.raises(TypeError, match="shape"):
        pcnn_init(shape)
    with pytest.raises(TypeError, match="shape"):
        pcnn_prepare(bp.PCNNParams(), shape)


def test_run_lif_weight_must_be_square():
    # A (5, 8) weight for n = 8 was accepted: neurons 5-7 got no recurrent input.
    with pytest.raises(ValueError, match="weight"):
        bp.run_lif(np.zeros((3, 8)), weight=np.ones((5, 8)))


@pytest.mark.parametrize("dw", [
    np.ones((2, 3)) * (1 + 1j),
    np.ones((2, 3)).astype(object),
    np.ones((2, 3)).astype(str),
], ids=["complex", "object", "str"])
def test_apply_update_refuses_non_real_dw(dw):
    with pytest.raises(TypeError, match="dw"):
        apply_update(np.ones((2, 3)), dw)


@pytest.mark.parametrize("bound", ["w_min", "w_max"])
def test_apply_update_refuses_nan_bounds(bound):
    # NaN bounds silently switched clipping off.
    with pytest.raises(ValueError, match=bound):
        apply_update(np.ones((2, 3)), np.ones((2, 3)), UpdateParams(**{bound: np.nan}))
    with pytest.raises(TypeError, match=bound):
        apply_update(np.ones((2, 3)), np.ones((2, 3)), UpdateParams(**{bound: "1"}))


def test_apply_update_infinite_bounds_still_mean_no_bound():
    w_new = apply_update(np.ones((2, 3)), np.ones((2, 3)), UpdateParams(learning_rate=1.0))
    np.testing.assert_array_equal(w_new, 2.0)   # 1 + 1.0 * 1


def test_apply_update_max_normalise_must_be_bool():
    with pytest.raises(TypeError, match="max_normalise"):
        apply_update(np.ones((2, 3)), np.ones((2, 3)), UpdateParams(max_normalise="no"))


# ------------------------------------------------------------- class 4: overflow to inf/NaN

BIG = 1e200   # squares overflow float64 (max 1.8e308), each value is finite
_X, _Y, _W = np.full((2, 3), BIG), np.full((2, 4), BIG), np.full((4, 3), BIG)

RATE_RULES = {
    "hebb_dw": lambda: hebb_dw(_X, _Y, _W),
    "instar_dw": lambda: instar_dw(_X, _Y, _W),
    "oja_dw": lambda: oja_dw(_X, _Y, _W),
    "sanger_dw": lambda: sanger_dw(_X, _Y, _W),
    "soft_hebb_dw": lambda: soft_hebb_dw(_X, _Y, _W),
    "soft_hebb_dw_1e308": lambda: soft_hebb_dw(np.full((2, 3), 1e308), np.full((2, 4), 1e308),
                                               np.full((4, 3), 1e308)),
    "krotov_hopfield_dw": lambda: krotov_hopfield_dw(_X, _W),
    "krotov_current": lambda: krotov_current(_X, _W),
    "soft_hebb_conv_dw": lambda: soft_hebb_conv_dw(np.full((1, 1, 3, 3), BIG),
                                                   np.full((2, 1, 3, 3), BIG)),
    "triangle": lambda: triangle(np.array([[BIG, -BIG]]), 2.0),
    "row_norms": lambda: row_norms(_W),
}


@pytest.mark.parametrize("rule", sorted(RATE_RULES))
def test_rate_rule_overflow_raises_divergence(rule):
    with pytest.raises(DivergenceError, match=rule.removesuffix("_1e308")), \
            np.errstate(over="ignore", invalid="ignore"):
        RATE_RULES[rule]()


@pytest.mark.parametrize("delta", [np.nan, np.inf])
def test_krotov_non_finite_delta_is_refused(delta):
    with pytest.raises(ValueError, match="delta"):
        krotov_hopfield_dw(np.ones((2, 3)), np.ones((4, 3)), KrotovParams(delta=delta))


def test_krotov_p_below_one_is_refused():
    # |0|**(p-1) = inf for p < 1, and sign(0) * inf = NaN in the current I.
    w = np.ones((4, 3))
    w[0, 0] = 0.0
    with pytest.raises(ValueError, match="p must be >= 1"):
        krotov_hopfield_dw(np.ones((2, 3)), w, KrotovParams(p=0.5))
    with pytest.raises(ValueError, match="p must be >= 1"):
        krotov_current(np.ones((2, 3)), w, 0.5)
    # p = 1: |0|**0 = 1 and sign(0) = 0, a finite current (the lower end of the range)
    assert np.all(np.isfinite(krotov_current(np.ones((2, 3)), w, 1.0)))


@pytest.mark.parametrize("bias", [1000.0, -1000.0])
def test_bias_rule_outside_its_finite_range_is_refused(bias):
    # exp(1000) = inf gave NaN; exp(-1000) = 0 raised a bare ZeroDivisionError.
    with pytest.raises(ValueError, match="b / temperature"):
        soft_hebb_bias_db(np.zeros((2, 3)), np.full(3, bias))


def test_bias_rule_documented_finite_range():
    u = np.zeros((1, 3))
    # inside the range the rule is finite: one row, softmax 1/3 each, prior e^{b}:
    # db = (1/3 - e^b) / e^b
    for b in (-700.0, 0.0, 700.0, 709.0):
        db = soft_hebb_bias_db(u, np.full(3, b))
        assert np.all(np.isfinite(db))
    np.testing.assert_allclose(soft_hebb_bias_db(u, np.zeros(3)), 1 / 3 - 1.0)
    # near the ends db itself overflows, which is reported: at the top N e^{b/τ} for N = 10
    # rows (10 * 8.2e307 > 1.8e308), at the bottom (1/3) / e^{-745} = (1/3) / 4.9e-324
    with pytest.raises(DivergenceError, match="soft_hebb_bias_db"):
        soft_hebb_bias_db(np.zeros((10, 3)), np.full(3, 709.0))
    with pytest.raises(DivergenceError, match="soft_hebb_bias_db"):
        soft_hebb_bias_db(u, np.full(3, -745.0))


def test_pcnn_overflowing_stimulus_raises_divergence():
    # S = 1e308 makes F and U infinite on the first iteration; the trace used to hold inf.
    with pytest.raises(DivergenceError, match="pcnn_advance diverged"):
        bp.run_pcnn(np.full((4, 4), 1e308), n_steps=3)


# ------------------------------------- found by the ci hypothesis profile (tests/test_properties)
# Each gave an exception that named nothing (OverflowError, ZeroDivisionError from inside a
# kernel, NumPy's "truth value of an empty array", a broadcasting error) or named the wrong
# argument.


def _wta_step_pieces():
    conn = input_connectivity(np.full((3, 5), 0.1))
    return (np.zeros(5, bool), bp.wta_init(3, None, conn), wta_prepare(), conn,
            bp.rules.post_index(conn.post, 3))


@pytest.mark.parametrize("field, value", [("tau_ge_s", 0.0), ("tau_gi_s", False),
                                          ("tau_theta_s", 2**63), ("dt_s", np.nan)])
def test_kernel_parameter_scalars_are_checked(field, value):
    x, state, kp, conn, by_post = _wta_step_pieces()
    with pytest.raises(ValueError, match=f"params.{field}"):
        bp.wta_step(x, state, kp._replace(**{field: value}), conn, by_post)
    with pytest.raises(ValueError, match=f"params.{field}"):
        bp.simulate(bp.wta_advance, x[None], state, kp._replace(**{field: value}), conn, by_post)


def test_kernel_parameter_of_another_type_is_a_type_error_naming_params():
    x, state, kp, conn, by_post = _wta_step_pieces()
    with pytest.raises(TypeError, match="params"):
        bp.wta_step(x, state, kp._replace(exc=1.0), conn, by_post)


def test_integer_arguments_past_int64():
    with pytest.raises(ValueError, match="n must be"):
        bp.neurons.normalise_input_weights(np.full(15, 0.1), input_connectivity(
            np.full((3, 5), 0.1)), 2**70, 1.0)


@pytest.mark.parametrize("field, value", [("power_lr", ()), ("row_norm", [1.0, 2.0])])
def test_update_scalars_that_are_sequences(field, value):
    w = np.ones((4, 5))
    with pytest.raises((TypeError, ValueError), match=field):
        apply_update(w, w * 0.1, UpdateParams(**{field: value}))


def test_empty_axes_are_named():
    with pytest.raises(ValueError, match="w0"):
        bp.run_wta(np.zeros((3, 5), bool), w0=np.zeros((0, 5)))
    with pytest.raises(ValueError, match="input_spikes"):
        bp.run_wta(np.zeros((0, 5), bool), w0=np.full((3, 5), 0.1))
    with pytest.raises(ValueError, match="stimulus"):
        bp.run_pcnn(np.zeros((0, 0)), n_steps=3)
    with pytest.raises(ValueError, match="n_pre"):
        bp.connectivity_from_arrays([0, 1], [0, 0], [1.0, 1.0], 0, 1)


# ----------------------------------------------------------------------- class 6: the CLI


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(list(argv))
    return exit_info.value.code, capsys.readouterr().err


def test_bench_unknown_name_lists_the_valid_names(capsys):
    code, err = _cli(capsys, "bench", "--only", "nope")
    assert code == 2
    assert "nope" in err and "softhebb" in err and "lif" in err


def test_validate_unknown_case_lists_the_valid_names(capsys):
    code, err = _cli(capsys, "validate", "--case", "nope")
    assert code == 2
    assert "nope" in err and "lif_recurrent" in err and "rate_hebb" in err


def test_demo_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "old.json").write_text("{}")
    code, err = _cli(capsys, "demo", "--out", str(tmp_path))
    assert code == 2 and "already holds files" in err
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"]    # nothing overwritten


def test_demo_refuses_a_file_as_out(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    code, err = _cli(capsys, "demo", "--out", str(target))
    assert code == 2 and "not a folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_demo_refuses_an_unwritable_out(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = _cli(capsys, "demo", "--out", str(locked / "new"))
    assert code == 2 and "cannot be written" in err


def test_demo_refuses_an_out_below_a_file(tmp_path, capsys):
    # (unwritable for root too: a folder cannot be created below a file)
    (tmp_path / "file").write_text("")
    code, err = _cli(capsys, "demo", "--out", str(tmp_path / "file" / "new"))
    assert code == 2 and "cannot be written" in err


def test_bench_strict_exits_non_zero_when_a_target_is_unmet(monkeypatch, capsys):
    from bioplastic import _bench

    fake = [_bench.Benchmark("fake", "a benchmark that misses its target",
                             lambda quick: [{"target": "fake >= 2x", "ratio": 1.0, "met": False}])]
    monkeypatch.setattr(_bench, "all_benchmarks", lambda: fake)
    assert cli_main(["bench", "--only", "fake"]) == 0            # informative by default
    assert cli_main(["bench", "--only", "fake", "--strict"]) == 1
    assert "not met" in capsys.readouterr().err


def test_broken_brian2_install_gives_one_clear_line(tmp_path):
    # A brian2 that is found but fails on import (a missing shared library, say).
    (tmp_path / "brian2").mkdir()
    (tmp_path / "brian2" / "__init__.py").write_text(
        'raise ImportError("simulated broken install")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(Path(__file__).resolve().parents[1])])}
    out = subprocess.run([sys.executable, "-m", "bioplastic.cli", "validate", "--case",
                          "rate_hebb"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "fails to import" in out.stderr and "simulated broken install" in out.stderr
    assert "golden" in out.stdout                                # fell back to golden traces


def test_soft_hebb_conv_kernel_with_an_empty_axis_is_named():
    # w (3, 1, 0, 3) was reported as "kernel_size must lie in [1, ...]", an argument the
    # caller never passed
    with pytest.raises(ValueError, match="w must have shape"):
        soft_hebb_conv_dw(np.ones((2, 1, 5, 5)), np.zeros((3, 1, 0, 3)))
