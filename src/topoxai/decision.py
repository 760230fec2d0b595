"""Decision curve analysis (Vickers & Elkin, Med Decis Making 2006): is a model useful at a
threshold probability?

Treating every row with p >= t, the net benefit is TP/n - FP/n x t / (1 - t): the true
positives, less the false positives weighted by the odds at which a clinician is indifferent
between treating and not. Treat-all and treat-none (0) are the strategies a model must beat.
"""

import numpy as np

# The threshold probabilities of the curve: 0.05 to 0.80 (the range the reviewers
# read; below 0.05 or above 0.80 nobody would decide by this model), one point per 0.01.
THRESHOLDS = np.round(np.arange(5, 81) / 100, 2)
# The thresholds at which the MLP and logistic regression are compared, with intervals.
COMPARED = (0.1, 0.3, 0.5)


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Net benefit of treating the rows with p >= t, per threshold t (0/1 outcomes `y`)."""
    y, p = np.asarray(y, dtype=bool), np.asarray(p, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    treated = p[None, :] >= t[:, None]  # (thresholds, rows)
    true_pos = (treated & y).sum(axis=1) / len(y)
    false_pos = (treated & ~y).sum(axis=1) / len(y)
    return true_pos - false_pos * t / (1 - t)


def batch_net_benefit(y: np.ndarray, p: np.ndarray, t: float) -> np.ndarray:
    """Net benefit at one threshold `t` of each row of (resamples, n) outcomes and
    probabilities: `net_benefit` of many bootstrap resamples at once."""
    treated = p >= t
    n = y.shape[-1]
    return ((treated & (y == 1)).sum(-1) - (treated & (y != 1)).sum(-1) * t / (1 - t)) / n


def treat_all(y: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Net benefit of treating every row."""
    return net_benefit(y, np.ones(len(y)), thresholds)


def useful_range(
    model: np.ndarray, all_: np.ndarray, thresholds: np.ndarray = THRESHOLDS
) -> tuple[float, float] | None:
    """The longest run of consecutive thresholds where `model`'s net benefit exceeds both
    treat-all's and treat-none's (0), as (first, last); None if there is none."""
    better = model > np.maximum(all_, 0.0)
    best, start = None, None
    for i, b in enumerate([*better.tolist(), False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            if best is None or i - start > best[1] - best[0] + 1:
                best = (start, i - 1)
            start = None
    return None if best is None else (float(thresholds[best[0]]), float(thresholds[best[1]]))
