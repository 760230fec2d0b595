"""Known answers for the random-effects meta-analysis across hospitals."""

import math

import numpy as np
import pytest
from scipy import stats

from topoxai.meta import Pooled, logit_auc, random_effects

# BCG vaccine trials (Colditz et al., JAMA 1994), as metafor's dat.bcg: tpos, tneg, cpos, cneg
# of the 13 trials, read from metadat's data/dat.bcg.rda (github.com/wviechtb/metadat).
BCG_TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
BCG_TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
BCG_CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
BCG_CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])

# Riley, Higgins & Deeks, BMJ 2011;342:d549, figure 1's random-effects example (10 trials of
# an antihypertensive, standardised mean differences and their standard errors), as pimeta
# ships it: columns y and sigmak of data/sbp.RData (github.com/nshi-stat/pimeta).
SBP_Y = np.array([0.0, 0.1, -0.4, -0.8, -0.63, 0.22, -0.34, -0.51, 0.03, -0.81])
SBP_SE = np.array(
    [
        0.42347717,
        0.21939179,
        0.02551067,
        0.19898325,
        0.30102594,
        0.30102594,
        0.07142988,
        0.10204269,
        0.12245123,
        0.30102594,
    ]
)


def bcg_log_risk_ratios() -> tuple[np.ndarray, np.ndarray]:
    # metafor's escalc(measure="RR"): log(a / n1) - log(c / n2), var 1/a - 1/n1 + 1/c - 1/n2.
    n1, n2 = BCG_TPOS + BCG_TNEG, BCG_CPOS + BCG_CNEG
    y = np.log(BCG_TPOS / n1) - np.log(BCG_CPOS / n2)
    v = 1 / BCG_TPOS - 1 / n1 + 1 / BCG_CPOS - 1 / n2
    return y, v


def dersimonian_laird(y: np.ndarray, v: np.ndarray, level: float) -> dict[str, float]:
    """The textbook formulas, written out apart from the module (and from statsmodels)."""
    k = len(y)
    w = 1 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - fixed) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_star = 1 / (v + tau2)
    mu = np.sum(w_star * y) / np.sum(w_star)
    se = 1 / math.sqrt(np.sum(w_star))
    z = stats.norm.ppf((1 + level) / 2)
    t = stats.t.ppf((1 + level) / 2, k - 2)
    half_pi = t * math.sqrt(tau2 + se**2)
    return {
        "estimate": mu,
        "low": mu - z * se,
        "high": mu + z * se,
        "tau2": tau2,
        "i2": max(0.0, (q - (k - 1)) / q),
        "q": q,
        "p_heterogeneity": stats.chi2.sf(q, k - 1),
        "prediction_low": mu - half_pi,
        "prediction_high": mu + half_pi,
    }


def assert_matches(pooled: Pooled, expected: dict[str, float], abs: float) -> None:
    for name, value in expected.items():
        assert getattr(pooled, name) == pytest.approx(value, abs=abs, rel=0), name


def test_bcg_matches_metafors_dersimonian_laird_output():
    # metafor's rma(yi, vi, data=dat, method="DL") on dat.bcg with measure="RR", whose
    # results metafor checks against Stata's metan in
    # tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (github.com/wviechtb/metafor):
    # beta -0.7141, ci.lb -1.0644, ci.ub -0.3638, zval -3.9952, tau2 0.3088, I2 92.1173 (%),
    # QE 152.2330 (QE printed in the same file's FE test: Q does not depend on the model).
    y, v = bcg_log_risk_ratios()
    pooled = random_effects(y, v, level=0.95)
    half_unit = 0.5e-4  # the published numbers carry 4 decimals
    assert pooled.estimate == pytest.approx(-0.7141, abs=half_unit)
    assert pooled.low == pytest.approx(-1.0644, abs=half_unit)
    assert pooled.high == pytest.approx(-0.3638, abs=half_unit)
    assert pooled.tau2 == pytest.approx(0.3088, abs=half_unit)
    assert pooled.i2 == pytest.approx(0.921173, abs=0.5e-6)
    assert pooled.q == pytest.approx(152.2330, abs=half_unit)
    se = (pooled.high - pooled.low) / (2 * stats.norm.ppf(0.975))
    assert pooled.estimate / se == pytest.approx(-3.9952, abs=half_unit)
    assert pooled.p_heterogeneity < 1e-4  # metafor prints "p-val < .0001"
    assert pooled.studies == 13


def test_sbp_prediction_interval_matches_the_published_one():
    # pimeta's pima(sbp$y, sbp$sigmak, method = "HTS"): DL tau^2 and the
    # Higgins-Thompson-Spiegelhalter interval on t with K - 2 = 8 df, printed in its
    # vignette and reference page (nshi-stat.github.io/pimeta/articles/pimeta.html,
    # .../reference/pima.html): -0.3341 [-0.7598, 0.0917], tau-squared 0.0282, I-squared 70.5%.
    pooled = random_effects(SBP_Y, SBP_SE**2, level=0.95)
    assert pooled.estimate == pytest.approx(-0.3341, abs=0.5e-4)
    assert pooled.prediction_low == pytest.approx(-0.7598, abs=0.5e-4)
    assert pooled.prediction_high == pytest.approx(0.0917, abs=0.5e-4)
    assert pooled.tau2 == pytest.approx(0.0282, abs=0.5e-4)
    assert pooled.i2 == pytest.approx(0.705, abs=0.5e-3)
    # pimeta's confidence interval is on t (9 df); Riley et al. print the Wald one this
    # module reports: -0.33 (95% CI -0.48 to -0.18).
    assert (pooled.low, pooled.high) == pytest.approx((-0.48, -0.18), abs=0.5e-2)


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_every_field_matches_the_formulas_written_out(level):
    y_bcg, v_bcg = bcg_log_risk_ratios()
    # Four hospitals' ROC-AUCs pooled on the logit scale, as the pipeline does.
    y_auc, v_auc = logit_auc([0.81, 0.74, 0.88, 0.79], [0.0009, 0.0016, 0.0006, 0.0012])
    for y, v in [(y_bcg, v_bcg), (SBP_Y, SBP_SE**2), (y_auc, v_auc)]:
        pooled = random_effects(y, v, level=level)
        assert pooled.tau2 > 0
        assert_matches(pooled, dersimonian_laird(y, v, level), abs=1e-10)
        assert pooled.studies == len(y)


