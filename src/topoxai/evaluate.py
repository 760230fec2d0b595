"""The evaluate stage's work: repeated stratified k-fold cross-validation of the MLP and the
baselines, with corrected intervals and paired tests.

Every fold repeats the pipeline on its own rows: the preprocessing is fitted on the fold's
training rows, early stopping watches a validation part carved out of them (never the
fold's test rows), and the network is trained with the `train` params. So the estimate is
of the whole procedure, not of one fitted model, and no test row informs any choice.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai.data import drop_nonpositive, read_raw, shuffle_split
from topoxai.errors import DataError
from topoxai.features import fit_preprocessor
from topoxai.files import atomic_dir, json_text
from topoxai.metrics import METRICS
from topoxai.params import DataParams, EvaluateParams, TrainParams

MODELS = ("mlp", "logreg", "hist_gbm")
BASELINES = MODELS[1:]
PAIRED = ("roc_auc", "f1")  # the differences tested for the MLP against each baseline


@dataclass(frozen=True)
class Fold:
    repeat: int  # 1-based, as reported
    fold: int
    fit: np.ndarray  # positions of the rows the models are fitted on
    val: np.ndarray  # the MLP's early-stopping rows (part of the fold's training rows)
    test: np.ndarray
    seed: int  # the MLP's initialisation and shuffles in this fold


@dataclass(frozen=True)
class Setup:
    """What every fold needs (sent with each fold to a worker process: a few MB at most)."""

    frame: pd.DataFrame
    data: DataParams
    train: TrainParams


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
    frame = read_raw(
        raw, target=data.target, categorical=list(data.categorical), drop=list(data.drop)
    )
    frame_kept = drop_nonpositive(frame, list(data.positive)).frame
    rows = sample_rows(frame_kept[data.target].to_numpy(), params.max_rows, seed)
    kept = frame_kept.take(rows)
    labels = kept[data.target].to_numpy()
    val_share = data.split[1] / (data.split[0] + data.split[1])
    splits = make_folds(
        labels, folds=params.folds, repeats=params.repeats, val_share=val_share, seed=seed
    )
    scores = run_folds(Setup(kept, data, train), splits, jobs=params.jobs)
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
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json_text(metrics), encoding="utf-8")
        write_folds(tmp / "folds.tsv", splits, scores)
    return metrics


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


def run_folds(setup: Setup, splits: list[Fold], *, jobs: int) -> list[dict[str, dict[str, float]]]:
    """Each fold's test metrics per model, in fold order whatever `jobs`.

    Every fold seeds its own draws and runs with fixed thread counts, so a fold's numbers
    do not depend on which process ran it, nor on what ran before it there.
    """
    from topoxai.pool import Pool

    with Pool(min(jobs, len(splits)), setup.train.threads) as pool:
        return list(pool.map(score_fold, ((setup, fold) for fold in splits)))


def score_fold(setup: Setup, fold: Fold) -> dict[str, dict[str, float]]:
    """Fit the preprocessing, the MLP and the baselines on one fold; score its test rows."""
    from threadpoolctl import threadpool_limits

    from topoxai.metrics import baseline_models, classification_metrics

    train = setup.train
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = fold_arrays(setup.frame, fold, setup.data)
    with threadpool_limits(limits=train.threads):
        proba = {"mlp": fit_mlp(train, fold.seed, (x_fit, y_fit), (x_val, y_val), x_test)}
        for name, model in baseline_models(fold.seed).items():
            proba[name] = model.fit(x_fit, y_fit).predict_proba(x_test)
    return {name: classification_metrics(y_test, p, digits=None) for name, p in proba.items()}


def fold_arrays(
    frame: pd.DataFrame, fold: Fold, data: DataParams
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Features and class indices of the fold's fit, validation and test rows, with the
    preprocessing fitted on the fit rows alone (as the preprocess stage fits on train)."""
    fit_rows, val_rows, test_rows = (frame.take(r) for r in (fold.fit, fold.val, fold.test))
    spec = fit_preprocessor(
        fit_rows,
        target=data.target,
        categorical=list(data.categorical),
        source_sha256="",
        positive_class=data.positive_class,
        not_measured=data.positive,
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
    x_test: np.ndarray,
) -> np.ndarray:
    """The train stage's procedure on one fold: test-row class probabilities (float64)."""
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
    return predict_proba(fitted.net, torch.from_numpy(x_test)).numpy()


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
        out[model] = {}
        for metric in METRICS:
            est = resampled_t(column(model, metric), level=level, test_train_ratio=test_train_ratio)
            out[model][metric] = _rounded(mean=est.mean, sd=est.sd, low=est.low, high=est.high)
    for baseline in BASELINES:
        out[f"mlp_vs_{baseline}"] = {}
        for metric in PAIRED:
            diff = column("mlp", metric) - column(baseline, metric)
            est = resampled_t(diff, level=level, test_train_ratio=test_train_ratio)
            out[f"mlp_vs_{baseline}"][metric] = _rounded(
                diff=est.mean, low=est.low, high=est.high, p=est.p
            )
    return out


def _rounded(**values: float) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def write_folds(path: Path, splits: list[Fold], scores: list[dict[str, dict[str, float]]]) -> None:
    """One row per fold: its position and every model's metrics (the per-fold plot's table)."""
    header = ["split", "repeat", "fold", "test_rows"] + [
        f"{model}_{metric}" for metric in METRICS for model in MODELS
    ]
    lines = ["\t".join(header)]
    for i, (fold, score) in enumerate(zip(splits, scores), start=1):
        values = [f"{score[model][metric]:.4f}" for metric in METRICS for model in MODELS]
        lines.append(
            "\t".join([str(i), str(fold.repeat), str(fold.fold), str(len(fold.test)), *values])
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The headline numbers as a few readable lines (the stage prints them)."""
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
    return lines
