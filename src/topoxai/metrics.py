"""Test-split metrics, the plots DVC draws from them, and the baseline models."""

from typing import Any

import numpy as np

METRICS = ("f1", "precision", "recall", "accuracy", "roc_auc", "brier", "brier_scaled")
# The scores of a group of rows (a held-out site, a subgroup), each with an interval:
# citl is calibration-in-the-large, observed minus mean predicted; net_benefit_10 the net
# benefit at threshold 0.10 (decision.COMPARED).
INTERVAL_SCORES = (
    "roc_auc",
    "citl",
    "calibration_intercept",
    "calibration_slope",
    "ici",
    "brier",
    "brier_scaled",
    "net_benefit_10",
    "net_benefit_30",
    "net_benefit_50",
)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, *, digits: int | None = 4
) -> dict[str, float]:
    """Macro F1/precision/recall (as the research code), accuracy, ROC-AUC, Brier score and
    scaled Brier score of a two-class prediction (class probabilities, one row per row of
    `y_true`; class 1 is the positive one).

    The same numbers as scikit-learn's f1/precision/recall_score(average="macro",
    zero_division=0), accuracy_score, roc_auc_score and brier_score_loss (tests/
    test_metrics.py checks), in numpy, so that a bootstrap scores a thousand resamples in
    one call. The scaled Brier is 1 - Brier / (prevalence x (1 - prevalence)): 0 for
    predicting the prevalence to every row, 1 for a perfect model (Steyerberg et al.,
    Epidemiology 2010).
    """
    scores = batch_scores(np.asarray(y_true), np.asarray(proba, dtype=np.float64))
    return {k: float(v) if digits is None else round(float(v), digits) for k, v in scores.items()}


def metric_intervals(
    y_true: np.ndarray, proba: np.ndarray, *, level: float, resamples: int, seed: int
) -> dict[str, dict[str, float]]:
    """Each metric's percentile interval from a bootstrap of the rows, stratified by class.

    Resampling within each class keeps the class counts, so ROC-AUC is defined on every
    resample; the metrics come from the same resamples.
    """
    from topoxai.stats import bootstrap_interval

    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    by_class = [np.flatnonzero(y_true == c) for c in range(proba.shape[1])]

    def statistic(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.concatenate(groups, axis=-1)  # (resamples, n) row indices
        return np.stack(list(batch_scores(y_true[rows], proba[rows]).values()))

    low, high = bootstrap_interval(
        statistic, by_class, level=level, resamples=resamples, seed=seed, vectorized=True
    )
    return {
        name: {"low": round(float(lo), 4), "high": round(float(hi), 4)}
        for name, lo, hi in zip(METRICS, low, high)
    }


def batch_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    """Every METRICS score of many resamples at once: y (..., n) class indices, proba
    (..., n, 2); each metric over the last axis of y."""
    from scipy.stats import rankdata

    if proba.shape[-1] != 2:
        raise ValueError(f"two classes expected, got {proba.shape[-1]} columns of probabilities")
    pred = proba.argmax(axis=-1)
    n = y.shape[-1]
    f1, precision, recall = [], [], []
    for c in (0, 1):
        tp = np.sum((pred == c) & (y == c), axis=-1)
        predicted, actual = np.sum(pred == c, axis=-1), np.sum(y == c, axis=-1)
        precision.append(_divide(tp, predicted))
        recall.append(_divide(tp, actual))
        f1.append(_divide(2 * tp, predicted + actual))
    # ROC-AUC as the Mann-Whitney U of the positive-class scores, ties counted half.
    ranks = rankdata(proba[..., 1], axis=-1)
    positives = np.sum(y == 1, axis=-1)
    u = np.sum(np.where(y == 1, ranks, 0.0), axis=-1) - positives * (positives + 1) / 2
    # Brier as everyone reads it: the binary score of the positive class's probability (the
    # two-class sum is twice that).
    brier = np.mean((proba[..., 1] - (y == 1)) ** 2, axis=-1)
    prevalence = np.mean(y == 1, axis=-1)
    no_skill = prevalence * (1 - prevalence)  # the Brier of predicting the prevalence
    return {
        "f1": (f1[0] + f1[1]) / 2,
        "precision": (precision[0] + precision[1]) / 2,
        "recall": (recall[0] + recall[1]) / 2,
        "accuracy": np.sum(pred == y, axis=-1) / n,
        "roc_auc": _divide(u, positives * (n - positives)),
        "brier": brier,
        "brier_scaled": _divide(no_skill - brier, no_skill),
    }


# The ICI's interval comes from this many of the resamples: each needs its own lowess
# smooth, and 1000 of them for three models took 9 s on 450 rows; a 95% percentile interval
# from 200 moves its ends by about 0.005 (the ICI's own scale: 0.01 to 0.2).
ICI_RESAMPLES = 200


def scores_with_intervals(
    y: np.ndarray, probability: dict[str, np.ndarray], *, level: float, resamples: int, seed: int
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, tuple[float, float]]]]:
    """Every INTERVAL_SCORES value per model (probabilities of the positive class for 0/1
    outcomes `y`) with its interval at `level`, and what a meta-analysis pools: logit(ROC-AUC)
    and calibration-in-the-large, each as (value, variance). Intervals and variances
    come from a bootstrap of the rows, the same resamples for every model: stratified by
    class for ROC-AUC (defined on every resample), plain for the rest, whose spread includes
    that of the observed rate (a stratified resample fixes it, and O-E's interval would miss
    the outcome's binomial noise). Calibration intercept and slope have the Wald intervals
    of their logistic fits."""
    from topoxai.calibration import calibration_fit, ici
    from topoxai.decision import COMPARED, batch_net_benefit

    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in (0, 1)]
    stratified = np.concatenate(
        [g[rng.integers(0, len(g), (resamples, len(g)))] for g in by_class], 1
    )
    rows = rng.integers(0, len(y), (resamples, len(y)))
    tail = (1 - level) / 2
    scores: dict[str, dict[str, dict[str, float]]] = {}
    effects: dict[str, dict[str, tuple[float, float]]] = {}
    for model, p in probability.items():
        ys, ps = y[rows], p[rows]
        drawn = batch_scores(ys, np.stack([1 - ps, ps], axis=-1))
        ranked = batch_scores(y[stratified], np.stack([1 - p, p], axis=-1)[stratified])
        replicate = {
            "roc_auc": ranked["roc_auc"],
            "citl": (ys == 1).mean(axis=1) - ps.mean(axis=1),
            # A lowess fit per resample (2-3 ms each): the first ICI_RESAMPLES of them.
            "ici": np.array([ici(a, b) for a, b in zip(ys[:ICI_RESAMPLES], ps[:ICI_RESAMPLES])]),
            "brier": drawn["brier"],
            "brier_scaled": drawn["brier_scaled"],
        }
        for t in COMPARED:
            replicate[f"net_benefit_{round(t * 100)}"] = batch_net_benefit(ys, ps, t)
        point = batch_scores(y[None], np.stack([1 - p, p], axis=-1)[None])
        fit = calibration_fit(y, p, level=level)
        value = {
            "roc_auc": point["roc_auc"][0],
            "citl": float(np.mean(y == 1) - np.mean(p)),
            "ici": ici(y, p),
            "brier": point["brier"][0],
            "brier_scaled": point["brier_scaled"][0],
            **{
                f"net_benefit_{round(t * 100)}": batch_net_benefit(y[None], p[None], t)[0]
                for t in COMPARED
            },
        }
        out = {
            name: _with_interval(value[name], *np.quantile(replicate[name], [tail, 1 - tail]))
            for name in replicate
        }
        out["calibration_intercept"] = _with_interval(*fit["calibration_intercept"])
        out["calibration_slope"] = _with_interval(*fit["calibration_slope"])
        scores[model] = {name: out[name] for name in INTERVAL_SCORES}
        # logit(ROC-AUC) and its variance (nan at an AUC of 0 or 1, where the logit is
        # infinite: no weight can be given); unrounded, as the meta-analysis pools them.
        with np.errstate(divide="ignore", invalid="ignore"):
            logit = np.log(replicate["roc_auc"] / (1 - replicate["roc_auc"]))
            auc = value["roc_auc"]
            effects[model] = {
                "roc_auc": (float(np.log(auc / (1 - auc))), float(np.var(logit, ddof=1))),
                "citl": (value["citl"], float(np.var(replicate["citl"], ddof=1))),
            }
    return scores, effects


