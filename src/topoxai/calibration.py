"""Can a predicted probability be taken at face value? Calibration measures and bins.

Calibration-in-the-large and the calibration slope are the logistic recalibration of the
outcome on logit(p) (Cox 1958; Van Calster et al., J Clin Epidemiol 2016): the intercept
with the slope fixed at 1 (0: as many events as predicted), and the slope (1: predictions
as spread as the outcomes; < 1: too extreme). The Integrated Calibration Index (Austin &
Steyerberg, Stat Med 2019) is the mean |smoothed observed rate - p| over the rows.
"""

import warnings
from typing import Any

import numpy as np

CALIBRATION = ("calibration_intercept", "calibration_slope", "ici")
# Probabilities are clipped this far from 0 and 1 before the logit: a tree model's 0 or 1
# would be an infinite logit; 1e-6 is a logit of about +-14, beyond any fitted difference.
CLIP = 1e-6
# The smoother of the ICI: lowess over this share of the rows (R's loess default, 0.75,
# which Austin & Steyerberg used; their loess is local quadratic, statsmodels' lowess local
# linear), with no robustness iterations: those
# would down-weight every outcome the smooth does not expect, and with 0/1 outcomes that
# is each minority outcome in a region.
FRAC = 0.75


def calibration(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Calibration intercept, slope and ICI of probabilities `p` for 0/1 outcomes `y`."""
    intercept, slope = _logistic_fits(y, p)
    return {
        "calibration_intercept": float(intercept.params[0]),
        "calibration_slope": float(slope.params[1]),
        "ici": ici(y, p),
    }


def ici(y: np.ndarray, p: np.ndarray) -> float:
    """The Integrated Calibration Index alone (as `calibration` computes it)."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # delta: points closer than 0.5% of the range share one local fit (the speed-up
        # statsmodels documents); the smooth moves by far less than that.
        smooth = lowess(y, p, frac=FRAC, it=0, delta=0.005, return_sorted=False)
    return float(np.mean(np.abs(np.clip(smooth, 0, 1) - p)))


def calibration_fit(
    y: np.ndarray, p: np.ndarray, *, level: float
) -> dict[str, tuple[float, float, float]]:
    """Calibration intercept and slope (as `calibration`), each with its Wald interval at
    `level` from the logistic fit's standard error: (value, low, high)."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    out = {}
    fits = zip(("calibration_intercept", "calibration_slope"), _logistic_fits(y, p), (0, 1))
    for name, fit, i in fits:
        value, se = float(fit.params[i]), float(fit.bse[i])
        out[name] = (value, value - z * se, value + z * se)
    return out


def _logistic_fits(y: np.ndarray, p: np.ndarray) -> tuple[Any, Any]:
    """The two logistic recalibrations of the outcome on logit(p): the intercept with the
    slope fixed at 1 (an offset), and intercept and slope (statsmodels results)."""
    import statsmodels.api as sm

    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    logit = np.log(p / (1 - p))
    binomial = sm.families.Binomial()
    with warnings.catch_warnings():
        # A fold where the model separates the classes perfectly has no finite slope:
        # statsmodels warns and returns its last iterate, a large number, which is the
        # honest reading (far too spread out would be < 1, not this).
        warnings.simplefilter("ignore")
        intercept = sm.GLM(y, np.ones_like(y), family=binomial, offset=logit).fit()
        slope = sm.GLM(y, sm.add_constant(logit), family=binomial).fit()
    return intercept, slope


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """The reliability diagram's points: per equal-width bin of `p` with rows in it, the mean
    predicted probability, the observed event rate and the number of rows."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)  # p = 1 goes in the last bin
    rows = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=p, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    return [
        {
            "predicted": round(float(predicted[b] / rows[b]), 4),
            "observed": round(float(observed[b] / rows[b]), 4),
            "rows": int(rows[b]),
        }
        for b in np.flatnonzero(rows)
    ]
