"""Brian2 twins: every model and rule of bioplastic written in Brian2's equation language.

Each module ``bioplastic/reference/<model>.py`` defines the model's equation strings, a
``run_<model>(...)`` returning plain NumPy arrays, and ``CASES`` (see :class:`TwinCase`).
Brian2 itself is imported only when a twin runs (``pip install 'bioplastic[reference]'``).

To twin a model of your own (``docs/twinning.md``), build it with the public helpers:
:func:`exact_prefs` (the preferences that make a twin bit-comparable), :func:`network` (a
fresh, isolated ``Network``), :func:`run_network` (run for whole steps, optionally timed),
:func:`spike_pairs` and :func:`recorded` (monitors as sorted NumPy arrays), then compare with
:func:`compare` or :func:`same_spikes` through a :class:`TwinCase`.
"""

from ._brian import (
    exact_prefs,
    network,
    recorded,
    require_brian2,
    run_network,
    scheduling_summary,
    spike_pairs,
)
from ._cases import (
    TIERS,
    Comparison,
    TwinCase,
    TwinResult,
    all_cases,
    compare,
    inputs_digest,
    same_bits,
    same_spikes,
)

__all__ = ["Comparison", "TwinCase", "TwinResult", "TIERS", "all_cases", "compare",
           "same_spikes", "same_bits", "inputs_digest", "exact_prefs", "network", "run_network",
           "spike_pairs", "recorded", "scheduling_summary", "require_brian2"]
