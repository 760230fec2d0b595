"""The explain stage's work: a trained model and its data in, a folder of metrics and plots out.

Four parts, each a function that returns a `Report` (so a benchmark can time them):
topology through the layers, neural persistence of the weights, a Mapper graph of the
last hidden layer, and the attribution baselines ranked against the Mapper.
"""

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from scipy.special import softmax
from threadpoolctl import threadpool_limits

from topoxai import attribution, controls, mapper, stats, topology
from topoxai.artifacts import architecture, load_initial, load_model
from topoxai.errors import DataError
from topoxai.features import SPEC_FILE
from topoxai.files import atomic_dir, json_text
from topoxai.model import MLP
from topoxai.params import ExplainParams, ParamsError
from topoxai.pool import Pool
from topoxai.sample import Sample, stream

NETWORKS = ("trained", "control")
DPI = 100
HALVES = 4  # a spawn key under `seed` (sample.py lists them all)


@dataclass(frozen=True)
class Inputs:
    """The two networks and the rows each part analyses (sampled, so cost is bounded)."""

    trained: MLP
    control: MLP  # the same architecture with the weights training started from (saved)
    rows: Sample  # drawn by `sample.draw` from data of the model's own preprocessing


@dataclass
class Report:
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # written as TSV
    figures: dict[str, Figure] = field(default_factory=dict)  # written as PNG
    texts: dict[str, str] = field(default_factory=dict)
    feature_scores: dict[str, np.ndarray] = field(default_factory=dict)  # method -> per feature


def explain(
    params: ExplainParams,
    *,
    seed: int,
    level: float,
    model_dir: Path,
    rows: Sample,
    out: Path,
    pool: Pool | None = None,
    control_diagrams: Iterator[list[list[np.ndarray]]] | None = None,
) -> dict[str, Any]:
    """Run every part on the model in `model_dir` and the rows `sample.draw` drew with
    `params` and `seed`; write the folder `out` all at once and return its metrics.

    Intervals are at `level`; a p-value below 1 - `level` is called significant. The
    persistence computations run on `pool` (by default one of `params.jobs` processes);
    `control_diagrams` are the untrained controls if the caller started them already
    (`controls.start` with these rows, the model card's architecture and `params`).
    """
    threads = torch.get_num_threads()
    try:
        # A fixed thread count, as in training: float sums (and so the outputs) then do not
        # depend on the machine's core count, and DVC sees the same hashes everywhere.
        torch.set_num_threads(params.threads)
        with threadpool_limits(limits=params.threads):
            inputs = in_float64(load_inputs(model_dir, rows))
            with nullcontext(pool) if pool else Pool(params.jobs, params.threads) as workers:
                # Every persistence computation is started now, and the workers run them
                # while this process builds the Mapper graph and the attributions.
                finish_topology = start_topology(
                    inputs,
                    params,
                    seed=seed,
                    level=level,
                    pool=workers,
                    control_diagrams=control_diagrams,
                )
                shuffles = start_shuffles(inputs, params, seed=seed, pool=workers)
                graph = mapper_report(inputs, params, seed=seed, level=level)
                mapper_error = graph.feature_scores["mapper_error"]
                attributions = attribution_report(
                    inputs, params, seed=seed, mapper_error=mapper_error
                )
                reports = [
                    Report(metrics={"sample": inputs.rows.record}),
                    finish_topology(),
                    weights_report(
                        inputs, params, seed=seed, level=level, pool=workers, shuffles=shuffles
                    ),
                    graph,
                    attributions,
                ]
    finally:
        torch.set_num_threads(threads)
    return write(out, reports)


def load_inputs(model_dir: Path, rows: Sample) -> Inputs:
    """The trained model and its untrained control, with the rows `sample.draw` drew for it
    (from data the model's own preprocessing produced: checked here)."""
    model = load_model(model_dir)
    if rows.spec != model.spec:
        raise DataError(
            f"{rows.folder / SPEC_FILE}: not the preprocessing {model_dir} was trained with; "
            "rerun the pipeline"
        )
    return Inputs(trained=model.net, control=load_initial(model_dir, model.card), rows=rows)


