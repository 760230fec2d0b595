"""Calibration measures: known answers on synthetic probabilities."""

import numpy as np
import pytest
from scipy.special import expit, logit

from topoxai.calibration import calibration, reliability


def _outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities (logits ~ N(0, 1.5)) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(0, 1.5, n))
    return (rng.random(n) < p).astype(int), p


def test_calibrated_probabilities_have_slope_one_intercept_zero_and_ici_zero():
    y, p = _outcomes(20_000, seed=0)
    got = calibration(y, p)
    assert got["calibration_slope"] == pytest.approx(1, abs=0.05)
    assert got["calibration_intercept"] == pytest.approx(0, abs=0.05)
    assert got["ici"] < 0.01


def test_overconfident_probabilities_have_slope_one_half():
    y, p = _outcomes(20_000, seed=1)
    got = calibration(y, expit(2 * logit(p)))  # logit x 2: twice as extreme as the truth
    assert got["calibration_slope"] == pytest.approx(0.5, abs=0.03)
    assert got["calibration_intercept"] == pytest.approx(0, abs=0.05)
    assert got["ici"] > 0.05


def test_probabilities_shifted_down_have_the_shift_as_intercept():
    y, p = _outcomes(20_000, seed=2)
    got = calibration(y, expit(logit(p) - 1))  # every logit 1 too low: too few events predicted
    assert got["calibration_intercept"] == pytest.approx(1, abs=0.05)
    assert got["calibration_slope"] == pytest.approx(1, abs=0.05)


def test_the_slope_is_the_unpenalised_logistic_fit_on_the_logit():
    from sklearn.linear_model import LogisticRegression

    y, p = _outcomes(2_000, seed=3)
    q = expit(1.3 * logit(p) + 0.2)
    unpenalised = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    fit = unpenalised.fit(logit(q)[:, None], y)
    assert calibration(y, q)["calibration_slope"] == pytest.approx(fit.coef_[0, 0], abs=1e-5)


def test_probabilities_of_exactly_zero_or_one_are_finite():
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    p = np.array([0.0, 0.2, 1.0, 0.7, 0.4, 0.6, 0.9, 0.1])
    got = calibration(y, p)
    assert all(np.isfinite(list(got.values())))


def test_reliability_bins_are_tenths_with_their_means():
    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.08, 0.95, 1.0, 0.55, 0.51])
    assert reliability(y, p) == [
        {"predicted": 0.065, "observed": 0.5, "rows": 2},
        {"predicted": 0.53, "observed": 1.0, "rows": 2},
        {"predicted": 0.975, "observed": 0.5, "rows": 2},
    ]
