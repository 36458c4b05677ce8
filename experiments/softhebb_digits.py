"""Unsupervised Hebbian features on scikit-learn's digits, read out by a linear probe.

Arms (one dense layer of ``n_units`` on the 64 standardised pixels, no labels while learning):

* ``softhebb``        SoftHebb, ICLR 2023 rule (soft WTA τ, anti-Hebbian losers);
* ``softhebb_2022``   SoftHebb without anti-Hebbian losers (the 2022 rule);
* ``hard_wta``        competitive learning: hard WTA post factor with the same Oja-type decay;
* ``krotov_hopfield`` Krotov–Hopfield ranking (k = 2, Δ = 0.4, p = 2);
* ``oja``             Oja's rule, y = u, every unit on its own (all drift to the top PC);
* ``sanger``          Sanger's GHA, y = u (ordered principal components);
* ``random``          the untrained initial weights of the competitive arms (the control).

The four competitive arms share SoftHebb's update recipe (max-normalised ``dw``,
norm-dependent rate η₀ (|‖w_k‖ − 1| + 1e-10)^0.5, Gaussian start of radius R = 10; spec §3, §7),
so they differ only in the competition. Oja and Sanger use a small constant rate from a
radius-1 start (a max-normalised, radius-10 PCA rule is not what those rules are). Features for
the probe are Triangle(u) for every arm; the probe is a logistic regression (scikit-learn
defaults, ``max_iter`` raised). Also reported: the probe on raw pixels.

Usage::

    python experiments/softhebb_digits.py [--quick] [--units 32] [--epochs 5] [--out DIR]

Writes ``config.json``, ``versions.json``, ``metrics.json``, ``table.md``, ``filters.png``
(learned filters, first seed) and ``accuracy.png`` into the results folder. One seed per
repetition drives the split, the initial weights and the presentation order (the same for
every arm).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from bioplastic.data import digits_split
from bioplastic.results import default_out, prepare_results_dir, save_figure, write_json
from bioplastic.rules import (
    SoftHebbParams,
    UpdateParams,
    apply_update,
    hard_wta,
    oja_dw,
    ranked_wta,
    sanger_dw,
    soft_hebb_dw,
    triangle,
)

ARMS = ("softhebb", "softhebb_2022", "hard_wta", "krotov_hopfield", "oja", "sanger", "random")


@dataclasses.dataclass
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ARMS
    n_units: int = 32
    epochs: int = 5
    batch_size: int = 10
    test_fraction: float = 0.4        # the spec's 60/40 split (1078 train / 719 test)
    temperature: float = 1.0          # τ of the SoftHebb soft WTA (t_inv = 1)
    learning_rate: float = 0.05       # η₀ of the competitive arms (spec §7)
    power_lr: float = 0.5
    radius: float = 10.0              # initial row norm of the competitive arms and random
    krotov_k: int = 2
    krotov_delta: float = 0.4
    pca_learning_rate: float = 1e-3   # Oja / Sanger constant rate
    pca_radius: float = 1.0
    probe_max_iter: int = 2000
    out: str | None = None            # None: a fresh results/softhebb_digits-<timestamp>/


def quick_config(out: str | None = None) -> Config:
    out = out or str(default_out("softhebb_digits", quick=True))
    return Config(seeds=(0,), n_units=16, epochs=1, probe_max_iter=1000, out=out)


# ---------------------------------------------------------------------------- learning
def _competitive_dw(arm: str, config: Config):
    soft = SoftHebbParams(config.temperature, anti_hebbian=arm == "softhebb")

    def dw(x, w):
        u = x @ w.T
        if arm in ("softhebb", "softhebb_2022"):
            return soft_hebb_dw(x, u, w, soft)
        if arm == "hard_wta":
            return oja_dw(x, hard_wta(u), w, u=u)
        return oja_dw(x, ranked_wta(u, config.krotov_k, config.krotov_delta), w, u=u)
    return dw


def _pca_dw(arm: str):
    rule = oja_dw if arm == "oja" else sanger_dw
    return lambda x, w: rule(x, x @ w.T, w)


def initial_weights(arm: str, config: Config, n_features: int, rng) -> np.ndarray:
    radius = config.pca_radius if arm in ("oja", "sanger") else config.radius
    return rng.normal(scale=radius / np.sqrt(n_features), size=(config.n_units, n_features))


def train(arm: str, config: Config, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Weights (n_units, n_features) after ``config.epochs`` passes (shuffled each epoch)."""
    w = initial_weights(arm, config, x.shape[1], rng)
    if arm == "random":
        return w
    if arm in ("oja", "sanger"):
        step, update = _pca_dw(arm), UpdateParams(config.pca_learning_rate)
    else:
        step = _competitive_dw(arm, config)
        update = UpdateParams(config.learning_rate, max_normalise=True,
                              power_lr=config.power_lr)
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch_size):
            batch = x[order[start:start + config.batch_size]]
            w = apply_update(w, step(batch, w), update)
    return w


def probe_accuracy(features_tr, y_tr, features_te, y_te, max_iter: int) -> float:
    clf = LogisticRegression(max_iter=max_iter).fit(features_tr, y_tr)
    return float(clf.score(features_te, y_te))