def in_float64(inputs: Inputs) -> Inputs:
    """The networks in float64, as the rows already are, for every analysis of this stage.

    A float32 forward pass differs in its last bits between CPUs (and between torch's
    AVX2, AVX-512 and plain kernels), enough to flip the sixth digit of a written number and
    so the outputs' hash in dvc.lock. In float64 that noise sits ten digits below anything
    written; at this stage's sizes the cost is negligible.
    """
    return dataclasses.replace(
        inputs,
        trained=copy.deepcopy(inputs.trained).double(),
        control=copy.deepcopy(inputs.control).double(),
    )


def layer_names(requested: tuple[str, ...], n_hidden: int) -> list[str]:
    """Expand `hidden` to every hidden layer and order the names from input to logits."""
    order = ["input", *(f"hidden{i}" for i in range(1, n_hidden + 1)), "logits"]
    chosen = set()
    for name in requested:
        if name == "hidden":
            chosen.update(order[1:-1])
        elif name in order:
            chosen.add(name)
        else:
            raise ParamsError(
                f"explain.layers: the model has no layer {name} (it has hidden1..hidden{n_hidden})"
            )
    return [name for name in order if name in chosen]


@torch.no_grad()
def representations(net: MLP, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every representation of the rows `x`: input, each hidden layer after ReLU, logits."""
    outputs = net.eval().activations(torch.as_tensor(x))
    names = [*(f"hidden{i}" for i in range(1, len(outputs))), "logits"]
    layers = {name: out.double().numpy() for name, out in zip(names, outputs)}
    return {"input": x.astype(np.float64), **layers}


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
    last = f"hidden{depth}"  # the simplification ratio compares the input with this one
    names = layer_names((*params.layers, "input", last), depth)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    halves = stats.half_samples(groups, resamples=params.resamples, seed=stream(seed, HALVES))
    keys, results = _start_diagrams(inputs, x, names, groups, halves, params, pool)

    def finish() -> Report:
        diagrams = dict(zip(keys, results, strict=True))
        for j, by_class in enumerate(control_diagrams):
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
    totals = {
        key: [topology.total_persistence(d, params.filtration_max) for d in dgms]
        for key, dgms in diagrams.items()
    }

    def per_class(key: Key, dim: int) -> list[float]:
        return [totals[(*key, i)][dim] for i in range(len(classes))]

    def total(*key: Any, dim: int) -> float:
        return sum(per_class(key, dim))

    # Totals grow with the number of points: their half-sample spread is scaled by n / m.
    scale = len(y) / sum(len(h) for h in halves[0])
    intervals = {
        (name, dim): stats.half_sample_interval(
            total("full", "trained", name, dim=dim),
            [total("half", b, name, dim=dim) for b in range(len(halves))],
            level=level,
            scale=scale,
        )
        for name in names
        for dim in (0, 1)
    }
    report = Report()
    layers = _layer_table(per_class, names, every, classes)
    for dim in (0, 1):
        layers[f"trained_h{dim}_low"] = [intervals[name, dim][0] for name in names]
        layers[f"trained_h{dim}_high"] = [intervals[name, dim][1] for name in names]
    report.tables["layers.tsv"] = layers
    report.tables["betti.tsv"] = _betti_table(diagrams, last, classes, params)
    null = {
        dim: np.array([total("null", i, last, dim=dim) for i in range(len(seeds))])
        for dim in (0, 1)
    }
    inputs_total = {dim: total("full", "trained", "input", dim=dim) for dim in (0, 1)}
    null_ratio = {dim: null[dim] / inputs_total[dim] if inputs_total[dim] > 0 else null[dim] * np.nan
                  for dim in (0, 1)}  # fmt: skip
    metrics: dict[str, Any] = {}
    for dim in (0, 1):
        ratios = [
            _divide(total("half", b, last, dim=dim), total("half", b, "input", dim=dim))
            for b in range(len(halves))
        ]
        trained = _divide(total("full", "trained", last, dim=dim), inputs_total[dim])
        metrics[f"simplification_h{dim}"] = _compared(
            trained,
            stats.half_sample_interval(trained, ratios, level=level),
            _divide(total("full", "control", last, dim=dim), inputs_total[dim]),
            null_ratio[dim],
        )
    metrics["total_persistence_h1"] = {
        "input": _round(inputs_total[1]),
        "input_ci_low": _round(intervals["input", 1][0]),
        "input_ci_high": _round(intervals["input", 1][1]),
        **_compared(
            total("full", "trained", last, dim=1),
            intervals[last, 1],
            total("full", "control", last, dim=1),
            null[1],
        ),
    }
    metrics["half_sample_rows"] = {
        f"class_{inputs.rows.spec.classes[c]}": len(h) for c, h in zip(classes, halves[0])
    }
    report.metrics["topology"] = metrics
    report.tables["controls.tsv"] = pd.DataFrame(
        {
            "control": range(len(seeds)),
            "seed": seeds,
            "simplification_h0": null_ratio[0],
            "simplification_h1": null_ratio[1],
            "total_persistence_h1": null[1],
        }
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
        "trained": _round(trained),
        "ci_low": _round(interval[0]),
        "ci_high": _round(interval[1]),
        "control": _round(control),
        "control_mean": _round(float(np.mean(null))),
        "control_sd": _round(float(np.std(null, ddof=1))),
        "p": _round(p),
        "z": _round(z),
    }


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
            **{n: _round(v) for n, v in zip(names, frame[f"{network}_np"])},
            "mean": _round(frame[f"{network}_np"].mean()),
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
        network: {n: _round(v) for n, v in zip(names, frame[f"{network}_weight_std"])}
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
    return {"trained": _round(value), "control_mean": _round(float(null.mean())),
            "control_low": _round(low), "control_high": _round(high),
            "p": _round(p), "z": _round(z)}  # fmt: skip


def mapper_report(inputs: Inputs, params: ExplainParams, *, seed: int, level: float) -> Report:
    """Mapper graph of the trained network's last hidden layer on the (sampled) test rows."""
    x, y = inputs.rows.test, inputs.rows.test_labels
    reps = representations(inputs.trained, x)
    activations = reps[f"hidden{len(inputs.trained.hidden)}"]
    probability = softmax(reps["logits"], axis=1)[:, -1]
    errors = reps["logits"].argmax(axis=1) != y
    lens = mapper.lens(activations, probability, random_state=seed)
    graph = mapper.build(
        activations,
        lens,
        cubes=params.mapper_cubes,
        overlap=params.mapper_overlap,
        eps_quantile=params.mapper_eps_quantile,
        min_samples=params.mapper_min_samples,
    )
    if not graph.nodes:
        raise DataError("explain: the Mapper graph has no nodes; lower explain.mapper_min_samples")
    report = Report()
    report.metrics["mapper"] = _mapper_metrics(mapper.summary(graph, y, errors), len(y), level)
    labels = [inputs.rows.spec.classes[i] for i in y]
    report.texts["mapper.html"] = mapper.html(
        graph,
        probability=probability,
        errors=errors,
        features=x.astype(np.float64),
        feature_names=inputs.rows.spec.feature_names,
        lens=lens,
        tooltips=[
            f"row {r}: label {label}, p = {p:.3f}"
            for r, label, p in zip(inputs.rows.test_rows, labels, probability)
        ],
        title="Mapper of the last hidden layer (test split)",
    )
    report.figures["mapper.png"] = mapper.plot(graph, lens, probability, errors)
    groups = list(attribution.feature_groups(inputs.rows.spec).values())
    inside = mapper.error_rows(graph, errors)
    report.feature_scores["mapper_error"] = mapper.over_representation(x, inside, groups)
    return report


def _mapper_metrics(summary: dict[str, Any], rows: int, level: float) -> dict[str, Any]:
    """Mapper's summary with Wilson intervals for the two shares in impure nodes, and
    Fisher's exact test of "errors sit in impure nodes more often than correct rows do"."""
    errors = summary["errors"]
    errors_in = round(summary["error_share_impure"] * errors)  # shares are counts / totals
    rows_in = round(summary["row_share_impure"] * rows)
    error_ci = stats.proportion_interval(errors_in, errors, level=level) if errors else (0, 1)
    row_ci = stats.proportion_interval(rows_in, rows, level=level)
    table = [
        [errors_in, errors - errors_in],
        [rows_in - errors_in, rows - rows_in - errors + errors_in],
    ]
    metrics = {k: _round(v) for k, v in summary.items()}
    metrics |= {
        "error_share_impure_low": _round(error_ci[0]),
        "error_share_impure_high": _round(error_ci[1]),
        "row_share_impure_low": _round(row_ci[0]),
        "row_share_impure_high": _round(row_ci[1]),
        "p_errors_impure": _round(stats.fisher_p(np.array(table), alternative="greater")),
    }
    return metrics


def attribution_report(
    inputs: Inputs, params: ExplainParams, *, seed: int, mapper_error: np.ndarray
) -> Report:
    """Integrated gradients and permutation importance per raw feature, ranked against Mapper."""
    groups = attribution.feature_groups(inputs.rows.spec)
    columns = list(groups.values())
    x, y = inputs.rows.test, inputs.rows.test_labels
    # Baseline: the average training row (a plausible "typical patient"; all zeros would
    # be a patient with no category at all in every one-hot group).
    model = attribution.positive_probability(inputs.trained)
    # integrated_gradients takes the rows in chunks itself: memory stays bounded.
    ig = attribution.integrated_gradients(model, x, inputs.rows.baseline, params.ig_steps)
    scores = {
        "integrated_gradients": attribution.group_attributions(ig, columns),
        "permutation": attribution.permutation_importance(
            inputs.trained, x, y, columns, params.permutation_repeats, np.random.default_rng(seed)
        ),
        "mapper_error": mapper_error,
    }
    report = Report()
    report.tables["features.tsv"] = pd.DataFrame({"feature": list(groups), **scores})
    short = {"integrated_gradients": "ig", "permutation": "permutation", "mapper_error": "mapper"}
    report.metrics["rank_agreement"] = {
        f"{short[a]}_vs_{short[b]}": _round(attribution.rank_agreement(scores[a], scores[b]))
        for a, b in itertools.combinations(short, 2)
    }
    return report


def write(out: Path, reports: list[Report]) -> dict[str, Any]:
    """Write every report into `out` at once (the old folder stays until all is written)."""
    metrics = {k: v for report in reports for k, v in report.metrics.items()}
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json_text(metrics), encoding="utf-8")
        for report in reports:
            for name, table in report.tables.items():
                table.to_csv(tmp / name, sep="\t", index=False, float_format="%.6g")
            for name, figure in report.figures.items():
                # No "Software" entry: the PNG bytes must not change with matplotlib's version.
                figure.savefig(tmp / name, dpi=DPI, metadata={"Software": None})
            for name, text in report.texts.items():
                (tmp / name).write_text(text, encoding="utf-8")
    return metrics