def test_homogeneous_studies_have_no_heterogeneity():
    # Identical effects: Q = 0, so tau^2 = I^2 = 0, p = 1, and the pooled mean is the
    # effect. With tau^2 = 0 the prediction interval is estimate +- t_{k-2} * SE, SE^2 =
    # 1 / sum(1 / v): wider than the confidence interval (z * SE) by t_{k-2} / z.
    v = np.array([0.01, 0.02, 0.03, 0.04])
    pooled = random_effects([0.8, 0.8, 0.8, 0.8], v, level=0.95)
    se = 1 / math.sqrt(np.sum(1 / v))
    assert (pooled.tau2, pooled.i2, pooled.q) == (0.0, 0.0, pytest.approx(0.0, abs=1e-12))
    assert pooled.p_heterogeneity == pytest.approx(1.0)
    assert pooled.estimate == pytest.approx(0.8, abs=1e-12)
    assert (pooled.low, pooled.high) == pytest.approx((0.8 - 1.959964 * se, 0.8 + 1.959964 * se))
    t2 = 4.302653  # t(0.975, 2 df)
    assert (pooled.prediction_low, pooled.prediction_high) == pytest.approx(
        (0.8 - t2 * se, 0.8 + t2 * se)
    )


def test_less_spread_than_chance_truncates_tau2_at_zero():
    # Q = 0.0342 < k - 1 = 3: DL's (Q - df) / c is -0.0212 and is truncated to 0, leaving the
    # fixed-effect (inverse-variance) mean (statsmodels alone would weight by 1 / (v - 0.0212)).
    y = np.array([0.80, 0.82, 0.78, 0.81])
    v = np.array([0.01, 0.02, 0.03, 0.04])
    pooled = random_effects(y, v, level=0.95)
    assert (pooled.tau2, pooled.i2) == (0.0, 0.0)
    assert pooled.q < 3
    assert pooled.estimate == pytest.approx(np.sum(y / v) / np.sum(1 / v), abs=1e-12)
    assert_matches(pooled, dersimonian_laird(y, v, 0.95), abs=1e-10)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_fewer_than_three_studies_raise(k):
    with pytest.raises(ValueError, match="at least 3 studies"):
        random_effects([0.1, 0.2][:k], [0.01, 0.02][:k], level=0.95)


@pytest.mark.parametrize("bad", [0.0, -0.01, np.nan])
def test_variances_must_be_positive(bad):
    with pytest.raises(ValueError, match=r"variances|finite"):
        random_effects([0.1, 0.2, 0.3], [0.01, bad, 0.02], level=0.95)


def test_other_bad_arguments_raise():
    with pytest.raises(ValueError, match="one effect and one variance"):
        random_effects([0.1, 0.2, 0.3], [0.01, 0.02], level=0.95)
    with pytest.raises(ValueError, match="level"):
        random_effects([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], level=95)
    with pytest.raises(ValueError, match="between 0 and 1"):
        logit_auc([0.8, 1.0], [0.001, 0.001])
    with pytest.raises(ValueError, match="variances must be > 0"):
        logit_auc([0.8, 0.9], [0.001, 0.0])


def test_logit_auc_is_the_delta_method_and_round_trips():
    # logit(0.75) = log 3; var 0.001 / (0.75 * 0.25)^2 = 0.001 / 0.03515625.
    effect, variance = logit_auc(0.75, 0.001)
    assert effect == pytest.approx(math.log(3))
    assert variance == pytest.approx(0.001 / 0.03515625)
    auc = np.array([0.62, 0.75, 0.91])
    var = np.array([0.002, 0.001, 0.0004])
    effect, variance = logit_auc(auc, var)
    back = 1 / (1 + np.exp(-effect))
    np.testing.assert_allclose(back, auc, rtol=1e-12)
    np.testing.assert_allclose(variance * (back * (1 - back)) ** 2, var, rtol=1e-12)


def test_expit_maps_every_bound_and_keeps_the_rest():
    effect, variance = logit_auc([0.81, 0.74, 0.88, 0.79], [0.0009, 0.0016, 0.0006, 0.0012])
    logit_scale = random_effects(effect, variance, level=0.95)
    auc_scale = logit_scale.expit()
    for name in ("estimate", "low", "high", "prediction_low", "prediction_high"):
        value = getattr(logit_scale, name)
        assert getattr(auc_scale, name) == pytest.approx(1 / (1 + math.exp(-value)), abs=1e-15)
    for name in ("tau2", "i2", "q", "p_heterogeneity", "studies"):
        assert getattr(auc_scale, name) == getattr(logit_scale, name)
    assert 0 < auc_scale.prediction_low < auc_scale.low < auc_scale.estimate
    assert auc_scale.estimate < auc_scale.high < auc_scale.prediction_high < 1
