"""Topology through the layers: persistent homology of each class in each chosen layer, with
half-sample intervals and untrained controls drawn as training draws them."""

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from topoxai import stats
from topoxai.artifacts import architecture
from topoxai.explain import controls, seeds, topology
from topoxai.explain.inputs import NETWORKS, Inputs, layer_names, representations
from topoxai.explain.report import Report, rounded
from topoxai.params import ExplainParams
from topoxai.pool import Pool
from topoxai.progress import iterate

Key = tuple[Any, ...]  # ("full", network, layer, class) / ("half", b, ...) / ("null", i, ...)
MEASURES = {0: "b0", 1: "b1"}  # Betti numbers by dimension, and their columns in layers.tsv


def start_controls(
    inputs: Inputs, params: ExplainParams, *, seed: int, pool: Pool
) -> Iterator[list[list[np.ndarray]]]:
    """`controls.start` on the points and architecture of `inputs`."""
    return controls.start(
        pool,
        architecture(inputs.trained),
        inputs.rows.points,
        inputs.rows.labels,
        seed=seed,
        count=params.controls,
        k=params.k,
        max_scale=params.filtration_max,
    )


def topology_report(
    inputs: Inputs, params: ExplainParams, *, seed: int, level: float, pool: Pool
) -> Report:
    """Persistent homology of each class in each chosen layer, with intervals and controls
    (`start_topology`, waited for)."""
    return start_topology(inputs, params, seed=seed, level=level, pool=pool)()


def start_topology(
    inputs: Inputs,
    params: ExplainParams,
    *,
    seed: int,
    level: float,
    pool: Pool,
    control_diagrams: Iterator[list[list[np.ndarray]]] | None = None,
) -> Callable[[], Report]:
    """Start every persistence computation of the topology report on `pool`; the function
    returned waits for them and builds the report.

    Uses rows of every split (train, val and test): topology describes how the network
    reshapes the data, not how it generalises, and more points give steadier k-NN graphs.
    Intervals come from half-samples of each class (`stats.half_samples`); the trained
    network's last hidden layer is placed among `params.controls` untrained networks drawn
    as training draws them (`control_diagrams`: `start_controls`, started here if not yet).
    All of them are submitted at once, so the point clouds wait in this process until a
    worker takes them: bounded by the caps, about 70 MB with the default params.
    """
    x, y = inputs.rows.points, inputs.rows.labels
    if control_diagrams is None:
        control_diagrams = start_controls(inputs, params, seed=seed, pool=pool)
    depth = len(inputs.trained.hidden)
    last = f"hidden{depth}"  # the metrics compare the input with this one
    names = layer_names((*params.layers, "input", last), depth)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    halves = stats.half_samples(
        groups, resamples=params.resamples, seed=seeds.stream(seed, seeds.HALVES)
    )
    keys, results = _start_diagrams(inputs, x, names, groups, halves, params, pool)

    def finish() -> Report:
        # Waiting on the workers: on a terminal, a bar for each batch of computations.
        done = iterate(results, len(keys), "persistence", "diagram")
        diagrams = dict(zip(keys, done, strict=True))
        controls = iterate(control_diagrams, params.controls, "untrained controls", "net")
        for j, by_class in enumerate(controls):
            diagrams |= {("null", j, last, i): diagram for i, diagram in enumerate(by_class)}
        return _topology_report(inputs, params, diagrams, halves, names, seed=seed, level=level)

    return finish


def _topology_report(
    inputs: Inputs,
    params: ExplainParams,
    diagrams: dict["Key", list[np.ndarray]],
    halves: list[list[np.ndarray]],
    names: list[str],
    *,
    seed: int,
    level: float,
) -> Report:
    y = inputs.rows.labels
    depth = len(inputs.trained.hidden)
    every = layer_names(("input", "hidden", "logits"), depth)
    last = f"hidden{depth}"
    classes = np.unique(y).tolist()
    seeds = controls.control_seeds(seed, params.controls)
    # Betti numbers, not total persistence: in hops a total mostly sums the loops of 1 hop,
    # which a filled disk has too (tests/test_topology_shapes.py).
    betti = {key: topology.betti_numbers(dgms, params.hops) for key, dgms in diagrams.items()}

    def per_class(key: Key, dim: int) -> list[int]:
        return [betti[(*key, i)][dim] for i in range(len(classes))]

    def total(*key: Any, dim: int) -> int:
        return sum(per_class(key, dim))

    # The read-out is built so that Betti numbers do not grow with the number of points
    # (tests/test_topology_shapes.py), so the half-samples' spread is not rescaled.
    intervals = {
        (name, dim): stats.half_sample_interval(
            total("full", "trained", name, dim=dim),
            [total("half", b, name, dim=dim) for b in range(len(halves))],
            level=level,
        )
        for name in names
        for dim in MEASURES
    }
    report = Report()
    # One H0 bar per distinct row: how far a layer collapses a class (a class of k or fewer
    # distinct rows is one complete graph, (1, 0) by construction).
    distinct = {key: len(dgms[0]) for key, dgms in diagrams.items()}
    layers = _layer_table(per_class, distinct, names, every, classes)
    for dim, column in MEASURES.items():
        layers[f"trained_{column}_low"] = [intervals[name, dim][0] for name in names]
        layers[f"trained_{column}_high"] = [intervals[name, dim][1] for name in names]
    report.tables["layers.tsv"] = layers
    report.tables["betti.tsv"] = _betti_table(diagrams, last, classes, params)
    null = {
        dim: np.array([total("null", i, last, dim=dim) for i in range(len(seeds))])
        for dim in MEASURES
    }
    metrics: dict[str, Any] = {}
    for dim in MEASURES:
        metrics[f"betti_h{dim}"] = {
            "input": total("full", "trained", "input", dim=dim),
            "input_ci_low": rounded(intervals["input", dim][0]),
            "input_ci_high": rounded(intervals["input", dim][1]),
            **_compared(
                total("full", "trained", last, dim=dim),
                intervals[last, dim],
                total("full", "control", last, dim=dim),
                null[dim],
            ),
        }
    metrics["half_sample_rows"] = {
        f"class_{inputs.rows.spec.classes[c]}": len(h) for c, h in zip(classes, halves[0])
    }
    report.metrics["topology"] = metrics
    report.tables["controls.tsv"] = pd.DataFrame(
        {"control": range(len(seeds)), "seed": seeds, "betti_h0": null[0], "betti_h1": null[1]}
    )
    grid = {
        name: {
            f"{network}, class {inputs.rows.spec.classes[c]}": diagrams[
                "full", "trained" if name == "input" else network, name, i
            ]
            for network in NETWORKS
            for i, c in enumerate(classes)
        }
        for name in names
    }
    report.figures["diagrams.png"] = topology.plot_diagrams(grid, params.filtration_max)
    return report


