"""The sites stage's figures: a forest plot and each held-out site's calibration curves."""

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from topoxai.calibration import reliability

DPI = 100
MODEL_NAMES = {"mlp": "MLP", "logreg": "logistic regression", "hist_gbm": "gradient boosting"}


def forest_figure(metrics: dict[str, Any]) -> Figure:
    """Per site, the MLP's ROC-AUC and calibration-in-the-large with their intervals; then
    the pooled estimate with its confidence interval and the prediction interval for a
    new site (the dashed bar)."""
    sites = list(metrics["sites"])
    figure = Figure(figsize=(9, 1.2 + 0.45 * (len(sites) + 2)))
    axes = figure.subplots(1, 2, sharey=True)
    labels = [*(f"{s} ({metrics['sites'][s]['rows']})" for s in sites), "pooled", "a new site"]
    y = np.arange(len(labels))[::-1]
    for ax, name, title, line in (
        (axes[0], "roc_auc", "ROC-AUC", None),
        (axes[1], "citl", "observed - predicted rate", 0.0),
    ):
        for i, site in enumerate(sites):
            s = metrics["sites"][site]["mlp"][name]
            ax.errorbar(s["value"], y[i], xerr=[[s["value"] - s["low"]], [s["high"] - s["value"]]],
                        fmt="s", color="black", capsize=3)  # fmt: skip
        if p := metrics["pooled"]["mlp"][name]:  # null: too few sites to pool
            ax.errorbar(p["estimate"], y[-2], xerr=[[p["estimate"] - p["low"]], [p["high"] - p["estimate"]]],
                        fmt="D", color="tab:blue", capsize=3)  # fmt: skip
            ax.plot(
                [p["prediction_low"], p["prediction_high"]], [y[-1], y[-1]], "--", color="tab:blue"
            )
            ax.plot([p["estimate"]], [y[-1]], "D", color="tab:blue", fillstyle="none")
        if line is not None:
            ax.axvline(line, color="grey", linewidth=0.8)
        ax.set_title(f"{title} (MLP)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    figure.suptitle(f"At a site it never saw ({metrics['level']:.0%} intervals)")
    figure.tight_layout()
    return figure


def calibration_figure(results: list[Any]) -> Figure:
    """One panel per held-out site: observed rate against mean predicted probability per
    tenth of the probability range, each model; the diagonal is perfect calibration."""
    figure = Figure(figsize=(3.2 * len(results), 3.4))
    axes = np.atleast_1d(figure.subplots(1, len(results), sharey=True))
    for ax, result in zip(axes, results):
        for model, p in result.probability.items():
            points = reliability(result.label, p)
            ax.plot([q["predicted"] for q in points], [q["observed"] for q in points], "o-",
                    label=MODEL_NAMES.get(model, model), markersize=3)  # fmt: skip
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.set_title(f"{result.site} ({len(result.label)})")
        ax.set_xlabel("mean predicted")
    axes[0].set_ylabel("observed rate")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def save(figure: Figure, path: Path) -> None:
    # No "Software" entry: the PNG bytes must not change with matplotlib's version.
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
