"""bioplastic.save / bioplastic.load: kernel-side models come back bit for bit."""

import json

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.neurons import PCNNParams, dense_weights


def assert_identical(a, b):
    """Same type, same structure, arrays equal to the last bit with the same dtype."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_identical(a[key], b[key])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_identical(x, y)
    else:
        assert a == b or (a != a and b != b)      # NaN equals NaN here


def test_lif_params_state_and_connectivity_round_trip(tmp_path, rng):
    n = 50
    params = bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), theta_plus_mv=0.3, t_ref_ms=0.5)
    conn = bp.connectivity((rng.random((n, n)) < 0.1) * rng.normal(0, 2, (n, n)),
                           delay_ms=0.2, dt_ms=params.dt_ms)
    drive = rng.uniform(12, 20, (200, n))
    kernel = bp.lif_prepare(params, n)
    trace = bp.simulate(bp.lif_advance, drive, bp.lif_init(n, params, conn), kernel, conn)
    model = {"params": params, "kernel": kernel, "conn": conn, "state": trace.state}
    loaded = bp.load(bp.save(tmp_path / "lif.npz", model))
    assert_identical(model, loaded)
    # continuing from the loaded state gives exactly the spikes of continuing from the original
    more = rng.uniform(12, 20, (100, n))
    a = bp.simulate(bp.lif_advance, more, trace.state, kernel, conn, record=("v",))
    b = bp.simulate(bp.lif_advance, more, loaded["state"], loaded["kernel"], loaded["conn"],
                    record=("v",))
    assert a.spikes.sum() > 0
    np.testing.assert_array_equal(a.spikes, b.spikes)
    assert a["v"].tobytes() == b["v"].tobytes()


def test_trained_wta_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (3, 16))
    w0 = rng.uniform(0, 0.3, (4, 16))
    params = bp.WTAParams(w_sum=2.0)
    result = bp.train_wta(images, params, w0=w0, seed=1, present_ms=20.0, rest_ms=5.0)
    path = bp.save(tmp_path / "wta", {"training": result, "params": params,
                                      "prepared": bp.wta_prepare(params)})
    assert path.name == "wta.npz"
    loaded = bp.load(path)
    assert_identical(loaded["training"], result)
    assert_identical(loaded["prepared"], bp.wta_prepare(params))       # nested NamedTuples
    trained = dense_weights(loaded["training"].state.w, loaded["training"].conn, 4)
    assert not np.array_equal(trained, w0)                             # it did learn


def test_values_of_every_kind_round_trip(tmp_path):
    obj = {"pcnn": PCNNParams.zhan_1d(), "nan": float("nan"), "inf": -np.inf, "none": None,
           "flag": True, "count": 7, "name": "x", "items": [1, (2.5, np.float32(3))],
           "ints": np.arange(6, dtype=np.int16).reshape(2, 3), "mask": np.eye(2, dtype=bool),
           "tiny": np.nextafter(0.0, 1.0)}
    assert_identical(obj, bp.load(bp.save(tmp_path / "kinds.npz", obj)))


def test_load_checks_the_expected_type(tmp_path):
    path = bp.save(tmp_path / "p.npz", bp.LIFParams())
    assert bp.load(path, expected=bp.LIFParams) == bp.LIFParams()
    with pytest.raises(ValueError, match="expected LIFState"):
        bp.load(path, expected=bp.LIFState)


def test_unsaveable_objects_are_refused_naming_the_entry(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['f'\]: cannot save a builtin_function_or_method"):
        bp.save(tmp_path / "x.npz", {"f": len})
    with pytest.raises(TypeError, match="dtype object"):
        bp.save(tmp_path / "x.npz", np.array([{}], dtype=object))


def _rewrite_meta(path, edit):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["__bioplastic__"]))
    edit(meta)
    arrays["__bioplastic__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_load_refuses_foreign_types_and_changed_fields(tmp_path):
    path = bp.save(tmp_path / "p.npz", bp.LIFParams())
    _rewrite_meta(path, lambda m: m["tree"].update(type="os:system"))
    with pytest.raises(ValueError, match="not a bioplastic type"):
        bp.load(path)
    path = bp.save(tmp_path / "q.npz", bp.LIFParams())
    _rewrite_meta(path, lambda m: m["tree"]["fields"].pop("dt_ms"))
    with pytest.raises(ValueError, match="has fields"):
        bp.load(path)
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a file written by bioplastic.save: an .npz "
                                         "archive without the __bioplastic__ entry"):
        bp.load(tmp_path / "plain.npz")


NOT_SAVED = r"^path '.*' is not a file written by bioplastic\.save: "


@pytest.mark.parametrize("content, why", [
    (b"garbage, not a zip", "not an .npz archive"),   # NumPy used to suggest allow_pickle
    (b"", "not an .npz archive"),
    (b"PK", "not an .npz archive"),
])
def test_load_refuses_a_file_that_is_not_an_archive(tmp_path, content, why):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=NOT_SAVED + why) as info:
        bp.load(path)
    assert "pickle" not in str(info.value)


def test_load_refuses_truncated_and_damaged_archives(tmp_path):
    data = bp.save(tmp_path / "good.npz", {"w": np.arange(500.0)}).read_bytes()
    for n in (10, 100, len(data) // 2, len(data) - 1):   # the central directory is at the end
        (tmp_path / "cut.npz").write_bytes(data[:n])
        with pytest.raises(ValueError, match=NOT_SAVED + "a truncated or damaged .npz archive"):
            bp.load(tmp_path / "cut.npz")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF                    # inside the array's bytes: a bad CRC
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"^path '.*flip\.npz' is damaged.*CRC"):
        bp.load(tmp_path / "flip.npz")


def test_load_refuses_an_npy_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match=NOT_SAVED + "a single .npy array"):
        bp.load(tmp_path / "a.npy")


@pytest.mark.parametrize("meta, why", [
    ("{not json", "its __bioplastic__ entry is unreadable"),
    ("[1, 2]", "its __bioplastic__ entry is not the library's metadata"),
    (json.dumps({"format": "bioplastic", "version": 1}), "its __bioplastic__ entry is not"),
    (json.dumps({"format": "other", "version": 1, "tree": {}}), "its __bioplastic__ entry is"),
])
def test_load_refuses_archives_without_the_library_metadata(tmp_path, meta, why):
    np.savez(tmp_path / "m.npz", __bioplastic__=np.array(meta))
    with pytest.raises(ValueError, match=NOT_SAVED + why):
        bp.load(tmp_path / "m.npz")


@pytest.mark.parametrize("tree", [
    5, {"kind": "array", "key": "a9"}, {"kind": "dict", "items": [1]}, {"kind": "list"}])
def test_load_refuses_a_damaged_tree(tmp_path, tree):
    meta = json.dumps({"format": "bioplastic", "version": 1, "tree": tree})
    np.savez(tmp_path / "t.npz", __bioplastic__=np.array(meta))
    with pytest.raises(ValueError, match=r"^path '.*t\.npz' is damaged or was not written by "
                                         r"bioplastic\.save"):
        bp.load(tmp_path / "t.npz")


def test_load_of_a_missing_file_or_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        bp.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        bp.load(tmp_path)
    with pytest.raises(TypeError, match="^path must be a str or os.PathLike"):
        bp.load(3)
    with pytest.raises(TypeError, match="^expected must be a type"):
        bp.load(bp.save(tmp_path / "p.npz", bp.LIFParams()), expected="LIFParams")


def test_save_refuses_an_existing_directory(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"^path '.*models' is an existing directory"):
        bp.save(folder, bp.LIFParams())          # NumPy used to write models.npz beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    (tmp_path / "run.npz").mkdir()
    with pytest.raises(ValueError, match=r"^path would be written as '.*run\.npz', which is an "
                                         r"existing directory"):
        bp.save(tmp_path / "run", bp.LIFParams())
    with pytest.raises(TypeError, match="^path must be a str or os.PathLike"):
        bp.save(None, bp.LIFParams())
    assert bp.save(folder / "m", bp.LIFParams()) == folder / "m.npz"   # inside it is fine
