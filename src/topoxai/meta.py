"""Random-effects meta-analysis of a model's performance across hospitals.

Internal-external cross-validation holds out each hospital in turn and scores the model
fitted on the others there (Riley et al., BMJ 2016, "External validation of clinical
prediction models using big datasets"); pooling those held-out scores is a meta-analysis of
prediction model performance (Debray et al., BMJ 2017). The number that says how the model
will do in the next hospital is the prediction interval, not the confidence interval of the
mean: the latter shrinks with more hospitals, the former keeps their spread. ROC-AUC is
pooled on the logit scale (Snell et al., Stat Methods Med Res 2018: its spread across
studies is far closer to normal there), hence `logit_auc` and `Pooled.expit`.
Arrays in, numbers out.
"""

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats


@dataclass(frozen=True)
class Pooled:
    """A random-effects pooled mean, its heterogeneity and its prediction interval."""

    estimate: float
    low: float
    high: float
    tau2: float
    i2: float
    q: float
    p_heterogeneity: float
    prediction_low: float
    prediction_high: float
    studies: int

    def expit(self) -> "Pooled":
        """The same result with the estimate and every bound mapped through the inverse logit.

        For a mean pooled on the logit scale (ROC-AUC via `logit_auc`): expit is monotone, so
        the intervals keep their coverage. tau2, I^2, Q and its p stay on the logit scale,
        where they were estimated; a variance has no counterpart on the probability scale.
        """
        return replace(
            self,
            estimate=float(special.expit(self.estimate)),
            low=float(special.expit(self.low)),
            high=float(special.expit(self.high)),
            prediction_low=float(special.expit(self.prediction_low)),
            prediction_high=float(special.expit(self.prediction_high)),
        )


def random_effects(effects: ArrayLike, variances: ArrayLike, *, level: float) -> Pooled:
    """DerSimonian-Laird random-effects pooling with the Higgins-Thompson-Spiegelhalter PI.

    Between-study variance: DerSimonian & Laird's moment estimator (Control Clin Trials 7,
    1986), tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)) with w = 1 / variance,
    through statsmodels' `combine_effects`. Chosen over Paule-Mandel, the only other
    estimator statsmodels offers (REML it does not): Paule-Mandel is less biased downward
    when heterogeneity is large (Veroniki et al., Res Synth Methods 2016), but with four
    hospitals no estimator of tau^2 is precise, DL is closed-form (statsmodels' Paule-Mandel
    stops when its estimating equation is within 1e-5 of 0, and does not say whether it got
    there), and the prediction interval below is the one published and checked with DL.
    The confidence interval of the mean is the usual Wald one, estimate +- z * SE with
    SE^2 = 1 / sum 1 / (variance + tau^2) (metafor's default). I^2 = max(0, (Q - df) / Q)
    (Higgins & Thompson, Stat Med 2002); Cochran's Q is tested on chi^2 with k - 1 df.

    Prediction interval for a new study (Higgins, Thompson & Spiegelhalter, JRSS A 2009;
    Riley, Higgins & Deeks, BMJ 2011): estimate +- t_{k-2} * sqrt(tau^2 + SE^2). It needs
    k >= 3, and so does this function: two studies could be pooled, but a pooled mean of two
    hospitals without the interval a third would fall in invites the reading this module
    exists to prevent. With tau^2 = 0 (Q <= k - 1) the interval is estimate +- t_{k-2} * SE:
    wider than the confidence interval by t_{k-2} / z, never as narrow.
    """
    y = np.asarray(effects, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError(
            f"need one effect and one variance per study (got shapes {y.shape} and {v.shape})"
        )
    k = len(y)
    if k < 3:
        raise ValueError(f"need at least 3 studies for a prediction interval (got {k})")
    if not (np.isfinite(y).all() and np.isfinite(v).all()):
        raise ValueError("effects and variances must be finite")
    if (v <= 0).any():
        raise ValueError(f"variances must be > 0 (got {v.tolist()})")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    from statsmodels.stats.meta_analysis import combine_effects

    # statsmodels computes its (untruncated) I^2 as 1 - (k - 1) / Q, which divides by zero
    # when every study reports the same effect; that I^2 is not used.
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = combine_effects(y, v, method_re="dl")
    # statsmodels (0.14, 0.15) leaves DL's (Q - df) / c below 0 when Q < df, and would then
    # weight studies by 1 / (variance - |tau^2|). DerSimonian & Laird truncate at 0, where
    # the random-effects mean is the fixed-effect (inverse-variance) mean.
    if fit.tau2 > 0:
        tau2, estimate, se = float(fit.tau2), float(fit.mean_effect_re), float(fit.sd_eff_w_re)
    else:
        tau2, estimate, se = 0.0, float(fit.mean_effect_fe), float(fit.sd_eff_w_fe)
    # Q is a sum of squares; statsmodels' one-pass formula can leave rounding below 0.
    q = max(0.0, float(fit.q))
    z = float(stats.norm.ppf((1 + level) / 2))
    t = float(stats.t.ppf((1 + level) / 2, df=k - 2))
    spread = t * np.sqrt(tau2 + se**2)
    return Pooled(
        estimate=estimate,
        low=estimate - z * se,
        high=estimate + z * se,
        tau2=tau2,
        i2=max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0,
        q=q,
        p_heterogeneity=float(stats.chi2.sf(q, df=k - 1)),
        prediction_low=float(estimate - spread),
        prediction_high=float(estimate + spread),
        studies=k,
    )


def logit_auc(auc: ArrayLike, variance: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUCs and their variances on the logit scale, by the delta method.

    logit(AUC), with var(logit AUC) = var(AUC) / (AUC (1 - AUC))^2, the derivative of the
    logit being 1 / (AUC (1 - AUC)) (Debray et al., BMJ 2017; Snell et al. 2018). An AUC of
    0 or 1 has no finite logit: a hospital where the model separates every row needs
    another treatment than this one.
    """
    a = np.asarray(auc, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if not ((a > 0) & (a < 1)).all():
        raise ValueError(f"AUCs must be strictly between 0 and 1 (got {a.tolist()})")
    if not (var > 0).all():
        raise ValueError(f"AUC variances must be > 0 (got {var.tolist()})")
    return special.logit(a), var / (a * (1 - a)) ** 2
