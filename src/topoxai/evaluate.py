"""The evaluate stage's work: repeated stratified k-fold cross-validation of the MLP and the
baselines, with corrected intervals and paired tests, calibration and decision curves.

Every fold repeats the pipeline on its own rows: the preprocessing is fitted on the fold's
training rows, early stopping watches a validation part carved out of them (never the
fold's test rows), and the network is trained with the `train` params. So the estimate is
of the whole procedure, not of one fitted model, and no test row informs any choice.
"""

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai import decision
from topoxai.calibration import CALIBRATION, reliability
from topoxai.data import PARQUET_CODEC, PARQUET_LEVEL, read_table_of, shuffle_split
from topoxai.errors import DataError
from topoxai.features import fit_preprocessor
from topoxai.files import atomic_dir, json_text
from topoxai.metrics import METRICS
from topoxai.params import DataParams, EvaluateParams, TrainParams

MODELS = ("mlp", "logreg", "hist_gbm")
BASELINES = MODELS[1:]
PAIRED = ("roc_auc", "f1")  # the differences tested for the MLP against each baseline
SCORES = (*METRICS, *CALIBRATION)  # per fold and model, on the fold's test rows
# The models whose conformal sets are measured: the MLP (its calibration rows, the fold's
# validation rows, were watched by early stopping) and logistic regression (for which they
# are clean), each calibrated on the validation rows and measured on the test rows.
CONFORMAL_MODELS = ("mlp", "logreg")
CONFORMAL = ("coverage", "coverage_class_0", "coverage_class_1", "singleton", "both", "empty")


@dataclass(frozen=True)
class Fold:
    repeat: int  # 1-based, as reported
    fold: int
    fit: np.ndarray  # positions of the rows the models are fitted on
    val: np.ndarray  # the MLP's early-stopping rows (part of the fold's training rows)
    test: np.ndarray
    seed: int  # the MLP's initialisation and shuffles in this fold


@dataclass(frozen=True)
class FoldResult:
    scores: dict[str, dict[str, float]]  # per model: every one of SCORES
    probability: dict[str, np.ndarray]  # per model: the positive class's, per test row
    label: np.ndarray  # per test row: 1 for the positive class
    conformal: dict[str, dict[str, float]]  # per CONFORMAL_MODELS model: every CONFORMAL


@dataclass(frozen=True)
class Setup:
    """What every fold needs (sent with each fold to a worker process: a few MB at most)."""

    frame: pd.DataFrame
    data: DataParams
    train: TrainParams
    level: float  # of the conformal sets


def evaluate(
    params: EvaluateParams,
    *,
    data: DataParams,
    train: TrainParams,
    level: float,
    raw: Path,
    out: Path,
) -> dict[str, Any]:
    """Cross-validate on the rows of `raw` that preprocessing keeps; write `out`; return the
    metrics (also in out/metrics.json). Every draw comes from `params.seed`."""
    seed = params.seed
    frame_kept = read_table_of(raw, data).learned(data.missing)
    rows = sample_rows(frame_kept[data.target].to_numpy(), params.max_rows, seed)
    kept = frame_kept.take(rows)
    labels = kept[data.target].to_numpy()
    val_share = data.split[1] / (data.split[0] + data.split[1])
    splits = make_folds(
        labels, folds=params.folds, repeats=params.repeats, val_share=val_share, seed=seed
    )
    results = run_folds(Setup(kept, data, train, level), splits, jobs=params.jobs)
    scores = [r.scores for r in results]
    # n_test / n_train of the correction: the fold's test rows against the rows the models
    # learned from (fit + val).
    test_train_ratio = 1 / (params.folds - 1)
    metrics = {
        # kept: rows left after filtering; used: those cross-validated (a stratified sample
        # of evaluate.max_rows when there are more).
        "rows": {"kept": len(frame_kept), "used": len(kept)},
        "folds": params.folds,
        "repeats": params.repeats,
        "level": level,
        **summarise(scores, level=level, test_train_ratio=test_train_ratio),
    }
    for model, pooled in pooled_ici(splits, results).items():
        metrics[model]["ici_pooled"] = pooled
    metrics["conformal"] = summarise_conformal(
        [r.conformal for r in results], level=level, test_train_ratio=test_train_ratio
    )
    metrics["subgroups"] = subgroup_scores(
        kept, splits, results, params, level=level, categorical=data.categorical
    )
    curves = [net_benefits(r) for r in results]
    mean_curves = {name: np.mean([c[name] for c in curves], axis=0) for name in curves[0]}
    metrics["decision_curve"] = summarise_decisions(
        curves, mean_curves, level=level, test_train_ratio=test_train_ratio
    )
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json_text(metrics), encoding="utf-8")
        write_folds(tmp / "folds.tsv", splits, scores)
        write_predictions(tmp / "predictions.parquet", splits, results, kept.index.to_numpy())
        write_reliability(tmp / "calibration", results)
        write_decision_curve(tmp / "decision_curve.tsv", mean_curves)
    return metrics


