"""A recurrent spiking video predictor (PredRNN-style stack of spiking conv cells).

The architecture of the STC paper's public code (OpenSTL's ``ConvLIF`` models):

* frames are patch-reshaped ``(B, C, H, W) → (B, C·p², H/p, W/p)`` (``patch`` p; 2 for
  Moving MNIST in the code) with :func:`torch.nn.functional.pixel_unshuffle`;
* a stack of spiking conv cells (any class of :data:`bioplastic.nn.stc.CELLS`): layer 0 reads
  the (patched) frame, layer ``i > 0`` the spikes of layer ``i − 1`` at the same step, and each
  layer keeps its own state (its own ``S[t-1]`` for the STC modulators);
* the next frame is decoded **from the top layer's binary spikes** by a 1×1 conv without bias,
  ``x_gen = Conv1×1(S_top[t])``, then un-patched;
* the model runs ``T_in + T_out − 1`` steps and is trained with the MSE against
  ``frames[1:]``;
* inputs follow PredRNN's **scheduled sampling**: at steps ``t >= T_in`` the true frame is fed
  with probability ``eta`` (per sequence and step), else the model's own previous prediction;
  ``eta`` starts at 1 and drops linearly (:func:`scheduled_sampling_eta`; the code: by 2e-5
  per iteration, reaching 0 at iteration 50,000). At evaluation ``eta = 0``.

States start at zero for each batch (the code's ``functional.reset_net``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as fn

from .._validate import count, non_negative, positive_int
from .base import check_like_weight
from .stc import CELLS

__all__ = ["SpikingPredictor", "scheduled_sampling_eta", "sampling_mask"]


def scheduled_sampling_eta(iteration: int, *, decay: float = 2e-5,
                           stop_iteration: int = 50_000) -> float:
    """PredRNN's probability of feeding the true frame: ``max(0, 1 − decay·iteration)``,
    0 from ``stop_iteration`` on (``iteration``, ``stop_iteration``: integers >= 0; ``decay``
    finite, >= 0), so always in [0, 1]."""
    iteration = count("iteration", iteration)
    stop_iteration = count("stop_iteration", stop_iteration)
    decay = non_negative("decay", decay)
    if iteration >= stop_iteration:
        return 0.0
    return max(0.0, 1.0 - decay * iteration)


def sampling_mask(eta: float, batch: int, n_out: int, *, generator=None,
                  device=None) -> torch.Tensor:
    """Bernoulli(eta) mask ``(n_out − 1, batch)``: 1 feeds the true frame at that step."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    draws = torch.rand((max(n_out - 1, 0), batch), generator=generator)
    return (draws < eta).to(device=device, dtype=torch.get_default_dtype())


def _check_mask(mask, shape, frames: torch.Tensor) -> torch.Tensor:
    """A scheduled-sampling ``mask`` (tensor or array-like, bool, integer or float, values in
    [0, 1]) as a tensor of ``frames``' dtype and device."""
    array_like = not isinstance(mask, torch.Tensor)
    if array_like:
        mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" if array_like else mask.dtype.is_complex:
        raise TypeError(f"mask must hold booleans or real numbers, got dtype {mask.dtype}")
    mask = torch.as_tensor(mask)
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {shape}, got {tuple(mask.shape)}")
    mask = mask.to(device=frames.device, dtype=frames.dtype)
    if not bool(((mask >= 0) & (mask <= 1)).all()):
        raise ValueError("mask must hold values in [0, 1] (1: feed the true frame)")
    return mask


