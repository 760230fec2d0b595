"""The weights: neural persistence of every weight matrix beside shuffles of its own weights."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from topoxai import stats
from topoxai.explain import topology
from topoxai.explain.inputs import NETWORKS, Inputs
from topoxai.explain.report import Report, rounded
from topoxai.model import MLP
from topoxai.params import ExplainParams
from topoxai.pool import Pool


def _weights(net: MLP) -> list[np.ndarray]:
    return [layer.weight.detach().double().numpy() for layer in [*net.hidden, net.output]]


def start_shuffles(
    inputs: Inputs, params: ExplainParams, *, seed: int, pool: Pool
) -> Iterator[list[list[float]]]:
    """Start `params.controls` shuffles of the trained weights on `pool` (one job per worker;
    `topology.shuffled_persistence`)."""
    chunks = np.array_split(np.arange(params.controls), pool.workers)
    weights = _weights(inputs.trained)
    jobs = [(weights, seed, range(c[0], c[-1] + 1)) for c in chunks if len(c)]
    return pool.start(topology.shuffled_persistence, jobs)


def weights_report(
    inputs: Inputs,
    params: ExplainParams,
    *,
    seed: int,
    level: float,
    pool: Pool,
    shuffles: Iterator[list[list[float]]] | None = None,
) -> Report:
    """Neural persistence of every weight matrix, beside its matched random control.

    Girrbach et al. (TMLR 2023) show that neural persistence mostly tracks the weights'
    variance, so each trained layer is compared with `params.controls` shuffles of its own
    weights (`shuffles`: `start_shuffles`, started here if not already; the same variance and
    values, no structure): an interval of those draws, and where the trained value falls
    among them (two-sided p, z).
    """
    if shuffles is None:
        shuffles = start_shuffles(inputs, params, seed=seed, pool=pool)
    report = Report()
    table: dict[str, Any] = {}
    for network in NETWORKS:
        weights = _weights(getattr(inputs, network))
        table[f"{network}_np"] = topology.neural_persistence(weights)
        table[f"{network}_weight_std"] = [float(w.std()) for w in weights]
    draws = np.array([row for rows in shuffles for row in rows])  # controls x layers
    names = [*(f"hidden{i}" for i in range(1, len(inputs.trained.hidden) + 1)), "logits"]
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    table["matched_np"], table["matched_np_low"], table["matched_np_high"] = (
        draws.mean(axis=0), low, high
    )  # fmt: skip
    frame = pd.DataFrame({"depth": range(1, len(names) + 1), "layer": names, **table})
    report.tables["neural_persistence.tsv"] = frame
    report.metrics["neural_persistence"] = {
        network: {
            **{n: rounded(v) for n, v in zip(names, frame[f"{network}_np"])},
            "mean": rounded(frame[f"{network}_np"].mean()),
        }
        for network in NETWORKS
    }
    trained = np.array(table["trained_np"])
    columns = {**{n: (trained[i], draws[:, i]) for i, n in enumerate(names)},
               "mean": (trained.mean(), draws.mean(axis=1))}  # fmt: skip
    report.metrics["neural_persistence_matched"] = {
        name: _matched(value, null, level) for name, (value, null) in columns.items()
    }
    report.metrics["weight_std"] = {
        network: {n: rounded(v) for n, v in zip(names, frame[f"{network}_weight_std"])}
        for network in NETWORKS
    }
    report.figures["neural_persistence.png"] = topology.plot_neural_persistence(
        names,
        {
            **{network: frame[f"{network}_np"].tolist() for network in NETWORKS},
            "shuffled (mean)": frame["matched_np"].tolist(),
        },
        {network: frame[f"{network}_weight_std"].tolist() for network in NETWORKS},
    )
    return report


def _matched(value: float, null: np.ndarray, level: float) -> dict[str, Any]:
    p, z = stats.empirical_p(value, null.tolist(), alternative="two-sided")
    low, high = np.quantile(null, [(1 - level) / 2, (1 + level) / 2])
    return {"trained": rounded(value), "control_mean": rounded(float(null.mean())),
            "control_low": rounded(low), "control_high": rounded(high),
            "p": rounded(p), "z": rounded(z)}  # fmt: skip
