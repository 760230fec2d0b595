"""Untrained controls: networks like the one the train stage started from.

Drawn from the distribution the train stage draws its initialisation from, under seeds
derived from the one seed, so that the trained network's topology is compared with a distribution of
initialisations rather than with its own only (Wheeler, Bouza & Bubenik 2021: topological
complexity need not fall with training). Neural persistence's control, shuffled weights,
is `topology.shuffled_persistence`.

numpy only: a control is one job of the explain stage's worker processes, drawn, run and
measured there, so those processes never load torch.
"""

import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from topoxai.errors import DataError
from topoxai.explain import seeds, topology

if TYPE_CHECKING:
    from topoxai.pool import Pool

Layer = tuple[np.ndarray, np.ndarray]  # (weight: out x in, bias), as nn.Linear holds them


def control_seeds(seed: int, count: int) -> list[int]:
    """`count` seeds for untrained controls, derived from `seed` (never `seed` itself twice)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(seeds.CONTROLS,))
    return [int(s) for s in sequence.generate_state(count)]


def initial_layers(architecture: dict[str, Any], seed: int) -> list[Layer]:
    """Every layer's weight and bias, in float64, drawn as the train stage's are drawn.

    torch's nn.Linear starts weights and biases uniform on +-1/sqrt(fan_in) (Kaiming-uniform
    with a = sqrt(5)); these are drawn from exactly those distributions, with numpy. Not with
    torch: its uniform_ rounds differently with its AVX2 and plain kernels (half of a fresh
    2x1000 network's weights differ in their last bit), and the stage must write the same
    bytes on every CPU. So a control has the train stage's distribution, not the very draws
    torch.manual_seed(seed) would give (tests/test_controls.py compares the two).
    """
    rng = np.random.default_rng(seed)
    sizes = [architecture["in_features"], *architecture["hidden"], architecture["out_features"]]
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1 / math.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, (fan_out, fan_in))
        layers.append((weight, rng.uniform(-bound, bound, fan_out)))
    return layers


def last_hidden(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """The last hidden layer's output (after ReLU) of the network `layers` on the rows `x`."""
    for weight, bias in layers[:-1]:
        x = np.maximum(x @ weight.T + bias, 0.0)
    return x


def control_persistence(
    architecture: dict[str, Any],
    seed: int,
    x: np.ndarray,
    groups: list[np.ndarray],
    k: int,
    max_scale: float,
) -> list[list[np.ndarray]]:
    """Persistence diagrams of one control's last hidden layer, one per group of rows of `x`
    (`topology.knn_persistence`): one job of the explain stage's pool."""
    hidden = last_hidden(initial_layers(architecture, seed), x)
    return [topology.knn_persistence(hidden[rows], k, max_scale) for rows in groups]


def start(
    pool: "Pool",
    architecture: dict[str, Any],
    points: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    count: int,
    k: int,
    max_scale: float,
) -> Iterator[list[list[np.ndarray]]]:
    """Start `count` controls on `pool` (seeds from `control_seeds`): per control, the
    diagrams of each class's rows of `points` (`control_persistence`), in seed order.

    The first use of the rows, so their one check: every class needs more than 2k + 1 of
    them, since the intervals build k-NN graphs on half of each class.
    """
    values, counts = np.unique(labels, return_counts=True)
    if counts.min() // 2 <= k:
        raise DataError(
            f"explain.k = {k} needs more than {2 * k + 1} rows per class (half of them for "
            f"the intervals' k-NN graphs); class index {values[counts.argmin()]} has "
            f"{counts.min()}"
        )
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    jobs = [(architecture, s, points, groups, k, max_scale) for s in control_seeds(seed, count)]
    return pool.start(control_persistence, jobs)
