"""Does the activation decide how fast topology collapses? Naitzat, Zhitnikov & Lim (JMLR 2020)
report that ReLU networks reduce Betti numbers faster than tanh networks (a homeomorphism
layer by layer), and that the change concentrates in the later layers of a deep network.

For each seed and activation (ReLU; leaky ReLU, slope 0.2 as in the authors' TensorFlow;
tanh): the paper's network for the data set, initialised from the seed, trained as
benchmarks/naitzat.py trains it to 100% training accuracy, and each class's Betti numbers
read at every layer on fresh points, with params.yaml's explain.k and explain.hops. Runs
of one seed are paired: the same training set, initial weights (`naitzat.ActivatedMLP`
draws the same layers whatever the activation), batches and fresh points. A run short of
100% is reported and left out of every summary, with its seed's other runs.

Complexity of a layer: b0 + b1 summed over both classes (2 when both are (1, 0)). Printed:
per layer, the mean over seeds with a 95% t-interval (`stats.resampled_t`, the plain
one-sample t across independent seeds); the layer where each class first reads (1, 0); and
the paired comparison, over the hidden layers' mean complexity and over the first layer
where both classes read (1, 0): ReLU minus each other activation, by a paired t-test
(interval and two-sided p) and Wilcoxon's signed-rank test (two-sided; scipy's default,
exact unless differences tie or are 0; with n seeds its exact p is at least 2 / 2^n,
0.0625 for 5).

Times with `--jobs 2` on a 2-core machine shared with another engineer's test runs: D-I,
8 seeds, 4.0 min; D-II, 5 seeds, 9.5 min (its networks train 15,000 to 30,000 steps; one
seed's ReLU network stopped at 99.99%, so 4 seeds were paired).

    python benchmarks/naitzat_activations.py --seeds 8 --jobs 2 --figure docs/naitzat_activations.png
    python benchmarks/naitzat_activations.py --dataset D-II --seeds 5 --jobs 2
"""

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as scipy_stats

from topoxai import stats
from topoxai.explain import naitzat
from topoxai.params import load_params
from topoxai.pool import Pool

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
LEVEL = 0.95
Run = tuple[int, float, dict[str, list[list[int]]]]


def run(dataset: str, activation: str, seed: int, points: int, max_steps: int, k: int,
        hops: int) -> Run:  # fmt: skip
    """One network: the steps it trained, its training accuracy, its Betti numbers."""
    import torch

    torch.set_num_threads(1)  # a 15- or 25-wide network: threads cost more than they give
    rng = np.random.default_rng(seed)
    x, y = naitzat.training_set(dataset, rng)
    scale = naitzat.SCALE[dataset]
    net = naitzat.network(dataset, activation, seed)
    steps = naitzat.train(net, x, y, scale, seed=seed, max_steps=max_steps,
                          halve_every=naitzat.HALVE_EVERY[dataset])  # fmt: skip
    with torch.no_grad():
        accuracy = float((net(naitzat.scaled(x, scale)).argmax(1).numpy() == y).mean())
    clouds = naitzat.fresh(dataset, points, rng)
    return steps, accuracy, dict(naitzat.layer_betti(net, clouds, scale, k=k, hops=hops, maxdim=1))


def first_simple(betti: dict[str, list[list[int]]], classes: list[int]) -> int:
    """Index of the first layer (0 = input) where every class in `classes` reads (1, 0);
    one past the logits if none does."""
    for i, per_class in enumerate(betti.values()):
        if all(per_class[c] == [1, 0] for c in classes):
            return i
    return len(betti)


def interval(values: np.ndarray) -> str:
    estimate = stats.resampled_t(values, level=LEVEL, test_train_ratio=0)
    return f"{estimate.mean:.1f} [{estimate.low:.1f}, {estimate.high:.1f}]"