def _compared(
    trained: float, interval: tuple[float, float], control: float, null: np.ndarray
) -> dict[str, Any]:
    """A trained value with its interval, its own initialisation's, and where it falls
    among the controls: an empirical two-sided p and a z-score (None where undefined)."""
    p, z = (
        stats.empirical_p(trained, null.tolist(), alternative="two-sided")
        if np.isfinite(trained) and np.isfinite(null).all()
        else (np.nan, np.nan)
    )
    return {
        "trained": rounded(trained),
        "ci_low": rounded(interval[0]),
        "ci_high": rounded(interval[1]),
        "control": rounded(control),
        "control_mean": rounded(float(np.mean(null))),
        "control_sd": rounded(float(np.std(null, ddof=1))),
        "p": rounded(p),
        "z": rounded(z),
    }


def _start_diagrams(
    inputs: Inputs,
    x: np.ndarray,
    names: list[str],
    groups: list[np.ndarray],
    halves: list[list[np.ndarray]],
    params: ExplainParams,
    pool: Pool,
) -> tuple[list[Key], Iterator[list[np.ndarray]]]:
    """Persistence diagrams of the trained network and its own initialisation, started on
    the pool: their keys, and the diagrams in that order.

    Keys end with the class's position. "full": each network's chosen layers on all the
    points (the input's once, under "trained"); "half": the trained network's layers on each
    half-sample.
    """
    reps = {network: representations(getattr(inputs, network), x) for network in NETWORKS}
    keys: list[Key] = []
    clouds = []
    for network, name in itertools.product(NETWORKS, names):
        if name == "input" and network != NETWORKS[0]:
            continue
        for i, rows in enumerate(groups):
            keys.append(("full", network, name, i))
            clouds.append((reps[network][name][rows], params.k, params.filtration_max))
    for b, draw in enumerate(halves):
        for name, (i, rows) in itertools.product(names, enumerate(draw)):
            keys.append(("half", b, name, i))
            clouds.append((reps["trained"][name][rows], params.k, params.filtration_max))
    return keys, pool.start(topology.knn_persistence, clouds)


def _layer_table(
    per_class: Callable[[Key, int], list[int]],
    distinct: dict[Key, int],
    names: list[str],
    every: list[str],
    classes: list[int],
) -> pd.DataFrame:
    """Betti numbers per layer: one row per layer, columns network x dimension (x class), and
    the distinct rows each network's layer has per class."""
    rows = []
    for name in names:
        row: dict[str, Any] = {"depth": every.index(name), "layer": name}
        for network in NETWORKS:
            source = "trained" if name == "input" else network  # one input for both
            for dim, column in MEASURES.items():
                values = per_class(("full", source, name), dim)
                row[f"{network}_{column}"] = sum(values)
                row.update({f"{network}_{column}_class{c}": v for c, v in zip(classes, values)})
            for i, c in enumerate(classes):
                row[f"{network}_distinct_class{c}"] = distinct["full", source, name, i]
        rows.append(row)
    return pd.DataFrame(rows)


def _betti_table(
    diagrams: dict[Key, list[np.ndarray]],
    last: str,
    classes: list[int],
    params: ExplainParams,
) -> pd.DataFrame:
    """Betti-0 and Betti-1 curves (summed over classes) at each hop count up to
    `filtration_max`: input and last hidden layer."""
    scales = np.arange(params.filtration_max + 1, dtype=np.float64)  # every hop count
    table: dict[str, Any] = {"scale": scales}
    for label, network, name in (("input", "trained", "input"), ("trained", "trained", last),
                                 ("control", "control", last)):  # fmt: skip
        for dim in (0, 1):
            curves = [
                topology.betti_curve(diagrams["full", network, name, i][dim], scales)
                for i in range(len(classes))
            ]
            table[f"{label}_b{dim}"] = np.sum(curves, axis=0)
    return pd.DataFrame(table)
