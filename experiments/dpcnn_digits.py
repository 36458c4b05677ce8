"""DPCNN on digits: does inter-map PCNN coupling match a wider LIF network with half the neurons?

Claim under test (Yi et al., "Deep Pulse-Coupled Neural Networks", arXiv 2401.08649, abstract):
a DPCNN uses 50 % of the neurons, 53 % of the synapses and 73 % of the training time of a
*wide* LIF SNN of the same depth, at similar or better accuracy. Here on scikit-learn's digits
(8×8, upsampled to 16×16) with a small VGG-style network, trained with BPTT and surrogate
gradients, over several seeds. Arms:

* ``lif``: LIF neurons (:class:`bioplastic.nn.LIF`), base widths;
* ``lif_wide``: LIF, widths × ``wide_factor`` (2: about twice the neurons);
* ``pcnn_intra``: PCNN neurons (:class:`bioplastic.nn.PCNNConv2d`), fixed intra-map linking;
* ``pcnn_inter``: PCNN neurons, learnable inter-map linking (C²k² extra synapses per layer).

Network: ``[conv3×3 → BN → neurons → avgpool2] × 2 → linear readout`` of the pooled spikes at
every step, logits averaged over time; the image is the input current at every step (direct
encoding). Same surrogate (sigmoid, scale 4), optimiser and schedule for every arm.

Counts: *neurons* = spiking units; *synapses* = weight entries (conv, linear, linking kernels,
fixed ones included); *connections* = sum over post-units of their fan-in. Training time is
wall-clock on this machine (``threads`` torch threads).

    python experiments/dpcnn_digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bioplastic.data import digits_split
from bioplastic.nn import LIF, PCNNConv2d
from bioplastic.nn.pcnn import TimeBatchNorm
from bioplastic.results import default_out, prepare_results_dir, save_figure, write_json

ARMS = ("lif", "lif_wide", "pcnn_intra", "pcnn_inter")


@dataclasses.dataclass
class Config:
    seed: int = 0
    n_seeds: int = 3
    arms: tuple = ARMS
    widths: tuple = (8, 16)          # channels of the two conv blocks (base arms)
    wide_factor: int = 2
    upsample: int = 2                # 8×8 digits -> 16×16
    time_steps: int = 4
    epochs: int = 15
    batch_size: int = 64
    lr: float = 5e-3
    norm: str = "bn"                 # PCNN arms: "bn" (as LIF) or "rftd", "tdbn", ...
    max_train: int | None = None     # subsample the training set (quick runs)
    threads: int = 1
    out: str | None = None           # None: a fresh results/dpcnn_digits-<timestamp>/


class LIFBlock(torch.nn.Module):
    """conv → BN (all frames) → LIF neurons (threshold 1, dt = 1 ms, tau_m = 2 ms, no refr.)."""

    def __init__(self, c_in: int, c_out: int, time_steps: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = TimeBatchNorm(c_out, time_steps, "bn")
        self.neurons = LIF(tau_m_ms=2.0, v_rest_mv=0.0, v_reset_mv=0.0, v_th_mv=1.0,
                           t_ref_ms=0.0, dt_ms=1.0, surrogate="sigmoid", surrogate_scale=4.0)

    def forward(self, x):
        current = self.norm(self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2]))
        return self.neurons(current)           # (spikes, final state), as PCNNConv2d


def _block(arm: str, c_in: int, c_out: int, config: Config) -> torch.nn.Module:
    if arm.startswith("lif"):
        return LIFBlock(c_in, c_out, config.time_steps)
    coupling = arm.split("_")[1]
    return PCNNConv2d(c_in, c_out, 3, norm=config.norm, time_steps=config.time_steps,
                      coupling=coupling, surrogate="sigmoid", surrogate_scale=4.0,
                      learnable=("decay_f", "decay_l", "decay_e", "beta"),
                      seed=0)   # inter kernel's cross-map noise: the seed the documented runs used


class SpikingVGG(torch.nn.Module):
    def __init__(self, arm: str, config: Config, side: int):
        super().__init__()
        factor = config.wide_factor if arm == "lif_wide" else 1
        c1, c2 = (w * factor for w in config.widths)
        self.blocks = torch.nn.ModuleList([_block(arm, 1, c1, config),
                                           _block(arm, c1, c2, config)])
        self.readout = torch.nn.Linear(c2 * (side // 4) ** 2, 10)
        self.shapes = [(c1, side, side), (c2, side // 2, side // 2)]
        self.time_steps = config.time_steps

    def forward(self, images):
        x = images.unsqueeze(0).expand(self.time_steps, *images.shape)   # (T, B, 1, H, W)
        for block in self.blocks:
            x, _ = block(x)                                              # spikes, state
            x = torch.nn.functional.avg_pool2d(x.flatten(0, 1), 2).unflatten(0, x.shape[:2])
        return self.readout(x.flatten(2)).mean(0)                         # (B, 10)


def counts(model: SpikingVGG) -> dict:
    """Neurons, synapses (weight entries) and connections (fan-in summed over post-units)."""
    neurons = sum(int(np.prod(s)) for s in model.shapes)
    synapses, connections = model.readout.weight.numel(), model.readout.weight.numel()
    for block, (c, h, w) in zip(model.blocks, model.shapes, strict=True):
        conv = block.conv.weight
        synapses += conv.numel()
        connections += c * h * w * int(np.prod(conv.shape[1:]))
        link = getattr(getattr(block, "neurons", None), "link_weight", None)
        if link is not None and getattr(block.neurons, "coupling", "none") != "none":
            synapses += link.numel()
            connections += c * h * w * int(np.prod(link.shape[1:]))
    return {"neurons": neurons, "synapses": synapses, "connections": connections}


def _accuracy(model, x, y, batch_size) -> float:
    model.eval()
    with torch.no_grad():
        preds = [model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return float((torch.cat(preds) == y).float().mean())


def train_arm(arm: str, seed: int, config: Config, progress=None) -> dict:
    split = digits_split(seed, upsample=config.upsample)
    x_tr, y_tr = torch.tensor(split.x_train, dtype=torch.float32), torch.tensor(split.y_train)
    if config.max_train is not None:
        x_tr, y_tr = x_tr[:config.max_train], y_tr[:config.max_train]
    x_te, y_te = torch.tensor(split.x_test, dtype=torch.float32), torch.tensor(split.y_test)
    torch.manual_seed(seed)
    model = SpikingVGG(arm, config, x_tr.shape[-1])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(config.epochs, 1))
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_tr), generator=generator)
        for i in range(0, len(order), config.batch_size):
            batch = order[i:i + config.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x_tr[batch]), y_tr[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        if progress is not None:
            progress.update(1)
    train_s = time.perf_counter() - start
    return {"arm": arm, "seed": seed, "test_accuracy_frac": _accuracy(model, x_te, y_te, 256),
            "train_accuracy_frac": _accuracy(model, x_tr, y_tr, 256), "train_time_s": train_s,
            **counts(model)}


def summarise(runs: list[dict], arms) -> dict:
    summary = {}
    for arm in arms:
        rows = [r for r in runs if r["arm"] == arm]
        acc = np.array([r["test_accuracy_frac"] for r in rows])
        summary[arm] = {"test_accuracy_frac_mean": float(acc.mean()),
                        "test_accuracy_frac_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                        "train_time_s_mean": float(np.mean([r["train_time_s"] for r in rows])),
                        **{k: rows[0][k] for k in ("neurons", "synapses", "connections")}}
    if "lif_wide" in summary:
        wide = summary["lif_wide"]
        for row in summary.values():
            row["vs_lif_wide"] = {k: row[k] / wide[k] for k in
                                  ("neurons", "synapses", "train_time_s_mean")}
    return summary


def _plot(summary: dict, out: Path) -> None:
    from bioplastic.plot import figure

    arms = list(summary)
    fig, axes = figure(1, 3, figsize=(11, 3.2))
    _plot_accuracy(axes[0], summary, arms)
    for ax, key, label in zip(axes[1:], ("neurons", "train_time_s_mean"),
                              ("neurons", "training time (s)"), strict=True):
        ax.bar(arms, [summary[a][key] for a in arms], color="0.6")
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    save_figure(fig, out / "dpcnn_digits.png")


def _plot_accuracy(ax, summary: dict, arms: list[str]) -> None:
    """Mean ± std as points on an axis fitted to the data: the arms differ by about one
    point of accuracy, which bars from 0 would hide (so no bars here)."""
    mean = np.array([100 * summary[a]["test_accuracy_frac_mean"] for a in arms])
    std = np.array([100 * summary[a]["test_accuracy_frac_std"] for a in arms])
    ax.errorbar(arms, mean, yerr=std, fmt="o", color="C0", capsize=4)
    for k, m in enumerate(mean):
        ax.annotate(f"{m:.1f}", (k, m), textcoords="offset points", xytext=(8, -3),
                    fontsize="small")
    span = max(float(np.max(mean + std) - np.min(mean - std)), 1.0)
    ax.set_ylim(np.min(mean - std) - 0.3 * span, np.max(mean + std) + 0.3 * span)
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.set_title("test accuracy (%), axis not from 0")
    ax.tick_params(axis="x", rotation=30)


def main(config: Config) -> dict:
    torch.set_num_threads(config.threads)
    config = dataclasses.replace(config, out=str(config.out or default_out("dpcnn_digits")))
    out = prepare_results_dir(config.out, config)
    seeds = [config.seed + i for i in range(config.n_seeds)]
    runs = []
    with tqdm(total=len(seeds) * len(config.arms) * config.epochs, desc="dpcnn_digits") as bar:
        for seed in seeds:
            for arm in config.arms:
                runs.append(train_arm(arm, seed, config, bar))
    metrics = {"runs": runs, "summary": summarise(runs, config.arms), "results_dir": str(out)}
    write_json(out / "metrics.json", metrics)
    _plot(metrics["summary"], out)
    return metrics


def quick_config(out: str | None = None) -> Config:
    out = out or str(default_out("dpcnn_digits", quick=True))
    return Config(n_seeds=1, epochs=1, time_steps=2, max_train=128, batch_size=64, out=out)


if __name__ == "__main__":
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")   # files only; the caller owns the backend
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--out", default=None,
                        help="new or empty folder (default: results/dpcnn_digits-<timestamp>)")
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--norm", default=Config.norm)
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--widths", type=int, nargs=2, default=Config.widths)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=ARMS)
    args = parser.parse_args()
    cfg = quick_config(args.out) if args.quick else Config(
        seed=args.seed, out=args.out, norm=args.norm, epochs=args.epochs,
        widths=tuple(args.widths), arms=tuple(args.arms))
    result = main(cfg)
    print(f"results written to {result['results_dir']}")
    for arm, row in result["summary"].items():
        print(f"{arm:11s} acc {row['test_accuracy_frac_mean']:.3f}±"
              f"{row['test_accuracy_frac_std']:.3f}  "
              f"neurons {row['neurons']}  synapses {row['synapses']}  "
              f"time {row['train_time_s_mean']:.1f}s")
