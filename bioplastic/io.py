"""Save a trained kernel-side model and load it back bit for bit: :func:`save`, :func:`load`.

What can be saved: any tree of

* the library's ``NamedTuple`` types (parameters such as :class:`~bioplastic.LIFParams`,
  prepared kernel parameters, states such as :class:`~bioplastic.LIFState` or
  :class:`~bioplastic.WTAState`, :class:`~bioplastic.SparseConnectivity`, training results);
* NumPy arrays of numbers or booleans (e.g. trained weights), NumPy scalars;
* ``int``, ``float``, ``bool``, ``str`` and ``None``;
* ``dict`` (string keys), ``list`` and ``tuple`` of the above.

The file is a NumPy ``.npz`` archive: every array is stored as is (dtype and shape kept, so
values come back bit for bit; a stride-0 view, as :func:`~bioplastic.neurons.lif_prepare`
makes of uniform parameters, as its one value and comes back as the same read-only view),
and one JSON entry describes the tree, with each NamedTuple recorded by its qualified type
name and field names. Nothing is pickled: loading never runs
code from the file. On load each recorded type must be a NamedTuple of this library
(``bioplastic.*``) with exactly the recorded fields, else ``ValueError``.

Example::

    import bioplastic as bp
    result = bp.train_wta(images, w0=w0, seed=0)
    bp.save("wta.npz", {"state": result.state, "conn": result.conn, "params": bp.WTAParams()})
    saved = bp.load("wta.npz")          # the same dict, arrays identical to the last bit
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Bumped when the layout changes; :func:`load` refuses files from a newer version.
#: 2: stride-0 arrays (uniform prepared parameters) are stored as one value and a shape.
FORMAT_VERSION = 2
_META = "__bioplastic__"
_PACKAGE = "bioplastic"
#: What NumPy raises for a file that is not a whole ``.npz`` archive: text or other bytes go to
#: its pickle branch, refused with a ValueError that suggests ``allow_pickle``; an empty file is
#: an EOFError; a cut-off or damaged zip is a BadZipFile.
_NOT_AN_ARCHIVE = (ValueError, EOFError, zipfile.BadZipFile)
#: What reading a damaged entry, or a JSON tree of the wrong structure, raises.
_DAMAGED = (KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile)


def save(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` (see the module docstring for what it may hold) to the file ``path``.

    Returns the path written: ``path`` itself if it ends in ``.npz``, else ``path`` with
    ``.npz`` appended (as NumPy would), e.g. ``"model"`` -> ``"model.npz"``.

    Raises ``TypeError`` naming the offending entry for anything else (a function, an object
    array, a non-library class): such a thing could not be loaded back without pickling;
    ``TypeError`` if ``path`` is not a str or path; ``ValueError`` if ``path`` (or the
    ``.npz`` name it becomes) is an existing directory, rather than writing ``dir.npz`` beside
    it; ``OSError`` (e.g. ``FileNotFoundError``) if the folder to write in does not exist.
    """
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "obj", arrays)
    meta = json.dumps({"format": _PACKAGE, "version": FORMAT_VERSION, "tree": tree})
    path = _npz_path(_as_path(path))
    np.savez(path, **{_META: np.array(meta)}, **arrays)
    return path


def load(path: str | os.PathLike, expected: type | None = None):
    """Read what :func:`save` wrote; ``expected`` (a type) checks the top-level object's type.

    Raises ``FileNotFoundError`` if ``path`` does not exist (no ``.npz`` is appended here) and
    ``IsADirectoryError`` if it is a folder; ``TypeError`` if ``path`` is not a str or path;
    ``ValueError`` naming ``path`` if the file was not written by :func:`save` (not an
    ``.npz`` archive, a truncated or damaged one, one without the library's metadata), names
    a type that is not one of the library's NamedTuples, or whose fields differ from the
    recorded ones.
    """
    path = _as_path(path)
    if expected is not None and not isinstance(expected, type):
        raise TypeError(f"expected must be a type or None, got {expected!r}")
    with _open_archive(path) as archive:
        obj = _decode_file(_read_meta(archive, path), archive, path)
    if expected is not None and type(obj) is not expected:
        raise ValueError(f"{path} holds a {type(obj).__qualname__}, expected "
                         f"{expected.__qualname__}")
    return obj


# ----------------------------------------------------------------------------- the file
def _as_path(path) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _npz_path(path: Path) -> Path:
    """The file :func:`save` writes. An existing directory is refused: NumPy would silently
    write ``<dir>.npz`` next to it, which is not where anyone passing a folder looks."""
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is an existing directory; give a file name "
                         f"such as {str(path / 'model.npz')!r}")
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
        if path.is_dir():
            raise ValueError(f"path would be written as {str(path)!r}, which is an existing "
                             "directory; give another file name")
    return path


def _not_saved(path: Path, why: str) -> str:
    return f"path {str(path)!r} is not a file written by bioplastic.save: {why}"


