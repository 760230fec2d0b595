"""Untrained controls: networks like the one the train stage started from.

Drawn from the distribution the train stage draws its initialisation from, under seeds
derived from the one seed, so that the trained network's topology is compared with a distribution of
initialisations rather than with its own only (Wheeler, Bouza & Bubenik 2021: topological
complexity need not fall with training). Neural persistence's control, shuffled weights,
is `topology.shuffled_persistence`.
"""

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from topoxai.model import MLP

CONTROL_STREAM = 2  # a spawn key under `seed`: the controls' seeds are a stream of their own


def control_seeds(seed: int, count: int) -> list[int]:
    """`count` seeds for untrained controls, derived from `seed` (never `seed` itself twice)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(CONTROL_STREAM,))
    return [int(s) for s in sequence.generate_state(count)]


def untrained(architecture: dict[str, Any], seeds: list[int]) -> Iterator[MLP]:
    """An untrained network per seed, in float64, drawn as the train stage's is drawn.

    torch's nn.Linear starts weights and biases uniform on +-1/sqrt(fan_in) (Kaiming-uniform
    with a = sqrt(5)); these are drawn from exactly those distributions, with numpy. Not with
    torch: its uniform_ rounds differently with its AVX2 and plain kernels (half of a fresh
    2x1000 network's weights differ in their last bit), and the stage must write the same
    bytes on every CPU. So a control has the train stage's distribution, not the very draws
    torch.manual_seed(seed) would give (tests/test_controls.py compares the two). Built one
    at a time, as they are needed; torch's global generator is left as it was.
    """
    for seed in seeds:
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # MLP() draws torch's own initialisation
            net = MLP.from_architecture(architecture).double()
        with torch.no_grad():
            for layer in [*net.hidden, net.output]:
                bound = 1 / math.sqrt(layer.in_features)
                for parameter in (layer.weight, layer.bias):
                    parameter.copy_(torch.from_numpy(rng.uniform(-bound, bound, parameter.shape)))
        yield net.eval()
