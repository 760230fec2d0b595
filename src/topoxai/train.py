"""The train stage's work: data in, trained model, metrics and plots out."""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from dvclive import Live
from threadpoolctl import threadpool_limits

from topoxai import ood
from topoxai.artifacts import INTENDED_USE, architecture, save_model
from topoxai.classifier import fit_network, predict_proba
from topoxai.conformal import calibrate
from topoxai.data import read_split, split_path
from topoxai.features import SPEC_FILE, Preprocessor
from topoxai.files import atomic_dir, sha256_file
from topoxai.metrics import (
    baselines,
    classification_metrics,
    metric_intervals,
    precision_recall_points,
    roc_points,
)
from topoxai.params import TrainParams


@dataclass(frozen=True)
class TrainResult:
    history: list[dict[str, float]]  # one entry per epoch: train/loss, val/loss, val/f1
    test: dict[str, float]
    baseline: dict[str, dict[str, float]]
    card: dict[str, Any]


def train(
    params: TrainParams,
    *,
    seed: int,
    level: float,
    data: str | Path,
    model_dir: str | Path,
    live_dir: str | Path,
) -> TrainResult | None:
    """Fit, evaluate and save; the returned summary is what a tracker (ClearML) records.

    Returns None on the extra ranks of a DDP run: they only train; rank 0 writes everything.
    """
    data, model_dir, live_dir = Path(data), Path(model_dir), Path(live_dir)
    history: list[dict[str, float]] = []
    spec = Preprocessor.load(data / SPEC_FILE)
    splits = {name: read_split(split_path(data, name), spec) for name in ("train", "val", "test")}
    tensors = {
        name: (torch.from_numpy(x), torch.from_numpy(y)) for name, (x, y, _) in splits.items()
    }

    def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
        names = {"train_loss": "train/loss", "val_loss": "val/loss", "val_f1": "val/f1"}
        history.append({name: round(metrics[key], 6) for key, name in names.items()})
        print(
            f"epoch {epoch:3d}  train_loss {metrics['train_loss']:.4f}  "
            f"val_loss {metrics['val_loss']:.4f}  val_f1 {metrics['val_f1']:.4f}",
            flush=True,
        )

    # Thread pools capped too, so sklearn's baselines do not depend on the core count either.
    with threadpool_limits(limits=params.threads):
        fitted = fit_network(
            params,
            seed=seed,
            train=tensors["train"],
            val=tensors["val"],
            classes=len(spec.classes),
            on_epoch=log_epoch,
            progress=True,  # on a terminal only (topoxai.progress)
        )
        if not fitted.is_global_zero:
            return None
        x_test, y_test = tensors["test"]
        proba = predict_proba(fitted.net, x_test).numpy()
        # The conformal sets' calibration: the validation rows trained no weight, but early
        # stopping watched them; the evaluate stage measures the sets' coverage on rows
        # that did neither (docs/use.md).
        x_val, y_val = tensors["val"]
        conformal = calibrate(predict_proba(fitted.net, x_val).numpy(), y_val.numpy(), level)
        # predict's ood score: distances from the training rows, calibrated on the same
        # held-out rows (benchmarks/ood.py chose it).
        distance = ood.fit(tensors["train"][0].numpy(), x_val.numpy())
        test = classification_metrics(y_test.numpy(), proba)
        # 112 rows by default: one patient moves accuracy by 0.9 points; say how much.
        test_ci = metric_intervals(
            y_test.numpy(), proba, level=level, resamples=params.test_resamples, seed=seed
        )
        baseline = baselines(*splits["train"][:2], *splits["test"][:2], seed=seed)

    # Written to a temporary sibling and renamed at the end: a failure leaves no half folder.
    with atomic_dir(live_dir) as live_tmp:
        # save_dvc_exp=False: `dvc repro`/`dvc exp run` own the experiment; dvcyaml=False: the
        # project's dvc.yaml declares metrics and plots, DVCLive must not rewrite it.
        with Live(str(live_tmp), dvcyaml=False, save_dvc_exp=False) as live:
            for epoch in history:
                for name, value in epoch.items():
                    live.log_metric(name, value)
                live.next_step()
            live.summary["best_epoch"] = fitted.best_epoch
            # The epoch whose weights were kept: rank runs by these, not by the last epoch's
            # val.* nor by test.f1 (112 rows: 0.018 is two patients).
            best = history[fitted.best_epoch]
            live.summary["best"] = {"val_loss": best["val/loss"], "val_f1": best["val/f1"]}
            live.summary["epochs"] = fitted.epochs
            live.summary["test"] = test
            live.summary["test_interval"] = test_ci
            live.summary["baseline"] = baseline
            _log_test_plots(live, y_test.numpy(), proba, spec)
            rows = splits["test"][2]
            _write_predictions(live_tmp / "test_predictions.csv", rows, y_test.numpy(), proba)

        card: dict[str, Any] = {
            "intended_use": INTENDED_USE,
            "architecture": architecture(fitted.net),
            "target": spec.target,
            "classes": spec.classes,
            # predict's probability column, P(<target>=<positive_class>), is this class's
            "positive_class": spec.positive_class,
            "class_names": spec.names,  # as the set column and the page name the classes
            "feature_names": spec.feature_names,
            "metrics": {"test": test},
            "conformal": {
                "level": level,
                "calibration": "val split",
                "rows": [len(s) for s in conformal.scores],  # per class, in `classes` order
            },
            "ood": {"score": "mahalanobis", "calibration": "val split", "alpha": ood.ALPHA},
            "training": {
                "seed": seed,
                "best_epoch": fitted.best_epoch,
                "epochs": fitted.epochs,
                "optimizer": params.optimizer,
                "lr": params.lr,
                "batch_size": params.batch_size,
            },
            "data": {
                "raw_sha256": spec.source_sha256,
                "train_sha256": sha256_file(split_path(data, "train")),
            },
            "versions": {"torch": torch.__version__, "lightning": lightning.__version__},
        }
        card = save_model(
            model_dir,
            fitted.net,
            spec,
            card,
            initial=fitted.initial,
            conformal=conformal,
            ood=distance,
        )
    print(f"test: {test}")
    print(f"baselines: {baseline}")
    return TrainResult(history, test, baseline, card)


def _log_test_plots(live: Live, y: np.ndarray, proba: np.ndarray, spec: Preprocessor) -> None:
    # ROC and PR are written as custom plots: DVCLive's sklearn ROC keeps sklearn's +inf
    # threshold, and strict JSON readers reject the `Infinity` it writes.
    score = proba[:, -1]
    live.log_plot("roc", roc_points(y, score), x="fpr", y="tpr", template="simple")
    live.log_plot(
        "precision_recall",
        precision_recall_points(y, score),
        x="recall",
        y="precision",
        template="simple",
    )
    labels = [str(c) for c in spec.classes]
    live.log_sklearn_plot(
        "confusion_matrix",
        [labels[i] for i in y],
        [labels[i] for i in proba.argmax(axis=1)],
        name="confusion_matrix",
    )


def _write_predictions(path: Path, rows: np.ndarray, y: np.ndarray, proba: np.ndarray) -> None:
    """Per-row test probabilities: what `predict` must reproduce from the raw rows."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "label", "probability"])
        for row, label, p in zip(rows.tolist(), y.tolist(), proba[:, -1].tolist()):
            # 10 digits: float32 logits carry fewer, and the float64 softmax's last bits
            # differ between CPU kernels, so a full repr would change the file's hash.
            writer.writerow([row, label, f"{p:.10g}"])
