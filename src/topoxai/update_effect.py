"""What updating on a held-out site's own rows buys: the sites stage's before/after measure.

For a held-out site, draw n of its labelled rows (stratified by class, many times), update on
them as `topoxai update` does (topoxai.recalibration: the recalibration, then the conformal
sets),
and score the site's remaining rows before and after: calibration-in-the-large, slope, ICI,
Brier and the conformal sets' coverage per class. The spread over draws is what a site
would see with another sample of n rows.
"""

from typing import Any

import numpy as np

from topoxai.data import shuffle_split

MEASURES = ("citl", "calibration_slope", "ici", "brier", "coverage_class_0", "coverage_class_1")
# What "fits the site" means in the summary: O-E within this of 0, each class's coverage
# within this of the level.
WITHIN = 0.05


def update_effects(
    y: np.ndarray,
    p: np.ndarray,
    calibration: tuple[np.ndarray, np.ndarray],
    *,
    level: float,
    sizes: tuple[int, ...],
    draws: int,
    seed: int,
) -> dict[str, Any]:
    """Per n in `sizes` (those that leave rows of both classes to score): the mean and the
    spread (2.5th to 97.5th percentile over `draws`) of every MEASURES value before and after
    updating the probabilities `p` of the site's rows `y` on n of them. `calibration`: the
    (probabilities, labels) the model's conformal sets were calibrated on (rows of the other
    sites)."""
    from topoxai.calibration import calibration as calibration_of
    from topoxai.conformal import calibrate
    from topoxai.recalibration import MIN_ROWS, fit_recalibration, recalibrate_sets

    before_sets = calibrate(calibration[0], calibration[1], level)
    out: dict[str, Any] = {}
    for n in sizes:
        if n < MIN_ROWS or n >= len(y) - 2:
            continue
        scores: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        slopes = 0
        for d in range(draws):
            draw_seed = int(np.random.SeedSequence([seed, n, d]).generate_state(1)[0])
            rest, drawn = shuffle_split(y, n / len(y), draw_seed)
            if min(np.sum(y[drawn] == 0), np.sum(y[drawn] == 1)) == 0:
                continue  # a class too rare to be drawn: nothing to update on
            recalibration = fit_recalibration(y[drawn], p[drawn])
            slopes += recalibration.slope_se is not None
            updated = recalibration.apply(p)
            after_sets, _ = recalibrate_sets(before_sets, recalibration, y[drawn], updated[drawn])
            for when, probability, sets in (
                ("before", p, before_sets),
                ("after", updated, after_sets),
            ):
                q, labels = probability[rest], y[rest]
                two = np.stack([1 - q, q], axis=1)
                covered = sets.sets(sets.p_values(two))[np.arange(len(rest)), labels]
                fit = calibration_of(labels, q)
                scores[when].append(
                    {
                        "citl": float(labels.mean() - q.mean()),
                        "calibration_slope": fit["calibration_slope"],
                        "ici": fit["ici"],
                        "brier": float(np.mean((q - labels) ** 2)),
                        **{
                            f"coverage_class_{c}": float(covered[labels == c].mean())
                            if np.any(labels == c)
                            else float("nan")
                            for c in (0, 1)
                        },
                    }
                )
        if not scores["after"]:
            continue
        out[str(n)] = {
            "draws": len(scores["after"]),
            "slope_fitted": slopes,  # draws with enough of the smaller class for a slope
            **{when: summarise(values) for when, values in scores.items()},
        }
    return out


def summarise(values: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Per measure: the mean over draws and its 2.5th and 97.5th percentiles (nan-free)."""
    out: dict[str, dict[str, float | None]] = {}
    for name in MEASURES:
        v = np.array([x[name] for x in values], dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            out[name] = {"mean": None, "low": None, "high": None}
            continue
        low, high = np.quantile(v, [0.025, 0.975])
        out[name] = {
            k: round(float(x), 4) for k, x in (("mean", v.mean()), ("low", low), ("high", high))
        }
    return out


def rows_needed(effects: dict[str, Any], level: float) -> int | None:
    """The smallest n whose mean after-update O-E is within WITHIN of 0 and whose mean coverage
    of each class is within WITHIN of `level`; None when no n measured gets there."""
    for n, e in sorted(effects.items(), key=lambda item: int(item[0])):
        after = e["after"]
        citl, coverage = (
            after["citl"]["mean"],
            [after[f"coverage_class_{c}"]["mean"] for c in (0, 1)],
        )
        if (
            citl is not None
            and abs(citl) <= WITHIN + 1e-9  # the means are rounded to 4 decimals
            and all(c is not None and abs(c - level) <= WITHIN + 1e-9 for c in coverage)
        ):
            return int(n)
    return None
