"""Brian2 twins: every model and rule of bioplastic written in Brian2's equation language.

Each module ``bioplastic/reference/<model>.py`` defines the model's equation strings, a
``run_<model>(...)`` returning plain NumPy arrays, and ``CASES`` (see :class:`TwinCase`).
Brian2 itself is imported only when a twin runs (``pip install 'bioplastic[reference]'``).
"""

from ._cases import Comparison, TwinCase, TwinResult, all_cases, compare, inputs_digest

__all__ = ["Comparison", "TwinCase", "TwinResult", "all_cases", "compare", "inputs_digest"]
