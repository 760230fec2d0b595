"""The rows the explain stage analyses: a seeded sample, so that no part's cost grows with the data.

numpy, pandas and pyarrow only: the stage draws its sample, and starts its worker processes
on it, before it imports torch.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from topoxai.data import SPLITS, read_split, split_path
from topoxai.errors import DataError
from topoxai.explain import seeds
from topoxai.features import SPEC_FILE, Preprocessor


@dataclass(frozen=True)
class Sample:
    """At most `max_points` rows per class (every split) and `max_test_rows` test rows."""

    folder: Path  # the preprocess stage's folder it was drawn from
    spec: Preprocessor  # its preprocessing
    points: np.ndarray  # topology: float64 features of the sampled rows of every split
    labels: np.ndarray  # their class indices
    test: np.ndarray  # Mapper and attributions: float64 features of sampled test rows
    test_labels: np.ndarray
    test_rows: np.ndarray  # the test rows' numbers in the raw CSV
    reference: np.ndarray  # integrated gradients' reference point: the mean training row
    record: dict[str, Any]  # rows available and used, and the seed: written to the metrics


def draw(data_dir: Path, *, max_points: int, max_test_rows: int, seed: int) -> Sample:
    """The processed splits in `data_dir`, sampled.

    A seeded stratified sample of at most `max_points` rows per class from every split for
    the topology, and a seeded simple random sample of at most `max_test_rows` test rows for
    Mapper and the attributions (so their shares estimate the whole split's). A class or
    split within its cap is used whole, in its order, with no draw. Features are float64:
    every analysis of the stage computes in float64 (`explain.in_float64` says why).
    """
    spec_path = data_dir / SPEC_FILE
    if not spec_path.is_file():
        raise DataError(f"{spec_path}: not found; run the preprocess stage")
    spec = Preprocessor.load(spec_path)
    splits = {name: read_split(split_path(data_dir, name), spec) for name in SPLITS}
    x = np.concatenate([splits[name][0] for name in SPLITS])
    y = np.concatenate([splits[name][1] for name in SPLITS])
    rng = np.random.default_rng(seeds.stream(seed, seeds.SAMPLE))
    chosen = stratified(y, max_points, rng)
    test_x, test_y, test_rows = splits["test"]
    tested = simple(len(test_y), max_test_rows, rng)
    classes = np.unique(y).tolist()
    name = {c: f"class_{spec.classes[c]}" for c in classes}
    record = {
        "seed": seed,
        "topology_rows": {name[c]: int((y[chosen] == c).sum()) for c in classes},
        "topology_rows_available": {name[c]: int((y == c).sum()) for c in classes},
        "test_rows": len(tested),
        "test_rows_available": len(test_y),
    }
    return Sample(
        folder=data_dir,
        spec=spec,
        points=x[chosen].astype(np.float64),
        labels=y[chosen],
        test=test_x[tested].astype(np.float64),
        test_labels=test_y[tested],
        test_rows=test_rows[tested],
        reference=splits["train"][0].astype(np.float64).mean(axis=0, keepdims=True),
        record=record,
    )


def stratified(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most `cap` rows of each class, drawn without replacement."""
    chosen = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        chosen.append(rows if len(rows) <= cap else rng.choice(rows, cap, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def simple(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most `cap` of `n` rows, drawn without replacement."""
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))
