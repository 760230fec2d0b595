"""Every kind of random draw of the explain stage has a stream of its own under `seed`.

The keys below are numpy SeedSequence spawn keys, one per kind of draw, so that changing
how many draws of one kind are made (more controls, more half-samples) never changes the
draws of another.
"""

import numpy as np

SAMPLE = 1  # the rows the stage analyses (sample.draw)
CONTROLS = 2  # the untrained control networks' seeds (controls.control_seeds)
SHUFFLES = 3  # the shuffles of the trained weights: generator [seed, SHUFFLES, i] (topology)
HALVES = 4  # the half-samples of each class (explain.layers)


def stream(seed: int, key: int) -> int:
    """A seed of its own for one kind of draw (a key above), derived from `seed`."""
    return int(np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1)[0])
