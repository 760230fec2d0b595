"""Test-split metrics and curves."""

import json
import math

import numpy as np
import pytest

from topoxai.metrics import (
    classification_metrics,
    metric_intervals,
    precision_recall_points,
    roc_points,
)


def test_classification_metrics_known_answer():
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert classification_metrics(y, perfect) == {
        "f1": 1.0, "precision": 1.0, "recall": 1.0, "accuracy": 1.0, "roc_auc": 1.0,
        "brier": 0.0375, "brier_scaled": 0.85,  # 1 - 0.0375 / (0.5 * 0.5)
    }  # fmt: skip
    one_wrong = perfect[[0, 2, 2, 3]]
    scores = classification_metrics(y, one_wrong)
    assert scores["accuracy"] == 0.75


def test_curves_are_strict_json():
    """DVCLive's sklearn ROC writes Infinity; ours must parse with a strict reader."""
    y = np.array([0, 1, 0, 1, 1])
    score = np.array([0.1, 0.8, 0.4, 0.35, 0.9], dtype=np.float32)
    for points in (roc_points(y, score), precision_recall_points(y, score)):
        text = json.dumps(points, allow_nan=False)
        assert all(math.isfinite(v) for row in json.loads(text) for v in row.values())
    roc = roc_points(y, score)
    assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0)
    assert (roc[-1]["fpr"], roc[-1]["tpr"]) == (1.0, 1.0)


def test_metrics_equal_scikit_learns_with_ties_and_empty_classes():
    from sklearn import metrics

    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(5, 60))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]  # both classes present, as ROC-AUC needs
        p1 = np.round(rng.random(n), 1)  # coarse: many tied scores
        if trial % 5 == 0:
            p1 = np.full(n, 0.3)  # one class predicted for every row
        proba = np.c_[1 - p1, p1]
        pred = proba.argmax(axis=1)
        ours = classification_metrics(y, proba, digits=None)
        macro = {"average": "macro", "zero_division": 0}
        assert ours == pytest.approx(
            {
                "f1": metrics.f1_score(y, pred, **macro),
                "precision": metrics.precision_score(y, pred, **macro),
                "recall": metrics.recall_score(y, pred, **macro),
                "accuracy": metrics.accuracy_score(y, pred),
                "roc_auc": metrics.roc_auc_score(y, p1),
                "brier": metrics.brier_score_loss(y, p1),
                "brier_scaled": 1 - metrics.brier_score_loss(y, p1) / (y.mean() * (1 - y.mean())),
            },
            abs=1e-12,
        )


def test_test_intervals_bracket_the_estimate_and_are_seeded():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [60, 52])
    p1 = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, len(y)), 0, 1)
    proba = np.c_[1 - p1, p1]
    point = classification_metrics(y, proba)
    ci = metric_intervals(y, proba, level=0.95, resamples=400, seed=3)
    assert set(ci) == set(point)
    for name, value in point.items():
        assert ci[name]["low"] <= value <= ci[name]["high"], name
    assert 0.01 < ci["roc_auc"]["high"] - ci["roc_auc"]["low"] < 0.15
    assert metric_intervals(y, proba, level=0.95, resamples=400, seed=3) == ci
