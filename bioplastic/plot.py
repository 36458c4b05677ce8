"""Plots for comparing a kernel with its Brian2 twin (imports matplotlib lazily)."""

from __future__ import annotations

import numpy as np

__all__ = ["raster", "raster_vs_twin", "trace_vs_twin", "figure"]


def figure(*args, **kwargs):
    """``plt.subplots(*args, **kwargs)``; returns ``(fig, ax)`` or ``(fig, axes)``.

    The backend is the caller's: in Jupyter figures show inline, in a script they follow
    matplotlib's own choice (``MPLBACKEND=Agg`` or ``matplotlib.use("Agg")`` for files only;
    the ``bioplastic`` command line and the experiments choose Agg themselves).
    """
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def raster(ax, steps: np.ndarray, index: np.ndarray, *, dt_ms: float = 1.0, label=None,
           **style):
    """Spike raster from ``(step, index)`` pairs (e.g. ``Trace.spike_pairs()``)."""
    style = {"s": 2, "marker": "|", "linewidths": 0.6, **style}
    ax.scatter(np.asarray(steps) * dt_ms, index, label=label, **style)
    ax.set_xlabel("time (ms)" if dt_ms != 1.0 else "step")
    ax.set_ylabel("neuron")
    return ax


def raster_vs_twin(ax, ours: tuple, twin: tuple, *, dt_ms: float = 1.0):
    """Overlay our spikes (dots) and the twin's (rings): identical trains give ringed dots."""
    raster(ax, *ours, dt_ms=dt_ms, label="bioplastic", marker=".", s=3, color="C0")
    raster(ax, *twin, dt_ms=dt_ms, label="Brian2 twin", marker="o", s=12,
           facecolors="none", edgecolors="C1", linewidths=0.5)
    ax.legend(loc="upper right", fontsize="small")
    return ax


def trace_vs_twin(axes, ours: np.ndarray, twin: np.ndarray, *, dt_ms: float = 1.0,
                  label: str = "v (mV)"):
    """Two axes: both traces overlaid, and their absolute difference (log scale)."""
    ours, twin = np.asarray(ours), np.asarray(twin)
    time = np.arange(ours.shape[0]) * dt_ms
    axes[0].plot(time, ours, color="C0", lw=1.2, label="bioplastic")
    axes[0].plot(time, twin, color="C1", lw=0.8, ls="--", label="Brian2 twin")
    axes[0].set_ylabel(label)
    axes[0].legend(loc="upper right", fontsize="small")
    diff = np.abs(ours - twin)
    if np.any(diff > 0):
        axes[1].semilogy(time, np.where(diff > 0, diff, np.nan), color="C2")
    else:
        axes[1].plot(time, diff, color="C2")
        axes[1].text(0.5, 0.5, "identical: |Δ| = 0 at every step", transform=axes[1].transAxes,
                     ha="center", va="center")
    axes[1].set_ylabel(f"|Δ{label.split()[0]}|")
    axes[1].set_xlabel("time (ms)")
    return axes
