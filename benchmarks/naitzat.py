"""Reproduce data set D-I of Naitzat, Zhitnikov & Lim, "Topology of Deep Neural Networks"
(JMLR 21(184), 2020) with the explain stage's own topology.

D-I is built as the authors' code builds it (topnn_framework, raw_circles_generator.py): a
grid on [-10, 10]² with spacing 0.19; class "disks" is nine disks of radius 1.3, one at the
origin and eight on a circle of radius 7; class "rest" is the rest of the square, less a
margin of 0.5 around each disk. So the disks are β = (9, 0) and the rest (1, 9). The
paper's network for it, 2 -> 15 x 9 -> 2 with ReLU, is trained on the grid (coordinates
divided by 10, to unit scale; Adam, batches of 512) to 100% accuracy (or the script stops)
and measured on fresh uniform points of each class (`--points` per class), through
`topology.knn_persistence` and `topology.betti_numbers` with params.yaml's explain.k and
explain.hops, for the trained network and for its initialisation. The paper's finding: a
well-trained network takes each class to (1, 0) by the last layers. One network, one seed
(`--seed`): a reproduction of the finding, not of how often it holds.

    python benchmarks/naitzat.py              # ~35 s, on one thread
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from topoxai.explain import topology
from topoxai.explain.inputs import representations
from topoxai.model import MLP
from topoxai.params import load_params

ROOT = Path(__file__).resolve().parents[1]
RADIUS, MARGIN, RING = 1.3, 0.5, 7.0
ANGLES = 2 * np.pi * np.arange(8) / 8
CENTRES = np.vstack([[0.0, 0.0], RING * np.column_stack([np.cos(ANGLES), np.sin(ANGLES)])])
CLASSES = ("disks", "rest")


def label(points: np.ndarray) -> np.ndarray:
    """0 inside a disk, 1 outside every disk and its margin, -1 in a margin (dropped)."""
    nearest = np.linalg.norm(points[:, None, :] - CENTRES[None], axis=2).min(axis=1)
    return np.where(nearest < RADIUS, 0, np.where(nearest >= RADIUS + MARGIN, 1, -1))


def grid() -> tuple[np.ndarray, np.ndarray]:
    """The authors' training set: the grid at spacing 0.19, margins removed."""
    axis = np.arange(-10, 10, 0.19)
    points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    y = label(points)
    return points[y >= 0], y[y >= 0]


def fresh(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n uniform points of each class."""
    clouds = []
    for c in (0, 1):
        found = np.empty((0, 2))
        while len(found) < n:
            points = rng.uniform(-10, 10, (20 * n, 2))
            found = np.concatenate([found, points[label(points) == c]])
        clouds.append(found[:n])
    return clouds


def train(x: np.ndarray, y: np.ndarray, *, seed: int, max_steps: int) -> tuple[MLP, MLP, int]:
    """The trained network, its initialisation, and the steps taken to 100% accuracy."""
    torch.manual_seed(seed)
    net = MLP(2, (15,) * 9, 2)
    initial = MLP(2, (15,) * 9, 2)
    initial.load_state_dict(net.state_dict())
    xs, ys = torch.tensor(x, dtype=torch.float32) / 10, torch.tensor(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, max_steps + 1):
        batch = torch.randint(len(xs), (512,), generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(xs[batch]), ys[batch]).backward()
        optimizer.step()
        if step % 250 == 0:
            with torch.no_grad():
                if (net(xs).argmax(dim=1) == ys).all():
                    return net, initial, step
    return net, initial, max_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1500, help="fresh points per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=30000)
    args = parser.parse_args()
    explain = load_params(ROOT / "params.yaml").explain
    k, hops = explain.k, explain.hops
    torch.set_num_threads(1)  # a 15-wide network: threads cost more than they give

    start = time.perf_counter()
    x, y = grid()
    net, initial, steps = train(x, y, seed=args.seed, max_steps=args.max_steps)
    with torch.no_grad():
        accuracy = float(
            (net(torch.tensor(x, dtype=torch.float32) / 10).argmax(1).numpy() == y).mean()
        )
    if accuracy < 1:
        sys.exit(f"the network reached {accuracy:.4f} training accuracy in {steps} steps, not 1: "
                 "raise --max-steps or change --seed")  # fmt: skip
    print(f"D-I: {len(x)} grid points ({np.bincount(y).tolist()} per class); network "
          f"2-15x9-2 trained {steps} steps of 512 rows, training accuracy {accuracy:.4f} "
          f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    clouds = fresh(args.points, np.random.default_rng(args.seed))
    print(f"Betti numbers (b0, b1) of {args.points} fresh points per class: k = {k}, "
          f"the Rips complex at {hops} hops")  # fmt: skip
    print(f"{'layer':<9} {'trained ' + CLASSES[0]:>15} {'trained ' + CLASSES[1]:>15} "
          f"{'initial ' + CLASSES[0]:>15} {'initial ' + CLASSES[1]:>15}")  # fmt: skip
    reps = {
        name: [representations(network.double(), cloud / 10) for cloud in clouds]
        for name, network in (("trained", net), ("initial", initial))
    }
    final = []
    for layer in reps["trained"][0]:
        cells = []
        for name in ("trained", "initial"):
            for c in (0, 1):
                points = reps[name][c][layer]
                betti = topology.betti_numbers(topology.knn_persistence(points, k, hops), hops)
                cells.append(f"({betti[0]}, {betti[1]})")
                if name == "trained":
                    final.append(tuple(betti))
        print(f"{layer:<9} " + " ".join(f"{cell:>15}" for cell in cells), flush=True)
    (a0, a1), (b0, b1) = final[-2:]  # the logits' row, trained
    print(f"({time.perf_counter() - start:.0f} s)")
    print(f"final layer: class 0 ({a0}, {a1}); class 1 ({b0}, {b1})")


if __name__ == "__main__":
    main()