class SpikingPredictor(torch.nn.Module):
    """Stacked spiking conv cells predicting ``T_out`` frames from ``T_in``.

    Parameters
    ----------
    channels : int
        Frame channels (1 for Moving MNIST).
    hidden : sequence of int
        Channels per layer (the code: 3 × 256).
    cell : str
        A key of :data:`bioplastic.nn.stc.CELLS` (``"stc_lif"``, ``"lif"``, ``"plif"``, ...).
    kernel_size, groups, patch
        Conv size (the code: 5), groups of the modulator convs and GroupNorms (16), patch
        size (2 for 64×64 Moving MNIST).
    **cell_options
        Passed to every cell (e.g. ``gradient_detach=True``, ``form="fang2021"``).
    """

    def __init__(self, channels: int = 1, hidden=(64, 64), *, cell: str = "stc_lif",
                 kernel_size: int = 5, groups: int = 16, patch: int = 2, dtype=torch.float32,
                 **cell_options):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        channels, patch = positive_int("channels", channels), positive_int("patch", patch)
        hidden = tuple(hidden)
        if not hidden:
            raise ValueError("hidden must name at least one layer")
        self.channels, self.patch, self.cell_name = channels, patch, cell
        in_ch = channels * patch * patch
        layers = []
        for width in hidden:
            layers.append(CELLS[cell](in_ch, width, kernel_size, groups=groups, dtype=dtype,
                                      **cell_options))
            in_ch = width
        self.cells = torch.nn.ModuleList(layers)
        self.readout = torch.nn.Conv2d(in_ch, channels * patch * patch, 1, bias=False,
                                       dtype=dtype)

    @staticmethod
    def _check_tensor(name: str, frames) -> None:
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (T, B, C, H, W), got "
                            f"{type(frames).__name__} (torch.from_numpy converts an array)")
        if frames.ndim != 5:
            raise ValueError(f"{name} must be (T, B, C, H, W), got shape {tuple(frames.shape)}")

    def _check(self, frames: torch.Tensor, n_in: int) -> None:
        self._check_tensor("frames", frames)
        if frames.shape[2] != self.channels:
            raise ValueError(f"frames must have {self.channels} channels, got {frames.shape[2]}")
        check_like_weight("frames", frames, self.readout.weight, type(self).__name__)
        if frames.shape[-1] % self.patch or frames.shape[-2] % self.patch:
            raise ValueError(f"frame height and width must be multiples of patch={self.patch}")
        if not count("n_in", n_in, low=1) < frames.shape[0]:
            raise ValueError(f"n_in must be an int in [1, T) = [1, {frames.shape[0]}), "
                             f"got {n_in!r}")
        if not torch.isfinite(frames).all():
            raise ValueError("frames must contain only finite values")

    def forward(self, frames: torch.Tensor, n_in: int, *, mask=None, record_spikes=False):
        """Predictions of ``frames[1:]``: shape ``(T − 1, B, C, H, W)``.

        ``mask`` ``(T − n_in − 1, B)``: scheduled-sampling choices for the steps ``t >= n_in``
        (1: feed the true frame ``frames[t]``; default all 0, i.e. feed predictions).
        With ``record_spikes`` also returns the top layer's spike rate per step ``(T − 1,)``.
        """
        self._check(frames, n_in)
        n_steps, batch = frames.shape[0] - 1, frames.shape[1]
        if mask is not None:
            mask = _check_mask(mask, (n_steps - n_in, batch), frames)
        states = [None] * len(self.cells)
        params = [c.step_params() for c in self.cells]
        outputs, rates, x_gen = [], [], None
        for t in range(n_steps):
            x_t = frames[t]
            if t >= n_in:
                m = (mask[t - n_in] if mask is not None
                     else frames.new_zeros(batch)).view(batch, 1, 1, 1)
                x_t = m * frames[t] + (1 - m) * x_gen
            inp = fn.pixel_unshuffle(x_t, self.patch)
            for k, cell in enumerate(self.cells):
                if states[k] is None:
                    cell.check_step(inp)
                    states[k] = cell.initial_state(inp)
                inp, states[k] = cell.advance(inp, states[k], params[k])
            rates.append(inp.detach().mean())
            x_gen = fn.pixel_shuffle(self.readout(inp), self.patch)
            outputs.append(x_gen)
        predictions = torch.stack(outputs)
        return (predictions, torch.stack(rates)) if record_spikes else predictions

    def loss(self, frames: torch.Tensor, n_in: int, *, mask=None) -> torch.Tensor:
        """MSE of the predictions against ``frames[1:]`` (the code's training loss)."""
        return fn.mse_loss(self(frames, n_in, mask=mask), frames[1:])

    def predict(self, frames_in: torch.Tensor, n_out: int) -> torch.Tensor:
        """``n_out`` (>= 1) future frames from ``frames_in (T_in, B, C, H, W)`` (no teacher
        frames)."""
        self._check_tensor("frames_in", frames_in)
        n_out = positive_int("n_out", n_out)
        pad = frames_in.new_zeros((n_out,) + tuple(frames_in.shape[1:]))
        return self(torch.cat([frames_in, pad]), frames_in.shape[0])[-n_out:]