def subgroup_scores(
    frame: pd.DataFrame,
    splits: list[Fold],
    results: list[FoldResult],
    params: EvaluateParams,
    *,
    level: float,
    categorical: tuple[str, ...],
) -> dict[str, Any]:
    """Per subgroup (evaluate.subgroups: by category, or a numeric column in evaluate.bands),
    every model's INTERVAL_SCORES from each row's
    out-of-fold probability, averaged over the repeats (each repeat scores every row once),
    with intervals from a stratified bootstrap of the subgroup's rows. A subgroup with
    fewer than 2 rows of a class gets its row count only."""
    from topoxai.metrics import scores_with_intervals

    probability = {m: np.zeros(len(frame)) for m in MODELS}
    label = np.zeros(len(frame), np.int64)
    for fold, result in zip(splits, results):
        label[fold.test] = result.label
        for m in MODELS:
            probability[m][fold.test] += result.probability[m] / params.repeats
    out: dict[str, Any] = {}
    columns = {c: () if c in categorical else params.bands for c in params.subgroups}
    # "all": every row, scored the same way, so that a group's numbers are read against
    # numbers of the same kind (not against the fold means of the headline table).
    groups = {"all": np.arange(len(frame))} | subgroups(frame, columns)
    for i, (name, rows) in enumerate(groups.items()):
        y = label[rows]
        entry: dict[str, Any] = {"rows": len(rows), "positive_rate": round(float(y.mean()), 4)}
        if min(np.sum(y == 0), np.sum(y == 1)) >= 2:
            scores, _ = scores_with_intervals(
                y,
                {m: p[rows] for m, p in probability.items()},
                level=level,
                resamples=params.resamples,
                seed=int(np.random.SeedSequence([params.seed, i]).generate_state(1)[0]),
            )
            entry |= scores
        out[name] = entry
    return out


def subgroups(frame: pd.DataFrame, columns: dict[str, tuple[float, ...]]) -> dict[str, np.ndarray]:
    """Each subgroup's name and row positions: `column=category` for a column without cut
    points, `column<a`, `a<=column<b`, `column>=b` for one with them; rows whose value is
    missing form `column missing`."""
    from topoxai.features import categorical_codes, numeric_block, per_row, require_columns

    require_columns(frame, list(columns))
    out: dict[str, np.ndarray] = {}
    for column, cuts in columns.items():
        if not cuts:
            codes, text = categorical_codes(frame, column, missing_ok=True)
            values = per_row(codes, text, None)
            for value in sorted({v for v in values.tolist() if v is not None}):
                out[f"{column}={value}"] = np.flatnonzero(values == value)
            missing = codes < 0
        else:
            x = numeric_block(frame, [column], missing_ok=True)[:, 0]
            edges = [-np.inf, *cuts, np.inf]
            for low, high in itertools.pairwise(edges):
                name = (
                    f"{column}<{high:g}" if low == -np.inf
                    else f"{column}>={low:g}" if high == np.inf
                    else f"{low:g}<={column}<{high:g}"
                )  # fmt: skip
                out[name] = np.flatnonzero((x >= low) & (x < high))
            missing = np.isnan(x)
        if missing.any():
            out[f"{column} missing"] = np.flatnonzero(missing)
    return {name: rows for name, rows in out.items() if len(rows)}