Key = tuple[Any, ...]  # ("full", network, layer, class) / ("half", b, ...) / ("null", i, ...)


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
    per_class: Callable[[Key, int], list[float]],
    names: list[str],
    every: list[str],
    classes: list[int],
) -> pd.DataFrame:
    """Total persistence per layer: one row per layer, columns network x dimension (x class)."""
    rows = []
    for name in names:
        row: dict[str, Any] = {"depth": every.index(name), "layer": name}
        for network, dim in itertools.product(NETWORKS, (0, 1)):
            source = "trained" if name == "input" else network  # one input for both
            values = per_class(("full", source, name), dim)
            row[f"{network}_h{dim}"] = sum(values)
            row.update({f"{network}_h{dim}_class{c}": v for c, v in zip(classes, values)})
        rows.append(row)
    return pd.DataFrame(rows)


def _betti_table(
    diagrams: dict[Key, list[np.ndarray]],
    last: str,
    classes: list[int],
    params: ExplainParams,
) -> pd.DataFrame:
    """Betti-0 and Betti-1 curves (summed over classes): input and last hidden layer."""
    scales = np.linspace(0.0, params.filtration_max, params.filtration_steps)
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


def _divide(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _round(value: float | None) -> float | int | None:
    """Floats to four decimals (metrics files then diff cleanly); ints unchanged; None for
    None, nan and inf (strict JSON has no such numbers)."""
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    return round(float(value), 4) if np.isfinite(value) else None
