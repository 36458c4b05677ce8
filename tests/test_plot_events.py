"""Event plots render (issue 11)."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from bioplastic import plot  # noqa: E402
from bioplastic.data.events import synthetic_gesture, to_frame  # noqa: E402
from bioplastic.plot import _surface  # noqa: E402


def test_event_plots_render(tmp_path):
    import matplotlib.pyplot as plt

    events = synthetic_gesture(3, 0, duration_ms=200)
    fig, axes = plt.subplots(1, 2)
    plot.event_raster(axes[0], events, max_events=1000)
    plot.time_surface(axes[1], events, (128, 128, 2), colorbar=True)
    fig.savefig(tmp_path / "events.png")
    frames = to_frame(events, (128, 128, 2), n_time_bins=5)
    grid_fig, grid_axes = plot.frames_grid(frames, ncols=3, dt_ms=40)
    assert grid_axes.size == 6 and not grid_axes[5].get_visible()
    grid_fig.savefig(tmp_path / "frames.png")
    plt.close("all")
    assert (tmp_path / "events.png").stat().st_size > 0


def test_time_surface_values():
    from bioplastic.data.events import make_events

    # ON at (0, 0) 0 µs ago -> +1; OFF at (1, 0) tau ago -> -exp(-1); pixel (2, 0) never fired
    events = make_events([1, 0], [0, 0], [0, 1], [0, 1000])
    surface = _surface(events, (3, 1, 2), tau_us=1000.0, t_us=1000.0)
    assert np.allclose(surface[0], [1.0, -np.exp(-1.0), 0.0])