def sample_rows(labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Positions of at most `max_rows` rows, a stratified sample (all rows when fewer)."""
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    _, keep = shuffle_split(labels, max_rows / len(labels), seed)
    return np.sort(keep)


def make_folds(
    labels: np.ndarray, *, folds: int, repeats: int, val_share: float, seed: int
) -> list[Fold]:
    """Repeated stratified k-fold splits, each fold's training rows split again for early
    stopping; scikit-learn's RepeatedStratifiedKFold draws the folds."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    check_class_sizes(labels, folds=folds, val_share=val_share)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    out = []
    for i, (train_rows, test_rows) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        fit, val = shuffle_split(labels[train_rows], val_share, fold_seed)
        out.append(
            Fold(
                repeat=i // folds + 1,
                fold=i % folds + 1,
                fit=np.sort(train_rows[fit]),
                val=np.sort(train_rows[val]),
                test=test_rows,
                seed=fold_seed,
            )
        )
    return out


def check_class_sizes(labels: np.ndarray, *, folds: int, val_share: float) -> None:
    """DataError unless every class can be in every fold's test, fit and validation rows."""
    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise DataError(f"all {len(labels)} rows are one class; cross-validation needs two")
    # A class needs one row per fold, and enough training rows in each fold that the
    # validation part gets one: ceil(val_share * training rows) >= 1 and fit keeps one.
    need = max(folds, math.ceil(folds / (folds - 1) * max(2, math.ceil(1 / val_share))))
    smallest = int(np.argmin(counts))
    if counts[smallest] < need:
        value = values[smallest]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(
            f"class {value!r} has {counts[smallest]} rows, too few for evaluate.folds={folds} "
            f"(needs at least {need}); lower evaluate.folds"
        )


def run_folds(setup: Setup, splits: list[Fold], *, jobs: int) -> list[FoldResult]:
    """Each fold's test scores and probabilities per model, in fold order whatever `jobs`.

    Every fold seeds its own draws and runs with fixed thread counts, so a fold's numbers
    do not depend on which process ran it, nor on what ran before it there.
    """
    from topoxai.pool import Pool
    from topoxai.progress import iterate

    with Pool(min(jobs, len(splits)), setup.train.threads) as pool:
        results = pool.map(score_fold, ((setup, fold) for fold in splits))
        return list(iterate(results, len(splits), "folds", "fold"))


def score_fold(setup: Setup, fold: Fold) -> FoldResult:
    """Fit the preprocessing, the MLP and the baselines on one fold; score its test rows."""
    from threadpoolctl import threadpool_limits

    from topoxai.calibration import calibration
    from topoxai.metrics import baseline_models, classification_metrics

    train = setup.train
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = fold_arrays(setup.frame, fold, setup.data)
    with threadpool_limits(limits=train.threads):
        on_val, on_test = fit_mlp(train, fold.seed, (x_fit, y_fit), (x_val, y_val), x_val, x_test)
        proba, calibration_proba = {"mlp": on_test}, {"mlp": on_val}
        for name, model in baseline_models(fold.seed).items():
            fitted = model.fit(x_fit, y_fit)
            proba[name], calibration_proba[name] = (
                fitted.predict_proba(x) for x in (x_test, x_val)
            )
        scores = {
            name: classification_metrics(y_test, p, digits=None) | calibration(y_test, p[:, 1])
            for name, p in proba.items()
        }
    sets = {
        name: conformal_sets(calibration_proba[name], y_val, proba[name], setup.level)
        for name in CONFORMAL_MODELS
    }
    return FoldResult(
        scores,
        {name: p[:, 1] for name, p in proba.items()},
        y_test,
        {name: set_scores(s, y_test) for name, s in sets.items()},
    )


def conformal_sets(
    calibration_proba: np.ndarray, calibration_y: np.ndarray, proba: np.ndarray, level: float
) -> np.ndarray:
    """(rows, 2) booleans: each row's class-conditional conformal set."""
    from topoxai.conformal import calibrate

    fitted = calibrate(calibration_proba, calibration_y, level)
    return fitted.sets(fitted.p_values(proba))


def set_scores(sets: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Coverage (all rows, and each class's), and the shares of one-label, two-label and
    empty sets."""
    covered = sets[np.arange(len(y)), y]
    size = sets.sum(axis=1)
    return {
        "coverage": float(covered.mean()),
        "coverage_class_0": float(covered[y == 0].mean()),
        "coverage_class_1": float(covered[y == 1].mean()),
        "singleton": float(np.mean(size == 1)),
        "both": float(np.mean(size == 2)),
        "empty": float(np.mean(size == 0)),
    }


def summarise_conformal(
    scores: list[dict[str, dict[str, float]]], *, level: float, test_train_ratio: float
) -> dict[str, Any]:
    """Per model and set measure: mean, sd and corrected interval over the folds."""
    out: dict[str, Any] = {"level": level}
    for model in CONFORMAL_MODELS:
        out[model] = {
            name: _estimate(np.array([f[model][name] for f in scores]), level, test_train_ratio)
            for name in CONFORMAL
        }
    return out


def fold_arrays(
    frame: pd.DataFrame, fold: Fold, data: DataParams
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Features and class indices of the fold's fit, validation and test rows, with the
    preprocessing fitted on the fit rows alone (as the preprocess stage fits on train)."""
    return fold_arrays_of(frame, (fold.fit, fold.val, fold.test), data)


def fold_arrays_of(
    frame: pd.DataFrame, positions: tuple[np.ndarray, np.ndarray, np.ndarray], data: DataParams
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`fold_arrays` of the rows at the (fit, validation, test) `positions` of `frame`."""
    fit_rows, val_rows, test_rows = (frame.take(r) for r in positions)
    spec = fit_preprocessor(
        fit_rows,
        target=data.target,
        categorical=list(data.categorical),
        source_sha256="",
        positive_class=data.positive_label,
        not_measured=data.not_measured,
        missing=data.missing,
    )
    # float32 features: what the train stage reads from the processed splits.
    return [
        (spec.transform(rows, np.float32), spec.encode_target(rows))
        for rows in (fit_rows, val_rows, test_rows)
    ]


def fit_mlp(
    params: TrainParams,
    seed: int,
    fit: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *scored: np.ndarray,
) -> list[np.ndarray]:
    """The train stage's procedure on one fold: the class probabilities (float64) of each
    array of `scored` rows."""
    import torch

    from topoxai.classifier import fit_network, predict_proba

    fitted = fit_network(
        params,
        seed=seed,
        train=(torch.from_numpy(fit[0]), torch.from_numpy(fit[1])),
        val=(torch.from_numpy(val[0]), torch.from_numpy(val[1])),
        classes=2,
        one_device=True,
    )
    return [predict_proba(fitted.net, torch.from_numpy(x)).numpy() for x in scored]


def summarise(
    scores: list[dict[str, dict[str, float]]], *, level: float, test_train_ratio: float
) -> dict[str, Any]:
    """Per model and metric: mean, sd and corrected interval; the MLP against each baseline:
    the mean paired difference with its corrected interval and p-value."""
    from topoxai.stats import resampled_t

    def column(model: str, metric: str) -> np.ndarray:
        return np.array([fold[model][metric] for fold in scores])

    out: dict[str, Any] = {}
    for model in MODELS:
        out[model] = {
            metric: _estimate(column(model, metric), level, test_train_ratio) for metric in SCORES
        }
    for baseline in BASELINES:
        out[f"mlp_vs_{baseline}"] = {}
        for metric in PAIRED:
            diff = column("mlp", metric) - column(baseline, metric)
            est = resampled_t(diff, level=level, test_train_ratio=test_train_ratio)
            out[f"mlp_vs_{baseline}"][metric] = _rounded(
                diff=est.mean, low=est.low, high=est.high, p=est.p
            )
    return out


def _estimate(values: np.ndarray, level: float, test_train_ratio: float) -> dict[str, float]:
    """Mean, sd and corrected interval of one measure over the folds."""
    from topoxai.stats import resampled_t

    est = resampled_t(values, level=level, test_train_ratio=test_train_ratio)
    return _rounded(mean=est.mean, sd=est.sd, low=est.low, high=est.high)


def _rounded(**values: float) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def write_folds(path: Path, splits: list[Fold], scores: list[dict[str, dict[str, float]]]) -> None:
    """One row per fold: its position and every model's metrics (the per-fold plot's table)."""
    header = ["split", "repeat", "fold", "test_rows"] + [
        f"{model}_{metric}" for metric in SCORES for model in MODELS
    ]
    lines = ["\t".join(header)]
    for i, (fold, score) in enumerate(zip(splits, scores), start=1):
        values = [f"{score[model][metric]:.4f}" for metric in SCORES for model in MODELS]
        lines.append(
            "\t".join([str(i), str(fold.repeat), str(fold.fold), str(len(fold.test)), *values])
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def pooled_ici(splits: list[Fold], results: list[FoldResult]) -> dict[str, dict[str, float]]:
    """Per model, the ICI of each repeat's out-of-fold probabilities (every kept row once):
    their mean, smallest and largest. A fold's ICI smooths some 150 rows, and the smooth's
    own noise adds to it (a calibrated model scores about 0.03 there); over every row it
    is the better estimate of the miscalibration."""
    from topoxai.calibration import calibration

    repeats = sorted({f.repeat for f in splits})
    out = {}
    for model in MODELS:
        values = []
        for repeat in repeats:
            mine = [r for f, r in zip(splits, results) if f.repeat == repeat]
            label = np.concatenate([r.label for r in mine])
            values.append(
                calibration(label, np.concatenate([r.probability[model] for r in mine]))["ici"]
            )
        out[model] = _rounded(mean=float(np.mean(values)), min=min(values), max=max(values))
    return out


def net_benefits(result: FoldResult) -> dict[str, np.ndarray]:
    """One fold's decision curves: each model's net benefit, and treat-all's, per threshold."""
    curves = {m: decision.net_benefit(result.label, result.probability[m]) for m in MODELS}
    return curves | {"treat_all": decision.treat_all(result.label)}


def summarise_decisions(
    curves: list[dict[str, np.ndarray]],
    mean: dict[str, np.ndarray],
    *,
    level: float,
    test_train_ratio: float,
) -> dict[str, Any]:
    """Per model, the thresholds where its `mean` net benefit over the folds beats
    treat-all and treat-none; the MLP against each baseline at decision.COMPARED, as in
    `summarise`."""
    from topoxai.stats import resampled_t

    out: dict[str, Any] = {}
    for model in MODELS:
        useful = decision.useful_range(mean[model], mean["treat_all"])
        # null when it never beats both: no threshold at which to use the model
        out[model] = dict(zip(("useful_from", "useful_to"), useful or (None, None)))
    for baseline in BASELINES:
        out[f"mlp_vs_{baseline}"] = {}
        for t in decision.COMPARED:
            at = decision.THRESHOLDS.tolist().index(t)
            diff = np.array([c["mlp"][at] - c[baseline][at] for c in curves])
            est = resampled_t(diff, level=level, test_train_ratio=test_train_ratio)
            out[f"mlp_vs_{baseline}"][f"at_{round(t * 100)}"] = _rounded(
                diff=est.mean, low=est.low, high=est.high, p=est.p
            )
    return out


def write_predictions(
    path: Path, splits: list[Fold], results: list[FoldResult], rows: np.ndarray
) -> None:
    """Every fold's out-of-fold probabilities, one row per test row: repeat, fold, the raw
    CSV's row, label (1: the positive class) and each model's probability of it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def stacked(pick: Any) -> np.ndarray:
        return np.concatenate([pick(f, r) for f, r in zip(splits, results)])

    columns = {
        "repeat": stacked(lambda f, r: np.full(len(f.test), f.repeat, np.int64)),
        "fold": stacked(lambda f, r: np.full(len(f.test), f.fold, np.int64)),
        "row": stacked(lambda f, r: rows[f.test].astype(np.int64)),
        "label": stacked(lambda f, r: r.label.astype(np.int64)),
        **{m: stacked(lambda f, r, m=m: r.probability[m]) for m in MODELS},
    }
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    # As the processed splits are written: the same numbers give the same bytes.
    pq.write_table(
        table, path, compression=PARQUET_CODEC, compression_level=PARQUET_LEVEL, store_schema=False
    )


def write_reliability(folder: Path, results: list[FoldResult]) -> None:
    """The reliability diagram's tables: per model, observed rate against mean predicted
    probability per tenth of the probability range, over every fold's test rows (each row
    once per repeat); ideal.tsv is the diagonal, perfect calibration."""
    folder.mkdir()
    label = np.concatenate([r.label for r in results])
    tables = {
        m: reliability(label, np.concatenate([r.probability[m] for r in results])) for m in MODELS
    }
    tables["ideal"] = [{"predicted": v, "observed": v, "rows": 0} for v in (0.0, 1.0)]
    for name, points in tables.items():
        lines = ["predicted\tobserved\trows"]
        lines += [f"{p['predicted']:.4f}\t{p['observed']:.4f}\t{p['rows']}" for p in points]
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_decision_curve(path: Path, mean: dict[str, np.ndarray]) -> None:
    """The decision curves' table: per threshold, the mean net benefit over the folds of
    each model, treat-all and treat-none."""
    names = [*MODELS, "treat_all"]
    lines = ["\t".join(["threshold", *names, "treat_none"])]
    for i, t in enumerate(decision.THRESHOLDS):
        values = [f"{mean[n][i]:.4f}" for n in names]
        lines.append("\t".join([f"{t:.2f}", *values, "0.0000"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The headline numbers as a few readable lines (`topoxai results` prints them)."""
    level = f"{metrics['level']:.0%}"
    lines = [
        f"{metrics['repeats']}x{metrics['folds']}-fold cross-validation on "
        f"{metrics['rows']['used']} rows: mean (sd) [{level} interval]"
    ]
    for model in MODELS:
        parts = [
            f"{metric} {m['mean']:.4f} ({m['sd']:.4f}) [{m['low']:.4f}, {m['high']:.4f}]"
            for metric, m in ((k, metrics[model][k]) for k in ("roc_auc", "f1"))
        ]
        lines.append(f"  {model:9s} " + "  ".join(parts))
    for baseline in BASELINES:
        parts = [
            f"{metric} {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] p={d['p']:.3f}"
            for metric, d in metrics[f"mlp_vs_{baseline}"].items()
        ]
        lines.append(f"  mlp - {baseline}: " + "  ".join(parts))
    lines.append("calibration: intercept (0 ideal), slope (1 ideal), ICI (0 ideal)")
    for model in MODELS:
        parts = [
            f"{name} {m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
            for name, m in zip(
                ("intercept", "slope", "ICI"), (metrics[model][k] for k in CALIBRATION)
            )
        ]
        lines.append(f"  {model:9s} " + "  ".join(parts))
    sets = metrics["conformal"]
    lines.append(
        f"conformal sets at {sets['level']:.0%} (calibrated on each fold's validation rows): "
        "coverage, per class; singleton share"
    )
    for model in CONFORMAL_MODELS:
        m = sets[model]
        parts = [
            f"{m[k]['mean']:.3f} [{m[k]['low']:.3f}, {m[k]['high']:.3f}]"
            for k in ("coverage", "coverage_class_0", "coverage_class_1", "singleton")
        ]
        lines.append(f"  {model:9s} " + "  ".join(parts))
    lines.append("subgroups (out-of-fold): MLP ROC-AUC, observed - predicted rate")
    for name, group in metrics["subgroups"].items():
        if "mlp" not in group:
            lines.append(f"  {name:12s} {group['rows']} rows: one class, no scores")
            continue
        auc, citl = group["mlp"]["roc_auc"], group["mlp"]["citl"]
        lines.append(
            f"  {name:12s} {group['rows']:4d} rows  {auc['value']:.3f} [{auc['low']:.3f}, "
            f"{auc['high']:.3f}]  {citl['value']:+.3f} [{citl['low']:+.3f}, {citl['high']:+.3f}]"
        )
    decisions = metrics["decision_curve"]
    lines.append("net benefit: thresholds where the model beats treating all and treating none")
    for model in MODELS:
        low, high = decisions[model]["useful_from"], decisions[model]["useful_to"]
        where = "none" if low is None else f"{low:.2f} to {high:.2f}"
        lines.append(f"  {model:9s} {where}")
    for baseline in BASELINES:
        parts = [
            f"at {int(k[3:]) / 100:.1f} {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] p={d['p']:.3f}"
            for k, d in decisions[f"mlp_vs_{baseline}"].items()
        ]
        lines.append(f"  mlp - {baseline}: " + "  ".join(parts))
    return lines
