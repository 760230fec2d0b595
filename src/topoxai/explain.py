"""The explain stage's work: a trained model and its data in, a folder of metrics and plots out.

Four parts, each a function that returns a `Report` (so a benchmark can time them):
topology through the layers, neural persistence of the weights, a Mapper graph of the
last hidden layer, and the attribution baselines ranked against the Mapper.
"""

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
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
from topoxai.data import SPLITS, read_split, split_path
from topoxai.errors import DataError
from topoxai.features import SPEC_FILE, Preprocessor
from topoxai.files import atomic_dir, json_text
from topoxai.model import MLP
from topoxai.params import ExplainParams, ParamsError
from topoxai.pool import Pool

NETWORKS = ("trained", "control")
DPI = 100
SAMPLE_STREAM, HALVES = 1, 4  # spawn keys under `seed` (controls.py has 2 and 3)


@dataclass(frozen=True)
class Inputs:
    """The two networks and the rows each part analyses (sampled, so cost is bounded)."""

    trained: MLP
    control: MLP  # the same architecture with the weights training started from (saved)
    spec: Preprocessor
    points: np.ndarray  # topology: rows of every split, at most max_points per class
    labels: np.ndarray  # their class indices
    test: np.ndarray  # Mapper and attributions: at most max_test_rows test rows
    test_labels: np.ndarray
    test_rows: np.ndarray  # the test rows' numbers in the raw CSV
    baseline: np.ndarray  # integrated gradients' baseline: the mean of every training row
    sample: dict[str, Any]  # rows available and used, and the seed: written to the metrics


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
    data_dir: Path,
    out: Path,
) -> dict[str, Any]:
    """Run every part and write the folder `out` all at once; return its metrics.

    Intervals are at `level`; a p-value below 1 - `level` is called significant.
    """
    threads = torch.get_num_threads()
    try:
        # A fixed thread count, as in training: float sums (and so the outputs) then do not
        # depend on the machine's core count, and DVC sees the same hashes everywhere.
        torch.set_num_threads(params.threads)
        with threadpool_limits(limits=params.threads):
            inputs = in_float64(
                load_inputs(
                    model_dir,
                    data_dir,
                    max_points=params.max_points,
                    max_test_rows=params.max_test_rows,
                    seed=seed,
                )
            )
            with Pool(params.jobs, params.threads) as pool:
                reports = [
                    Report(metrics={"sample": inputs.sample}),
                    topology_report(inputs, params, seed=seed, level=level, pool=pool),
                    weights_report(inputs, params, seed=seed, level=level, pool=pool),
                    mapper_report(inputs, params, seed=seed, level=level),
                ]
            mapper_error = reports[-1].feature_scores["mapper_error"]
            reports.append(attribution_report(inputs, params, seed=seed, mapper_error=mapper_error))
    finally:
        torch.set_num_threads(threads)
    return write(out, reports)


def load_inputs(
    model_dir: Path, data_dir: Path, *, max_points: int, max_test_rows: int, seed: int
) -> Inputs:
    """The trained model, its untrained control and the rows to analyse, cross-checked.

    Rows are sampled here, before any forward pass, so that no part's cost grows with the
    data: a seeded stratified sample of at most `max_points` rows per class from every split
    for the topology, and a seeded simple random sample of at most `max_test_rows` test rows
    for Mapper and the attributions (so their shares estimate the whole split's). A class or
    split within its cap is used whole, in its order, with no draw.
    """
    model = load_model(model_dir)
    control = load_initial(model_dir, model.card)
    spec_path = data_dir / SPEC_FILE
    if not spec_path.is_file() or Preprocessor.load(spec_path) != model.spec:
        raise DataError(
            f"{spec_path}: missing or not the preprocessing {model_dir} was trained with; "
            "rerun the pipeline"
        )
    splits = {name: read_split(split_path(data_dir, name), model.spec) for name in SPLITS}
    x = np.concatenate([splits[name][0] for name in SPLITS])
    y = np.concatenate([splits[name][1] for name in SPLITS])
    rng = np.random.default_rng(_stream(seed, SAMPLE_STREAM))
    chosen = stratified_sample(y, max_points, rng)
    test_x, test_y, test_rows = splits["test"]
    tested = simple_sample(len(test_y), max_test_rows, rng)
    classes = np.unique(y).tolist()
    name = {c: f"class_{model.spec.classes[c]}" for c in classes}
    sample = {
        "seed": seed,
        "topology_rows": {name[c]: int((y[chosen] == c).sum()) for c in classes},
        "topology_rows_available": {name[c]: int((y == c).sum()) for c in classes},
        "test_rows": len(tested),
        "test_rows_available": len(test_y),
    }
    return Inputs(
        trained=model.net,
        control=control,
        spec=model.spec,
        points=x[chosen],
        labels=y[chosen],
        test=test_x[tested],
        test_labels=test_y[tested],
        test_rows=test_rows[tested],
        baseline=splits["train"][0].astype(np.float64).mean(axis=0, keepdims=True),
        sample=sample,
    )


