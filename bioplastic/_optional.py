"""Optional dependencies (brian2, torch, ...): installed, missing, or installed but broken.

``importlib.util.find_spec`` only says a package is *there*; a broken install (a missing shared
library, an incompatible NumPy) is found yet fails on import, and would otherwise surface as a
traceback deep inside a command. :func:`import_problem` imports the package once and turns the
failure into one sentence.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util

__all__ = ["import_problem"]


@functools.cache
def import_problem(name: str) -> str | None:
    """``None`` if ``name`` imports; otherwise why not ("not installed" or the import error)."""
    if importlib.util.find_spec(name) is None:
        return f"{name} is not installed"
    try:
        importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - any failure of a broken install is reported
        return (f"{name} is installed but fails to import ({type(err).__name__}: {err}); "
                f"reinstall it, e.g. pip install --force-reinstall {name}")
    return None