def paired(name: str, differences: np.ndarray) -> str:
    """The paired t-test and Wilcoxon's signed-rank test of `differences` (one per seed)."""
    t = stats.resampled_t(differences, level=LEVEL, test_train_ratio=0)
    # All-zero differences: no test to make (scipy raises)
    wilcoxon = 1.0 if np.all(differences == 0) else float(scipy_stats.wilcoxon(differences).pvalue)
    return (f"{name}: mean {t.mean:+.2f}, 95% interval [{t.low:+.2f}, {t.high:+.2f}], paired t "
            f"p = {t.p:.3g}; Wilcoxon p = {wilcoxon:.3g}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("D-I", "D-II"), default="D-I")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--points", type=int, help="fresh points per class (as naitzat.py's)")
    parser.add_argument("--max-steps", type=int, default=30000)
    parser.add_argument("--jobs", type=int, default=1, help="networks trained at once")
    parser.add_argument("--figure", type=Path, help="write the complexity per layer here (PNG)")
    args = parser.parse_args()
    dataset, points = args.dataset, args.points or naitzat.POINTS[args.dataset]
    explain = load_params(ROOT / "params.yaml").explain
    start = time.perf_counter()
    jobs = [(dataset, activation, seed, points, args.max_steps, explain.k, explain.hops)
            for seed in range(args.seeds) for activation in ACTIVATIONS]  # fmt: skip
    print(f"{dataset}: {args.seeds} seeds x {', '.join(ACTIVATIONS)}; {points} fresh points per "
          f"class; complexity = b0 + b1 of both classes (k = {explain.k}, {explain.hops} hops)")  # fmt: skip
    runs: dict[tuple[str, int], Run] = {}
    with Pool(args.jobs, threads=1, preload=("torch", "topoxai.explain.naitzat")) as pool:
        for job, result in zip(jobs, pool.map(run, jobs)):
            runs[job[1], job[2]] = result
            steps, accuracy, betti = result
            curve = " ".join(str(sum(map(sum, b))) for b in betti.values())
            print(f"{job[1]:<10} seed {job[2]}: {steps:>5} steps, training accuracy "
                  f"{accuracy:.4f}; complexity per layer {curve} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    seeds = [s for s in range(args.seeds) if all(runs[a, s][1] == 1 for a in ACTIVATIONS)]
    if len(seeds) < args.seeds:
        print(f"left out, short of 100% for some activation: seeds "
              f"{sorted(set(range(args.seeds)) - set(seeds))}")  # fmt: skip
    if len(seeds) < 2:
        sys.exit("fewer than 2 seeds reached 100% with every activation: raise --max-steps")
    layers = list(runs[ACTIVATIONS[0], seeds[0]][2])
    complexity = {
        a: np.array([[sum(map(sum, runs[a, s][2][layer])) for layer in layers] for s in seeds])
        for a in ACTIVATIONS
    }
    print(f"\nMean complexity per layer over {len(seeds)} seeds, {LEVEL:.0%} t-interval:")
    print("| activation | " + " | ".join(layers) + " |")
    print("|---" * (len(layers) + 1) + "|")
    for a in ACTIVATIONS:
        cells = [interval(complexity[a][:, j]) for j in range(len(layers))]
        print(f"| {a} | " + " | ".join(cells) + " |")

    classes = naitzat.CLASSES[dataset]
    print(f"\nFirst layer reading (1, 0), per seed (0 = input, {len(layers) - 1} = logits, "
          f"{len(layers)} = never):")  # fmt: skip
    first = {a: np.array([first_simple(runs[a, s][2], [0, 1]) for s in seeds]) for a in ACTIVATIONS}
    for a in ACTIVATIONS:
        per_class = [
            f"{name} {[first_simple(runs[a, s][2], [c]) for s in seeds]}"
            for c, name in enumerate(classes)
        ]
        print(f"{a:<10} " + "; ".join(per_class) + f"; both {first[a].tolist()}")

    # The later layers' share of the whole fall from input to logits (weight layers 6-10)
    middle = layers.index("hidden5")
    print(f"\nShare of the fall in complexity (input to logits) after hidden5, {LEVEL:.0%} t:")
    for a in ACTIVATIONS:
        c = complexity[a]
        share = (c[:, middle] - c[:, -1]) / np.maximum(c[:, 0] - c[:, -1], 1)
        print(f"{a:<10} {interval(100 * share)} %")

    hidden = [j for j, layer in enumerate(layers) if layer.startswith("hidden")]
    print(f"\nPaired across {len(seeds)} seeds, ReLU minus the other activation:")
    for other in ACTIVATIONS[1:]:
        mean_hidden = complexity["relu"][:, hidden].mean(1) - complexity[other][:, hidden].mean(1)
        print(paired(f"mean complexity over the hidden layers, relu - {other}", mean_hidden))
        print(paired(f"first layer with both classes (1, 0), relu - {other}",
                     (first["relu"] - first[other]).astype(float)))  # fmt: skip
    if args.figure:
        plot(dataset, layers, complexity).savefig(args.figure, dpi=100)
        print(f"wrote {args.figure}")
    print(f"({time.perf_counter() - start:.0f} s)")


def plot(dataset: str, layers: list[str], complexity: dict[str, np.ndarray]) -> "Figure":
    """Mean complexity per layer with its t-interval, one line per activation."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(layers))
    for a, values in complexity.items():
        estimates = [stats.resampled_t(values[:, j], level=LEVEL, test_train_ratio=0)
                     for j in range(len(layers))]  # fmt: skip
        ax.plot(x, [e.mean for e in estimates], marker="o", label=f"{a} ({len(values)} seeds)")
        ax.fill_between(x, [e.low for e in estimates], [e.high for e in estimates], alpha=0.2)
    ax.axhline(2, color="0.6", lw=0.8, ls="--")
    ax.set_xticks(x, layers, rotation=30)
    ax.set_ylabel("b0 + b1, both classes")
    ax.set_title(f"{dataset}: topological complexity per layer ({LEVEL:.0%} t-interval over seeds;"
                 " dashed: both classes (1, 0))", fontsize=9)  # fmt: skip
    ax.legend()
    return fig


if __name__ == "__main__":
    main()