# ------------------------------------------------------------------------------ running
def run_seed(config: Config, seed: int, bar=None) -> tuple[dict, dict]:
    """Metrics per arm for one seed, and the learned weights."""
    split = digits_split(seed, test_fraction=config.test_fraction)
    scaler = StandardScaler().fit(split.x_train.reshape(len(split.x_train), -1))
    x_tr = scaler.transform(split.x_train.reshape(len(split.x_train), -1))
    x_te = scaler.transform(split.x_test.reshape(len(split.x_test), -1))
    metrics = {"raw_pixels": {"accuracy_frac": probe_accuracy(x_tr, split.y_train, x_te,
                                                         split.y_test, config.probe_max_iter)}}
    weights = {}
    for arm in config.arms:
        # Every arm restarts the same stream: the same initial draws (so "random" is exactly
        # the competitive arms' starting point) and the same presentation order.
        rng = np.random.default_rng(seed)
        w = train(arm, config, x_tr, rng)
        accuracy = probe_accuracy(triangle(x_tr @ w.T), split.y_train, triangle(x_te @ w.T),
                                  split.y_test, config.probe_max_iter)
        norms = np.linalg.norm(w, axis=1)
        metrics[arm] = {"accuracy_frac": accuracy, "mean_weight_norm": float(norms.mean()),
                        "min_weight_norm": float(norms.min()),
                        "max_weight_norm": float(norms.max())}
        weights[arm] = w
        if bar is not None:
            bar.update(1)
    return metrics, weights


def summarise(per_seed: dict) -> dict:
    """Mean and standard deviation over seeds of every metric of every arm."""
    seeds = list(per_seed)
    summary = {}
    for arm in per_seed[seeds[0]]:
        summary[arm] = {}
        for key in per_seed[seeds[0]][arm]:
            values = np.array([per_seed[s][arm][key] for s in seeds])
            summary[arm][key] = {"mean": float(values.mean()), "std": float(values.std()),
                                 "values": values.tolist()}
    return summary


def table(summary: dict, config: Config) -> str:
    lines = [f"K = {config.n_units} units, {config.epochs} epochs, seeds {list(config.seeds)}",
             "", "| arm | probe accuracy (%) | mean ‖w‖ |", "|---|---|---|"]
    for arm, row in summary.items():
        acc = f"{100 * row['accuracy_frac']['mean']:.1f} ± {100 * row['accuracy_frac']['std']:.1f}"
        norm = row.get("mean_weight_norm")
        norm = f"{norm['mean']:.2f} ± {norm['std']:.2f}" if norm else "–"
        lines.append(f"| {arm} | {acc} | {norm} |")
    return "\n".join(lines) + "\n"


def plot(out: Path, weights: dict, summary: dict) -> None:
    from bioplastic.plot import figure

    arms = list(weights)
    n_show = min(16, next(iter(weights.values())).shape[0])
    fig, axes = figure(len(arms), n_show, figsize=(n_show * 0.8, len(arms) * 0.9),
                       squeeze=False)
    for row, arm in enumerate(arms):
        for col in range(n_show):
            ax = axes[row, col]
            filt = weights[arm][col].reshape(8, 8)
            limit = np.abs(filt).max()          # symmetric scale: white = 0
            ax.imshow(filt, cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(arm, rotation=0, ha="right", fontsize=7)
    fig.suptitle("learned filters (first seed; standardised-pixel space)")
    save_figure(fig, out / "filters.png", bbox_inches="tight")
    fig2, ax = figure(figsize=(6, 3))
    names = list(summary)
    ax.bar(names, [100 * summary[a]["accuracy_frac"]["mean"] for a in names],
           yerr=[100 * summary[a]["accuracy_frac"]["std"] for a in names], color="C0")
    ax.set_ylabel("probe accuracy (%)")
    ax.tick_params(axis="x", rotation=30)
    save_figure(fig2, out / "accuracy.png", bbox_inches="tight")


def main(config: Config) -> dict:
    config = dataclasses.replace(config, out=str(config.out or default_out("softhebb_digits")))
    out = prepare_results_dir(config.out, config)
    per_seed, first_weights = {}, None
    with tqdm(total=len(config.seeds) * len(config.arms), desc="softhebb_digits") as bar:
        for seed in config.seeds:
            per_seed[seed], weights = run_seed(config, seed, bar)
            first_weights = first_weights or weights
    summary = summarise(per_seed)
    metrics = {"summary": summary, "per_seed": per_seed, "results_dir": str(out)}
    write_json(out / "metrics.json", metrics)
    (out / "table.md").write_text(table(summary, config))
    plot(out, first_weights, summary)
    return metrics


def cli(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default=None,
                        help="new or empty folder (default: results/softhebb_digits-<timestamp>)")
    args = parser.parse_args(argv)
    config = (quick_config(args.out) if args.quick
              else Config(n_units=args.units, epochs=args.epochs, out=args.out))
    metrics = main(config)
    print(f"results written to {metrics['results_dir']}")
    print(table(metrics["summary"], config))
    return metrics


if __name__ == "__main__":
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")   # files only; the caller owns the backend
    cli()
