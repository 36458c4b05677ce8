"""PCNN benchmarks (issue 4 targets).

* ``pcnn_vs_brian2``: 256×256 region image, 3×3 feeding and linking kernels, 200 iterations;
  the Numba kernel (through :func:`bioplastic.simulate`) against the Brian2 twin on its numpy
  target, both end to end (set-up included, Numba compilation excluded by a warm-up run).
  Target: Numba at least 20× faster, identical pulses.
* ``pcnn_torch_vs_lif``: one :class:`bioplastic.nn.PCNNConv2d` layer (intra and inter
  linking) forward + backward against a LIF conv layer of the same shape (same conv and
  batch norm, :class:`bioplastic.nn.LIF` neurons), one torch thread, interleaved rounds,
  medians, the load average before and after. Target: PCNN within 1.5× the LIF time.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..reference._cases import same_spikes
from . import Benchmark, best_time

__all__ = ["BENCHMARKS"]


def _image_case(size: int, n_steps: int):
    from ..reference.pcnn import image_case, unpack

    inputs = image_case(20261123, size=size, n_steps=n_steps)
    params, drive = unpack(inputs)
    return params, drive


def run_vs_brian2(quick: bool) -> list[dict]:
    from ..neurons.pcnn import pcnn_advance, pcnn_init, pcnn_prepare
    from ..reference.pcnn import run_pcnn_twin
    from ..simulate import simulate

    size, n_steps = (32, 20) if quick else (256, 200)
    params, drive = _image_case(size, n_steps)

    def kernel():
        kp = pcnn_prepare(params, drive.shape[1:])
        return simulate(pcnn_advance, drive, pcnn_init(drive.shape[1:], params), kp)

    numba_s = best_time(kernel, repeat=3, warmup=1)
    run_only: dict = {}
    start = time.perf_counter()
    twin = run_pcnn_twin(params, drive, record_idx=np.array([0]), timing=run_only)
    brian_s = time.perf_counter() - start   # the whole twin call: the numpy target compiles nothing
    steps, index = kernel().spike_pairs()
    identical = same_spikes(steps, index, twin)
    ratio = brian_s / numba_s
    return [{"name": "pcnn_vs_brian2", "target": "Numba >= 20x faster than Brian2 numpy, "
             "identical pulses", "size": f"{size}x{size}, 3x3, {n_steps} it",
             "numba_s": numba_s, "brian2_numpy_s": brian_s, "ratio": ratio,
             "brian2_steps_2_to_T_s": run_only.get("seconds"),
             "spikes": int(steps.size), "identical_pulses": identical,
             "met": bool(ratio >= 20.0 and identical)}]


def run_torch_vs_lif(quick: bool) -> list[dict]:
    import torch

    from ..nn import LIF, PCNNConv2d
    from ..nn.pcnn import TimeBatchNorm
    from .peers import interleaved_medians
    from .stc import _one_thread

    t, b, c_in, c_out, side = (4, 4, 4, 8, 8) if quick else (8, 16, 16, 32, 32)
    x = (torch.rand(t, b, c_in, side, side, generator=torch.Generator().manual_seed(0)) < 0.2)
    x = x.float()

    class LIFConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            self.norm = TimeBatchNorm(c_out, t, "bn")
            self.neurons = LIF(tau_m_ms=2.0, v_rest_mv=0.0, v_reset_mv=0.0, v_th_mv=1.0,
                               t_ref_ms=0.0, dt_ms=1.0, surrogate="sigmoid",
                               surrogate_scale=4.0)

        def forward(self, inp):
            current = self.norm(self.conv(inp.flatten(0, 1)).unflatten(0, inp.shape[:2]))
            return self.neurons(current)

    def train(layer):
        def run():
            layer.zero_grad()
            layer(x)[0].sum().backward()     # spiking layers return (spikes, state)
        return run

    torch.manual_seed(0)
    layers = {"lif": LIFConv()}
    for coupling in ("intra", "inter"):
        layers[coupling] = PCNNConv2d(c_in, c_out, 3, norm="bn", coupling=coupling,
                                      learnable=("decay_f", "decay_l", "decay_e", "beta"))
    load_before = list(os.getloadavg())
    with _one_thread(torch):
        med = interleaved_medians({name: train(layer) for name, layer in layers.items()},
                                  3 if quick else 7)
    load_after = list(os.getloadavg())
    rows = []
    for coupling in ("intra", "inter"):
        ratio = med[coupling] / med["lif"]
        rows.append({"name": f"pcnn_torch_{coupling}_vs_lif", "target": "PCNN conv layer "
                     "forward+backward <= 1.5x a LIF conv layer", "shape":
                     f"T={t} B={b} {c_in}->{c_out} {side}x{side}", "pcnn_s": med[coupling],
                     "lif_s": med["lif"], "ratio": ratio, "met": bool(ratio <= 1.5),
                     "load_avg_before": load_before, "load_avg_after": load_after})
    return rows


BENCHMARKS = (
    Benchmark("pcnn_vs_brian2", "PCNN 256x256, 3x3 coupling, 200 iterations: Numba vs Brian2 "
              "numpy target", run_vs_brian2, needs=("brian2",)),
    Benchmark("pcnn_torch_vs_lif", "torch PCNN conv layer vs LIF conv layer, forward+backward",
              run_torch_vs_lif, needs=("torch",)),
)
