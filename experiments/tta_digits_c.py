"""Test-time adaptation on digits-C: source vs BN adapt vs Tent vs NHL (reconstruction).

A small conv net (conv → BN → ReLU blocks, global pooling, linear classifier) is trained on the
clean digits train split (60 %, stratified). Each method then adapts on the corrupted test split
(719 images, batches of ``batch_size``, one pass, no labels) of every digits-C corruption:

* **reset** protocol (Tent's): a fresh adapter per (severity, corruption);
* **continual**: one adapter per method over all corruptions in the canonical order, never reset.

The geometric suite (rotate, shear, scale, translate) is the held-out set the NHL/Tent learning
rates were chosen on (docs/tta.md); it is reported separately, never averaged with the 15.

Usage::

    python experiments/tta_digits_c.py [--quick] [--all-severities] [--out DIR]

Writes ``config.json``, ``versions.json``, ``metrics.json``, ``table.md`` and
``tta_digits_c.png`` into the results folder. One seed list drives everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import bioplastic.tta as tta
from bioplastic.data import DIGITS_CORRUPTIONS, GEOMETRIC_CORRUPTIONS, corrupt_digits, digits_split
from bioplastic.results import default_out, prepare_results_dir, write_json

METHODS = ("source", "bn_adapt", "tent", "nhl")


@dataclasses.dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    severities: tuple[int, ...] = (5,)
    corruptions: tuple[str, ...] = DIGITS_CORRUPTIONS
    held_out: tuple[str, ...] = GEOMETRIC_CORRUPTIONS
    continual: bool = True
    split_seed: int = 0
    test_fraction: float = 0.4          # the spec's calibration split: 719 test images
    width: int = 16                     # conv1 channels; conv2/conv3 have 2x/4x
    epochs: int = 40
    train_lr: float = 3e-3
    train_batch: int = 64
    batch_size: int = 64                # test batch (Tent uses 128/200 on CIFAR; 719 images here)
    tent_lr: float = 1e-3
    nhl_lr: float = 1e-3
    nhl_eta: float = 0.05
    nhl_norm_mode: str = "direction"
    torch_threads: int = 1            # tiny tensors: threads only add contention
    out: str | None = None            # None: a fresh results/tta_digits_c-<timestamp>/


def quick_config(out: str | None = None) -> Config:
    out = out or str(default_out("tta_digits_c", quick=True))
    return Config(seeds=(0,), corruptions=("gaussian_noise", "contrast", "motion_blur"),
                  held_out=("rotate",), epochs=3, out=out)


# ------------------------------------------------------------------------------ model
def make_model(width: int, n_classes: int = 10) -> nn.Module:
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*block(1, width), *block(width, 2 * width), nn.MaxPool2d(2),
                         *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4 * width, n_classes))


def train_source(config: Config, x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    """Adam on cross-entropy over the clean train split (labels are used only here)."""
    torch.manual_seed(seed)
    model = make_model(config.width)
    opt = torch.optim.Adam(model.parameters(), lr=config.train_lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), config.train_batch):
            idx = order[start:start + config.train_batch]
            if len(idx) < 2:
                continue
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


# ------------------------------------------------------------------------- adaptation
def make_adapter(method: str, model: nn.Module, config: Config) -> tta.Adapter:
    if method == "source":
        return tta.Source(model)
    if method == "bn_adapt":
        return tta.BNAdapt(model)
    if method == "tent":
        return tta.Tent(model, lr=config.tent_lr)
    if method == "nhl":
        return tta.NHL(model, lr=config.nhl_lr, eta=config.nhl_eta, norm_mode=config.nhl_norm_mode)
    raise ValueError(f"unknown method {method!r}")


def batch_slices(n: int, batch: int) -> list[slice]:
    """Consecutive batches; a trailing single sample joins the previous batch (BN needs 2)."""
    starts = list(range(0, n, batch))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [n], strict=True)]


def stream_error(adapter: tta.Adapter, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Error in % of the adapter's predictions over one pass of the stream."""
    wrong = 0
    with torch.no_grad():
        for sl in batch_slices(len(x), batch):
            logits = adapter(torch.tensor(x[sl], dtype=torch.float32))
            wrong += int((logits.argmax(1).numpy() != y[sl]).sum())
    return 100.0 * wrong / len(x)


def corrupted_sets(config: Config, x_test, seed, names, severity) -> dict[str, np.ndarray]:
    sets = {}
    for i, name in enumerate(names):
        corruption_seed = 100_000 * seed + 100 * severity + i
        sets[name] = corrupt_digits(x_test, name, severity, seed=corruption_seed)
    return sets