def _with_interval(value: float, low: float, high: float) -> dict[str, float]:
    return {
        "value": round(float(value), 4),
        "low": round(float(low), 4),
        "high": round(float(high), 4),
    }


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of any score (not only a probability) for 0/1 labels, ties counted half."""
    score = np.asarray(score, dtype=np.float64)
    return float(batch_scores(np.asarray(y), np.stack([-score, score], axis=-1))["roc_auc"])


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # zero_division=0, as scikit-learn's scores are called here: an empty class scores 0.
    return np.divide(a, b, out=np.zeros(np.shape(a), np.float64), where=np.asarray(b) > 0)


def roc_points(y_true: np.ndarray, score: np.ndarray) -> list[dict[str, float]]:
    """ROC curve rows; sklearn's first threshold is +inf, which strict JSON cannot hold."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y_true, score.astype(np.float64))
    thresholds = np.minimum(thresholds, 1.0)  # scores are probabilities: 1.0 selects nothing more
    return _rows(fpr=fpr, tpr=tpr, threshold=thresholds)


def precision_recall_points(y_true: np.ndarray, score: np.ndarray) -> list[dict[str, float]]:
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, score.astype(np.float64))
    # The last point (recall 0, precision 1) has no threshold; give it the top score.
    thresholds = np.append(thresholds, 1.0)
    return _rows(precision=precision, recall=recall, threshold=thresholds)


def _rows(**columns: np.ndarray) -> list[dict[str, float]]:
    names = list(columns)
    return [
        {n: round(float(v), 6) for n, v in zip(names, values)} for values in zip(*columns.values())
    ]


def baselines(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int
) -> dict[str, dict[str, float]]:
    """Test metrics of simple models on the same features: does the network beat them?"""
    return {
        name: classification_metrics(y_test, model.fit(x_train, y_train).predict_proba(x_test))
        for name, model in baseline_models(seed).items()
    }


def baseline_models(seed: int) -> dict[str, Any]:
    """The baseline models, unfitted: logistic regression and gradient-boosted trees."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "logreg": LogisticRegression(max_iter=1000),
        "hist_gbm": HistGradientBoostingClassifier(random_state=seed),
    }
