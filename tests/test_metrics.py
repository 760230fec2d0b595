"""Test-split metrics and curves."""

import json
import math

import numpy as np

from topoxai.metrics import classification_metrics, precision_recall_points, roc_points


def test_classification_metrics_known_answer():
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert classification_metrics(y, perfect) == {
        "f1": 1.0, "precision": 1.0, "recall": 1.0, "accuracy": 1.0, "roc_auc": 1.0,
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