def run_seed(config: Config, seed: int, progress) -> dict:
    split = digits_split(config.split_seed, test_fraction=config.test_fraction)
    model = train_source(config, split.x_train, split.y_train, seed)
    result = {"clean": {m: stream_error(make_adapter(m, model, config), split.x_test,
                                        split.y_test, config.batch_size) for m in METHODS}}
    for severity in config.severities:
        for group, names in (("test", config.corruptions), ("held_out", config.held_out)):
            sets = corrupted_sets(config, split.x_test, seed, names, severity)
            for name, x in sets.items():
                for method in METHODS:   # reset protocol: a fresh adapter per corruption
                    err = stream_error(make_adapter(method, model, config), x, split.y_test,
                                       config.batch_size)
                    result.setdefault(f"{group}/s{severity}", {}).setdefault(method, {})[name] = err
                progress.update(1)
    if config.continual:
        sets = corrupted_sets(config, split.x_test, seed, config.corruptions, 5)
        for method in METHODS:
            adapter = make_adapter(method, model, config)   # never reset
            result.setdefault("continual/s5", {})[method] = {
                name: stream_error(adapter, x, split.y_test, config.batch_size)
                for name, x in sets.items()}
    return result


# ---------------------------------------------------------------------------- summary
def summarise(per_seed: list[dict]) -> dict:
    """Mean and std over seeds of every error, plus the mean over corruptions."""
    summary: dict = {}
    for setting in per_seed[0]:
        summary[setting] = {}
        for method in METHODS:
            if setting == "clean":
                vals = np.array([r["clean"][method] for r in per_seed])
                summary[setting][method] = {"mean": vals.mean(), "std": vals.std()}
                continue
            names = list(per_seed[0][setting][method])
            table = np.array([[r[setting][method][n] for n in names] for r in per_seed])
            summary[setting][method] = {
                "per_corruption": {n: {"mean": table[:, j].mean(), "std": table[:, j].std()}
                                   for j, n in enumerate(names)},
                "mean": table.mean(1).mean(), "std": table.mean(1).std()}
    return summary


def markdown_table(summary: dict, setting: str) -> str:
    names = list(summary[setting][METHODS[0]]["per_corruption"])
    lines = [f"### {setting} (error %, mean ± std over seeds)", "",
             "| corruption | " + " | ".join(METHODS) + " |",
             "|---" * (len(METHODS) + 1) + "|"]
    for n in names:
        cells = [f"{summary[setting][m]['per_corruption'][n]['mean']:.1f} ± "
                 f"{summary[setting][m]['per_corruption'][n]['std']:.1f}" for m in METHODS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    means = [f"**{summary[setting][m]['mean']:.1f} ± {summary[setting][m]['std']:.1f}**"
             for m in METHODS]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, setting: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary[setting][METHODS[0]]["per_corruption"])
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 3.5))
    width = 0.8 / len(METHODS)
    for k, m in enumerate(METHODS):
        pc = summary[setting][m]["per_corruption"]
        ax.bar(np.arange(len(names)) + k * width, [pc[n]["mean"] for n in names], width,
               yerr=[pc[n]["std"] for n in names], label=f"{m} ({summary[setting][m]['mean']:.1f})")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, ha="right")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"digits-C, {setting}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(config: Config) -> dict:
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:   # the Numba Hebbian path calls NumPy's BLAS: same thread budget as torch
        with threadpool_limits(limits=config.torch_threads, user_api="blas"):
            return _run(config)
    finally:
        torch.set_num_threads(threads)


def _run(config: Config) -> dict:
    config = dataclasses.replace(config, out=str(config.out or default_out("tta_digits_c")))
    out = prepare_results_dir(config.out, config)
    start = time.perf_counter()
    total = len(config.seeds) * len(config.severities) * (len(config.corruptions)
                                                          + len(config.held_out))
    with tqdm(total=total, desc="tta_digits_c") as progress:
        per_seed = [run_seed(config, seed, progress) for seed in config.seeds]
    summary = summarise(per_seed)
    tables = "".join(markdown_table(summary, s) + "\n" for s in summary if s != "clean")
    clean = ", ".join(f"{m} {summary['clean'][m]['mean']:.1f}" for m in METHODS)
    (out / "table.md").write_text(f"clean test error %: {clean}\n\n" + tables)
    plot(summary, f"test/s{max(config.severities)}", out / "tta_digits_c.png")
    metrics = {"error_pct": summary, "per_seed_error_pct": per_seed,
               "run_time_s": time.perf_counter() - start, "results_dir": str(out),
               "protocol": "reset per (severity, corruption); continual = no reset, severity 5, "
                           "canonical order; error in %; one pass; batch "
                           f"{config.batch_size}; test split {config.test_fraction}"}
    write_json(out / "metrics.json", metrics)
    return metrics


def parse_args(argv=None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--all-severities", action="store_true", help="severities 1..5")
    parser.add_argument("--out", default=None,
                        help="new or empty folder (default: results/tta_digits_c-<timestamp>)")
    args = parser.parse_args(argv)
    config = quick_config(args.out) if args.quick else Config(out=args.out)
    if args.all_severities:
        config = dataclasses.replace(config, severities=(1, 2, 3, 4, 5))
    return config


if __name__ == "__main__":
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")   # files only; the caller owns the backend
    result = main(parse_args())
    print(f"results written to {result['results_dir']}\n")
    print((Path(result["results_dir"]) / "table.md").read_text())
