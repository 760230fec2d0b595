"""Reproduce the three data sets of Naitzat, Zhitnikov & Lim, "Topology of Deep Neural
Networks" (JMLR 21(184), 2020) with the explain stage's own topology.

Each data set is built as the authors' code builds it (`topoxai.explain.naitzat` says how,
and where it departs), its network trained on the authors' training set to 100% accuracy
(or the script stops), and measured on fresh points of each class (`--points`) through
`topology.knn_persistence` and `topology.betti_numbers` with params.yaml's explain.k and
explain.hops, for the trained network and for its initialisation. The paper's finding: a
well-trained network takes each class to (1, 0) (b2 = 0 too) by the last layers. One
network, one seed (`--seed`): a reproduction of the finding, not of how often it holds
(benchmarks/naitzat_activations.py repeats it over seeds and activations).

- D-I, nine disks (9, 0) against the rest of the square (1, 9): the grid at spacing 0.19
  (10,050 points), divided by 10; 2-15x9-2; 1,500 fresh uniform points per class.
- D-II, nine pairs of linked rings, each class nine solid tori (9, 9): 1,250 points on each
  circle (45,000, the size of the authors' file), the learning rate halved every 5,000 steps;
  3-25x9-2; 2,700 fresh points per class (150 a circle, twice the fewest that read (9, 9)
  in tests/test_topology_shapes.py).
- D-III, nine shells (9, 0, 9) against nine shells with a sphere inside each (18, 0, 18):
  the authors' Fibonacci lattices (37,800 points); 3-25x9-2; Betti numbers 0 to 2, which
  needs ripser at maxdim = 2: on the input's 1,350 and 4,050 points, 4.3 s and 11.5 s
  against 0.22 s and 1.6 s at maxdim = 1, and more in the hidden layers (20-40 s a layer
  for both classes of one network). 1,350 fresh points of class 0 (75 on each of its 18
  spheres) and 4,050 of class 1 (150 on each of its 27): the fewest that read right in
  tests/test_topology_shapes.py (class 1's outer shells need 300 points each to stay apart
  from its inner spheres in the k-NN graph, a sphere 150 for its b2).

Times on one thread of a 2-core machine shared with another engineer's tests: D-I 31 s,
D-II 83 s, D-III 7.6 min (all but 8 s of it the Betti numbers).

    python benchmarks/naitzat.py                       # D-I
    python benchmarks/naitzat.py --dataset D-II
    python benchmarks/naitzat.py --dataset D-III --markdown
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from topoxai.explain import naitzat
from topoxai.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def betti_cell(betti: list[int]) -> str:
    return "(" + ", ".join(str(b) for b in betti) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(naitzat.BETTI), default="D-I")
    parser.add_argument("--points", type=int, help="fresh points of class 0 (default: above)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=30000)
    parser.add_argument("--markdown", action="store_true", help="the table as markdown rows")
    args = parser.parse_args()
    dataset, points = args.dataset, args.points or naitzat.POINTS[args.dataset]
    explain = load_params(ROOT / "params.yaml").explain
    k, hops = explain.k, explain.hops
    maxdim = 2 if dataset == "D-III" else 1
    torch.set_num_threads(1)  # a 15- or 25-wide network: threads cost more than they give

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    x, y = naitzat.training_set(dataset, rng)
    scale = naitzat.SCALE[dataset]
    net = naitzat.network(dataset, "relu", args.seed)
    initial = naitzat.network(dataset, "relu", args.seed)  # the same draw, kept untrained
    steps = naitzat.train(net, x, y, scale, seed=args.seed, max_steps=args.max_steps,
                          halve_every=naitzat.HALVE_EVERY[dataset])  # fmt: skip
    with torch.no_grad():
        accuracy = float((net(naitzat.scaled(x, scale)).argmax(1).numpy() == y).mean())
    if accuracy < 1:
        sys.exit(f"the network reached {accuracy:.4f} training accuracy in {steps} steps, not 1: "
                 "raise --max-steps or change --seed")  # fmt: skip
    hidden = naitzat.HIDDEN[dataset]
    print(f"{dataset}: {len(x)} {'grid ' if dataset == 'D-I' else ''}points "
          f"({np.bincount(y).tolist()} per class); network {len(scale)}-{hidden[0]}x{len(hidden)}"
          f"-2 trained {steps} steps of 512 rows, training accuracy {accuracy:.4f} "
          f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    clouds = naitzat.fresh(dataset, points, rng)
    names = ", ".join(f"b{d}" for d in range(maxdim + 1))
    counts = "per class" if len(clouds[0]) == len(clouds[1]) else "of class 0 and 1"
    sizes_text = (str(len(clouds[0])) if counts == "per class"
                  else f"{len(clouds[0])} and {len(clouds[1])}")  # fmt: skip
    print(f"Betti numbers ({names}) of {sizes_text} fresh points {counts}: k = {k}, "
          f"the Rips complex at {hops} hops")  # fmt: skip
    classes = naitzat.CLASSES[dataset]
    columns = [f"{name} {c}" for name in ("trained", "initial") for c in classes]
    if args.markdown:
        print(f"| ({names}) | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
    else:
        print(f"{'layer':<9} " + " ".join(f"{c:>15}" for c in columns))
    readings = [
        naitzat.layer_betti(network, clouds, scale, k=k, hops=hops, maxdim=maxdim)
        for network in (net, initial)
    ]
    for (layer, trained), (_, untrained) in zip(*readings):
        cells = [betti_cell(b) for b in trained + untrained]
        if args.markdown:
            print(f"| {layer} | " + " | ".join(cells) + " |", flush=True)
        else:
            print(f"{layer:<9} " + " ".join(f"{cell:>15}" for cell in cells), flush=True)
        if layer == "input":
            given = trained
    final = trained  # the logits'
    print(f"({time.perf_counter() - start:.0f} s)")
    print(f"final layer: class 0 {betti_cell(final[0])}; class 1 {betti_cell(final[1])}")
    true = [betti_cell(list(b[: maxdim + 1])) for b in naitzat.BETTI[dataset]]
    print(f"input: class 0 {betti_cell(given[0])}; class 1 {betti_cell(given[1])}; "
          f"by construction {true[0]} and {true[1]}")  # fmt: skip


if __name__ == "__main__":
    main()
