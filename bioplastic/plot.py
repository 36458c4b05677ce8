"""Plots for comparing a kernel with its Brian2 twin (imports matplotlib lazily)."""

from __future__ import annotations

import numpy as np

__all__ = ["raster", "raster_vs_twin", "trace_vs_twin", "figure"]


def figure(*args, **kwargs):
    """``plt.subplots(*args, **kwargs)``; returns ``(fig, ax)`` or ``(fig, axes)``.

    The backend is the caller's: in Jupyter figures show inline, in a script they follow
    matplotlib's own choice (``MPLBACKEND=Agg`` in the environment for files only;
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


# ------------------------------------------------------------------- event streams (issue 11)
__all__ += ["event_raster", "time_surface", "frames_grid"]


def _polarity_colors():
    return {True: "C3", False: "C0"}        # ON red, OFF blue


def event_raster(ax, events: np.ndarray, *, axis: str = "x", max_events: int = 50_000,
                 **style):
    """Events as dots of time (ms) against pixel ``axis`` ("x" or "y"); ON red, OFF blue.

    ``events`` is a structured event array (``bioplastic.data.events``); more than
    ``max_events`` are thinned to every k-th event, so large streams stay quick to draw.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    step = max(1, int(np.ceil(events.shape[0] / max_events)))
    shown = events[::step]
    style = {"s": 1, "marker": ".", "linewidths": 0, **style}
    for polarity, color in _polarity_colors().items():
        sel = shown[shown["p"].astype(bool) == polarity]
        ax.scatter(sel["t"] / 1000.0, sel[axis], color=color, label="ON" if polarity else "OFF",
                   **style)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(f"{axis} (pixel)")
    ax.legend(loc="upper right", fontsize="small", markerscale=8)
    return ax


def _surface(events: np.ndarray, sensor_size, tau_us: float, t_us: float) -> np.ndarray:
    """exp(-(t_us - last ON time)/tau) - exp(-(t_us - last OFF time)/tau) per pixel (H, W)."""
    width, height = int(sensor_size[0]), int(sensor_size[1])
    past = events[events["t"] <= t_us]
    last = np.full((2, height, width), -np.inf)
    # later events overwrite earlier ones: assignment with repeated indices keeps the last
    last[past["p"].astype(np.int64) % 2, past["y"], past["x"]] = past["t"]
    surface = np.exp(-(t_us - last) / tau_us)
    return surface[1] - surface[0]


def time_surface(ax, events: np.ndarray, sensor_size, *, tau_us: float = 50_000.0,
                 t_us: float | None = None, colorbar: bool = False):
    """Time surface at ``t_us`` (default: the last event): each pixel shows
    ``exp(-(t_us − t_last)/tau_us)`` of its latest ON event minus that of its latest OFF event
    (red = recent ON, blue = recent OFF, white = old or none)."""
    if t_us is None:
        t_us = float(events["t"][-1]) if events.size else 0.0
    image = ax.imshow(_surface(events, sensor_size, float(tau_us), float(t_us)), cmap="RdBu_r",
                      vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.set_title(f"time surface at {t_us / 1000:.0f} ms (τ = {tau_us / 1000:g} ms)",
                 fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def frames_grid(frames: np.ndarray, *, ncols: int = 8, axes=None, dt_ms: float | None = None):
    """Frames ``(T, P, H, W)`` (or ``(T, H, W)``) in a grid, one panel per frame.

    Two polarities are shown as ON − OFF counts (red / blue), one as counts. Returns
    ``(figure, axes array)``; pass ``axes`` (at least T of them) to draw into your own figure.
    """
    frames = np.asarray(frames)
    if frames.ndim == 4:
        images = frames[:, 1] - frames[:, 0] if frames.shape[1] == 2 else frames[:, 0]
    elif frames.ndim == 3:
        images = frames
    else:
        raise ValueError(f"frames must be (T, P, H, W) or (T, H, W), got {frames.shape}")
    n = images.shape[0]
    if axes is None:
        import matplotlib.pyplot as plt

        ncols = max(1, min(ncols, n))
        nrows = int(np.ceil(n / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.6 * nrows),
                                 squeeze=False)
    axes = np.asarray(axes).ravel()
    if axes.size < n:
        raise ValueError(f"need at least {n} axes for {n} frames, got {axes.size}")
    limit = max(1.0, float(np.abs(images).max())) if images.size else 1.0
    cmap = "RdBu_r" if frames.ndim == 4 and frames.shape[1] == 2 else "viridis"
    low = -limit if cmap == "RdBu_r" else 0.0
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_visible(False)
            continue
        ax.imshow(images[i], cmap=cmap, vmin=low, vmax=limit, interpolation="nearest")
        ax.set_title(f"{i * dt_ms:g} ms" if dt_ms else f"frame {i}", fontsize="x-small")
    return axes[0].figure, axes