def stratified_sample(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most `cap` rows of each class, drawn without replacement."""
    chosen = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        chosen.append(rows if len(rows) <= cap else rng.choice(rows, cap, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def simple_sample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most `cap` of `n` rows, drawn without replacement."""
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def in_float64(inputs: Inputs) -> Inputs:
    """The networks and features in float64, for every analysis of this stage.

    A float32 forward pass differs in its last bits between CPUs (and between torch's
    AVX2, AVX-512 and plain kernels), enough to flip the sixth digit of a written number and
    so the outputs' hash in dvc.lock. In float64 that noise sits ten digits below anything
    written; at this stage's sizes the cost is negligible.
    """
    return dataclasses.replace(
        inputs,
        trained=copy.deepcopy(inputs.trained).double(),
        control=copy.deepcopy(inputs.control).double(),
        points=inputs.points.astype(np.float64),
        test=inputs.test.astype(np.float64),
        baseline=inputs.baseline.astype(np.float64),
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


def topology_report(
    inputs: Inputs, params: ExplainParams, *, seed: int, level: float, pool: Pool
) -> Report:
    """Persistent homology of each class in each chosen layer, with intervals and controls.

    Uses rows of every split (train, val and test): topology describes how the network
    reshapes the data, not how it generalises, and more points give steadier k-NN graphs.
    Intervals come from half-samples of each class (`stats.half_samples`); the trained
    network's last hidden layer is placed among `params.controls` untrained networks drawn
    as training draws them (`controls.untrained`), on the same points.
    """
    x, y = inputs.points, inputs.labels
    _check_class_sizes(y, params.k)
    depth = len(inputs.trained.hidden)
    every = layer_names(("input", "hidden", "logits"), depth)
    last = f"hidden{depth}"  # the simplification ratio compares the input with this one
    names = layer_names((*params.layers, "input", last), depth)
    classes = np.unique(y).tolist()
    groups = [np.flatnonzero(y == c) for c in classes]
    halves = stats.half_samples(groups, resamples=params.resamples, seed=_stream(seed, HALVES))
    seeds = controls.control_seeds(seed, params.controls)
    diagrams = _diagrams(inputs, x, names, last, groups, halves, seeds, params, pool)
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
        f"class_{inputs.spec.classes[c]}": len(h) for c, h in zip(classes, halves[0])
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
            f"{network}, class {inputs.spec.classes[c]}": diagrams[
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


def weights_report(
    inputs: Inputs, params: ExplainParams, *, seed: int, level: float, pool: Pool
) -> Report:
    """Neural persistence of every weight matrix, beside its matched random control.

    Girrbach et al. (TMLR 2023) show that neural persistence mostly tracks the weights'
    variance, so each trained layer is compared with `params.controls` shuffles of its own
    weights (`topology.shuffled_persistence`: the same variance and values, no structure): an
    interval of those draws, and where the trained value falls among them (two-sided p, z).
    """
    report = Report()
    table: dict[str, Any] = {}
    weights = {}
    for network in NETWORKS:
        net: MLP = getattr(inputs, network)
        weights[network] = [
            layer.weight.detach().double().numpy() for layer in [*net.hidden, net.output]
        ]
        table[f"{network}_np"] = topology.neural_persistence(weights[network])
        table[f"{network}_weight_std"] = [float(w.std()) for w in weights[network]]
    chunks = np.array_split(np.arange(params.controls), pool.workers)  # one job per worker
    jobs = [(weights["trained"], seed, range(c[0], c[-1] + 1)) for c in chunks if len(c)]
    draws = np.array(
        [row for rows in pool.map(topology.shuffled_persistence, jobs) for row in rows]
    )  # controls x layers
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
    x, y = inputs.test, inputs.test_labels
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
    labels = [inputs.spec.classes[i] for i in y]
    report.texts["mapper.html"] = mapper.html(
        graph,
        probability=probability,
        errors=errors,
        features=x.astype(np.float64),
        feature_names=inputs.spec.feature_names,
        lens=lens,
        tooltips=[
            f"row {r}: label {label}, p = {p:.3f}"
            for r, label, p in zip(inputs.test_rows, labels, probability)
        ],
        title="Mapper of the last hidden layer (test split)",
    )
    report.figures["mapper.png"] = mapper.plot(graph, lens, probability, errors)
    groups = list(attribution.feature_groups(inputs.spec).values())
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
    groups = attribution.feature_groups(inputs.spec)
    columns = list(groups.values())
    x, y = inputs.test, inputs.test_labels
    # Baseline: the average training row (a plausible "typical patient"; all zeros would
    # be a patient with no category at all in every one-hot group).
    model = attribution.positive_probability(inputs.trained)
    # integrated_gradients takes the rows in chunks itself: memory stays bounded.
    ig = attribution.integrated_gradients(model, x, inputs.baseline, params.ig_steps)
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


def _check_class_sizes(y: np.ndarray, k: int) -> None:
    values, counts = np.unique(y, return_counts=True)
    if counts.min() // 2 <= k:
        small = values[counts.argmin()]
        raise DataError(
            f"explain.k = {k} needs more than {2 * k + 1} rows per class (half of them for "
            f"the intervals' k-NN graphs); class index {small} has {counts.min()}"
        )


Key = tuple[Any, ...]  # ("full", network, layer, class) / ("half", b, ...) / ("null", i, ...)


def _diagrams(
    inputs: Inputs,
    x: np.ndarray,
    names: list[str],
    last: str,
    groups: list[np.ndarray],
    halves: list[list[np.ndarray]],
    seeds: list[int],
    params: ExplainParams,
    pool: Pool,
) -> dict[Key, list[np.ndarray]]:
    """Persistence diagrams of every point cloud the report needs, on the worker processes.

    Keys end with the class's position. "full": each network's chosen layers on all the
    points (the input's once, under "trained"); "half": the trained network's layers on each
    half-sample; "null": each untrained control's last hidden layer on all the points.
    """
    reps = {network: representations(getattr(inputs, network), x) for network in NETWORKS}
    keys: list[Key] = []

    def clouds() -> Iterator[tuple[np.ndarray, int, float]]:
        for network, name in itertools.product(NETWORKS, names):
            if name == "input" and network != NETWORKS[0]:
                continue
            for i, rows in enumerate(groups):
                keys.append(("full", network, name, i))
                yield reps[network][name][rows], params.k, params.filtration_max
        for b, draw in enumerate(halves):
            for name, (i, rows) in itertools.product(names, enumerate(draw)):
                keys.append(("half", b, name, i))
                yield reps["trained"][name][rows], params.k, params.filtration_max
        for j, net in enumerate(controls.untrained(architecture(inputs.trained), seeds)):
            hidden = representations(net, x)[last]
            for i, rows in enumerate(groups):
                keys.append(("null", j, last, i))
                yield hidden[rows], params.k, params.filtration_max

    results = list(pool.map(topology.knn_persistence, clouds()))
    return dict(zip(keys, results, strict=True))


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


def _stream(seed: int, key: int) -> int:
    """A seed of its own for one kind of draw, derived from the stage's `seed`."""
    return int(np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1)[0])


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
