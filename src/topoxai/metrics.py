"""Test-split metrics, the plots DVC draws from them, and the reference baselines."""

from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Macro F1/precision/recall (as the research code), accuracy and ROC-AUC."""
    from sklearn import metrics

    pred = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        auc = metrics.roc_auc_score(y_true, proba[:, 1])
    else:
        auc = metrics.roc_auc_score(y_true, proba, multi_class="ovr")
    scores = {
        "f1": metrics.f1_score(y_true, pred, average="macro", zero_division=0),
        "precision": metrics.precision_score(y_true, pred, average="macro", zero_division=0),
        "recall": metrics.recall_score(y_true, pred, average="macro", zero_division=0),
        "accuracy": metrics.accuracy_score(y_true, pred),
        "roc_auc": auc,
    }
    return {k: round(float(v), 4) for k, v in scores.items()}


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
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    models: dict[str, Any] = {
        "logreg": LogisticRegression(max_iter=1000),
        "hist_gbm": HistGradientBoostingClassifier(random_state=seed),
    }
    return {
        name: classification_metrics(y_test, model.fit(x_train, y_train).predict_proba(x_test))
        for name, model in models.items()
    }
