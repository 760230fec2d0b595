"""Untrained controls: the networks the train stage would have started from.

Drawn exactly as the train stage draws its initialisation, under seeds derived from the
one seed, so that the trained network's topology is compared with a distribution of
initialisations rather than with its own only (Wheeler, Bouza & Bubenik 2021: topological
complexity need not fall with training). Neural persistence's control, shuffled weights,
is `topology.shuffled_persistence`.
"""

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
    """The network the train stage would start from under each seed, in float64.

    train.py calls lightning.seed_everything(seed) and then builds the network first thing,
    so its initial weights are the first draws of torch's generator after manual_seed(seed)
    (tests/test_controls.py checks this against the train stage's own code). Built one at a
    time, as they are needed; torch's global generator is left as it was.
    """
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = MLP.from_architecture(architecture)
        yield net.double().eval()