def _open_archive(path: Path):
    """``np.load`` of an ``.npz`` archive; anything else is a ``ValueError`` naming ``path``
    (missing files and folders keep NumPy's ``OSError``, which names the file)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except zipfile.BadZipFile as err:
        raise ValueError(_not_saved(path, f"a truncated or damaged .npz archive ({err})")) from None
    except _NOT_AN_ARCHIVE:
        raise ValueError(_not_saved(path, "not an .npz archive")) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(_not_saved(path, "a single .npy array, not an .npz archive"))
    return archive


def _read_meta(archive, path: Path) -> dict:
    if _META not in archive.files:
        raise ValueError(_not_saved(path, f"an .npz archive without the {_META} entry"))
    try:
        meta = json.loads(str(archive[_META]))
    except (ValueError, *_DAMAGED) as err:        # JSONDecodeError is a ValueError
        raise ValueError(_not_saved(path, f"its {_META} entry is unreadable ({err})")) from err
    if (not isinstance(meta, dict) or meta.get("format") != _PACKAGE
            or not isinstance(meta.get("version"), int) or "tree" not in meta):
        raise ValueError(_not_saved(path, f"its {_META} entry is not the library's metadata"))
    if meta["version"] > FORMAT_VERSION:
        raise ValueError(f"path {str(path)!r} has format version {meta['version']}; this "
                         f"bioplastic reads up to {FORMAT_VERSION} (upgrade bioplastic)")
    return meta


def _decode_file(meta: dict, archive, path: Path):
    """The saved tree; a damaged file (a missing array, a tree of the wrong structure, a bad
    CRC) is a ``ValueError`` naming ``path``, never a ``KeyError`` from deep inside."""
    try:
        return _decode(meta["tree"], archive, "obj")
    except ValueError as err:
        raise ValueError(f"path {str(path)!r}: {err}") from err
    except _DAMAGED as err:
        raise ValueError(f"path {str(path)!r} is damaged or was not written by "
                         f"bioplastic.save: {type(err).__name__}: {err}") from err


# ----------------------------------------------------------------------------- encoding
def _encode(obj, where: str, arrays: dict) -> dict:
    if isinstance(obj, np.ndarray | np.generic):      # first: np.float64 is also a float
        return _encode_array(np.asarray(obj), where, arrays, scalar=isinstance(obj, np.generic))
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"kind": "value", "value": obj, "type": type(obj).__name__}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return _encode_namedtuple(obj, where, arrays)
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"{where}: dict keys must be str to be saved")
        return {"kind": "dict", "items": {k: _encode(v, f"{where}[{k!r}]", arrays)
                                          for k, v in obj.items()}}
    if isinstance(obj, list | tuple):
        return {"kind": type(obj).__name__,
                "items": [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(obj)]}
    raise TypeError(f"{where}: cannot save a {type(obj).__qualname__} (arrays, numbers, str, "
                    "None, dict/list/tuple and bioplastic NamedTuples only)")


def _encode_array(array: np.ndarray, where: str, arrays: dict, *, scalar: bool) -> dict:
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{where}: cannot save an array of dtype {array.dtype} (numbers and "
                        "booleans only; object arrays would need pickling)")
    key = f"a{len(arrays)}"
    if not scalar and array.size > 1 and not any(array.strides):
        # a stride-0 view (lif_prepare's uniform parameters): one value and the shape, so
        # it loads as the same view and the kernel keeps its scalar path
        arrays[key] = array.reshape(-1)[:1].copy()
        return {"kind": "broadcast", "key": key, "shape": list(array.shape)}
    arrays[key] = array
    return {"kind": "scalar" if scalar else "array", "key": key}


def _encode_namedtuple(obj, where: str, arrays: dict) -> dict:
    cls = type(obj)
    if not cls.__module__.startswith(_PACKAGE + ".") and cls.__module__ != _PACKAGE:
        raise TypeError(f"{where}: {cls.__module__}.{cls.__qualname__} is not a bioplastic "
                        "type; save it as a dict instead")
    fields = {f: _encode(v, f"{where}.{f}", arrays) for f, v in zip(obj._fields, obj,
                                                                    strict=True)}
    return {"kind": "namedtuple", "type": f"{cls.__module__}:{cls.__qualname__}",
            "fields": fields}


# ----------------------------------------------------------------------------- decoding
def _decode(node: dict, archive, where: str):
    kind = node.get("kind")
    if kind == "value":
        return node["value"]
    if kind in ("array", "scalar"):
        array = archive[node["key"]]
        return array[()] if kind == "scalar" else array
    if kind == "broadcast":
        value, shape = archive[node["key"]], node["shape"]
        if value.shape != (1,) or not isinstance(shape, list) or not all(
                isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{where}: a damaged broadcast entry ({value.shape}, {shape!r})")
        return np.broadcast_to(value.reshape((1,) * len(shape)), tuple(shape))
    if kind == "dict":
        return {k: _decode(v, archive, f"{where}[{k!r}]") for k, v in node["items"].items()}
    if kind in ("list", "tuple"):
        items = [_decode(v, archive, f"{where}[{i}]") for i, v in enumerate(node["items"])]
        return items if kind == "list" else tuple(items)
    if kind == "namedtuple":
        cls = _namedtuple_type(node["type"], where)
        recorded = list(node["fields"])
        if recorded != list(cls._fields):
            raise ValueError(f"{where}: the file's {node['type']} has fields {recorded}, this "
                             f"bioplastic's has {list(cls._fields)}")
        return cls(**{f: _decode(v, archive, f"{where}.{f}") for f, v in
                      node["fields"].items()})
    raise ValueError(f"{where}: unknown entry kind {kind!r} (file damaged or from elsewhere)")


def _namedtuple_type(name: str, where: str) -> type:
    module_name, _, qualname = name.partition(":")
    if not (module_name == _PACKAGE or module_name.startswith(_PACKAGE + ".")) or not qualname:
        raise ValueError(f"{where}: type {name!r} is not a bioplastic type; refusing to load")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: type {name!r} does not exist in this bioplastic") from err
    if not (isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields")):
        raise ValueError(f"{where}: {name!r} is not a NamedTuple; refusing to load")
    return obj
