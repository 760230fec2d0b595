"""Logistic recalibration of a model's output on a new site's labelled rows, and of its
conformal sets: what `topoxai update` (topoxai.update) writes into a model folder and what
the sites stage measures (topoxai.update_effect).

Not retraining: the network and its preprocessing stay as they are, and the probability p is
mapped to expit(a + b logit(p)) (Steyerberg, Clinical Prediction Models, ch. 20; Vergouwe et
al., Stat Med 2017). With few rows only the intercept a is fitted, the slope b held at 1
(recalibration-in-the-large); with enough of the smaller class, both. The map is folded into
the network's output layer (its logits scaled by b, a added to the positive class's), so that
`predict`, `--explain` and the conformal sets all see the updated probability, and the folder
stays plain safetensors and JSON. A monotone map (b > 0) leaves the ranking, and so ROC-AUC,
exactly as it was: an update fixes probabilities, never discrimination.

numpy only (no statsmodels, no pandas): the core install updates as it scores.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from topoxai.conformal import Conformal
from topoxai.errors import DataError

# Fewer rows than this are refused: an intercept from fewer has a standard error above 0.5
# on the logit scale at a prevalence of 0.5 (2 / sqrt(20)), and no conformal class below.
MIN_ROWS = 20
# The slope is fitted too when the smaller class has this many rows: 10 events per
# parameter for 2 parameters (Peduzzi et al., J Clin Epidemiol 1996; Steyerberg ch. 20 uses
# the same rule of thumb for updating). Below it, the intercept alone.
SLOPE_MIN_CLASS = 20
# Probabilities are clipped this far from 0 and 1 before the logit (as topoxai.calibration).
CLIP = 1e-6


@dataclass(frozen=True)
class Recalibration:
    intercept: float
    slope: float
    method: str  # "intercept" (slope held at 1) or "intercept and slope"
    intercept_se: float
    slope_se: float | None  # None: held at 1

    def apply(self, p: np.ndarray) -> np.ndarray:
        """The updated probability of each original probability `p`."""
        return expit(self.intercept + self.slope * logit(p))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def fit_recalibration(y: np.ndarray, p: np.ndarray) -> Recalibration:
    """The recalibration of probabilities `p` for 0/1 outcomes `y`: intercept and slope when
    the smaller class has SLOPE_MIN_CLASS rows and the slope comes out positive, else the
    intercept alone (offset logistic regression on logit(p)). DataError below MIN_ROWS or
    with one class."""
    y = np.asarray(y, dtype=np.float64)
    check_rows(y)
    x = logit(p)
    if min(np.sum(y == 0), np.sum(y == 1)) >= SLOPE_MIN_CLASS:
        (a, b), (se_a, se_b) = logistic(y, np.column_stack([np.ones_like(x), x]), np.zeros_like(x))
        if b > 0:  # a slope <= 0 would reverse the ranking: no recalibration does that
            return Recalibration(a, b, "intercept and slope", se_a, se_b)
    (a,), (se_a,) = logistic(y, np.ones((len(x), 1)), x)
    return Recalibration(a, 1.0, "intercept", se_a, None)


def check_rows(y: np.ndarray) -> None:
    counts = [int(np.sum(y == c)) for c in (0, 1)]
    if len(y) < MIN_ROWS:
        raise DataError(f"update: {len(y)} labelled rows, at least {MIN_ROWS} are needed")
    if min(counts) == 0:
        raise DataError(
            f"update: every row is class {int(counts[1] > 0)}; recalibrating needs both classes"
        )


def logistic(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, *, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression of `y` on the columns of `x` with an `offset`
    (Newton-Raphson): the coefficients and their standard errors. statsmodels' GLM gives the
    same to 1e-6 (tests/test_update.py); this keeps the core install free of it."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        mu = expit(offset + x @ beta)
        w = mu * (1 - mu)
        hessian = x.T @ (x * w[:, None])
        step = np.linalg.solve(hessian, x.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    mu = expit(offset + x @ beta)
    covariance = np.linalg.inv(x.T @ (x * (mu * (1 - mu))[:, None]))
    return beta, np.sqrt(np.diag(covariance))


def fold_into(state: dict[str, Any], recalibration: Recalibration) -> dict[str, Any]:
    """The network's weights with the recalibration folded into its output layer: P(positive)
    is the softmax's sigmoid(z1 - z0), so logits (b z0, b z1 + a) give expit(a + b (z1 - z0))."""
    import torch

    out = dict(state)
    weight, bias = state["output.weight"].double(), state["output.bias"].double()
    shift = torch.tensor([0.0, recalibration.intercept], dtype=torch.float64)
    out["output.weight"] = (weight * recalibration.slope).to(state["output.weight"].dtype)
    out["output.bias"] = (bias * recalibration.slope + shift).to(state["output.bias"].dtype)
    return out


def conformal_rows(level: float) -> int:
    """Calibration rows a class needs before its label can ever leave a set at `level`: a
    p-value is at least 1 / (n + 1), so n >= 1 / (1 - level) - 1 (19 at 95%)."""
    return int(np.ceil(1 / (1 - level) - 1 - 1e-9))


def recalibrate_sets(
    conformal: Conformal, recalibration: Recalibration, y: np.ndarray, updated: np.ndarray
) -> tuple[Conformal, str]:
    """The conformal calibration for the updated probabilities: per class, the site's rows of
    that class when it has enough of them (`conformal_rows`), else the model's own calibration
    scores carried through the recalibration (the same rows, their updated probabilities)."""
    need = conformal_rows(conformal.level)
    scores, said = [], []
    for c, old in enumerate(conformal.scores):
        mine = y == c
        if mine.sum() >= need:
            own = updated[mine] if c == 1 else 1 - updated[mine]
            scores.append(np.sort(1 - own).tolist())
            said.append(f"class {c}: recalibrated on {int(mine.sum())} rows")
        else:
            # An old score s is 1 - P(c): P(1) = 1 - s for class 1, s for class 0.
            s = np.asarray(old)
            carried = 1 - recalibration.apply(1 - s) if c == 1 else recalibration.apply(s)
            scores.append(np.sort(carried).tolist())
            said.append(f"class {c}: kept ({int(mine.sum())} rows, {need} needed)")
    return Conformal(level=conformal.level, scores=scores), "; ".join(said)
