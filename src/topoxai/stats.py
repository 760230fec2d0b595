"""Intervals and tests for every number the pipeline reports with its uncertainty.

One home for them: the evaluate stage's cross-validated estimates, the train stage's
test-split intervals and the explain stage's error bars and controls all come from here.
Arrays in, numbers out; every random draw from an explicit seed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A mean with its spread, a confidence interval and the t-test of "the mean is 0"."""

    mean: float
    sd: float
    low: float
    high: float
    t: float
    p: float


def resampled_t(values: ArrayLike, *, level: float, test_train_ratio: float) -> Estimate:
    """Mean of per-split scores with the corrected resampled t interval and test.

    Nadeau & Bengio (Machine Learning 52, 2003), as used for repeated k-fold by Bouckaert &
    Frank (PAKDD 2004): the J scores of repeated splits are correlated, because their
    training sets overlap, so the variance of their mean is (1/J + n_test/n_train) s^2
    rather than s^2 / J; t = mean / sqrt(that) on J - 1 degrees of freedom. For paired
    differences between two models this is the corrected resampled t-test of "no
    difference" (two-sided p). `test_train_ratio` = 0 gives the plain one-sample t (for
    independent draws such as seeded initialisations).
    """
    x = np.asarray(values, dtype=np.float64)
    j = len(x)
    if j < 2:
        raise ValueError(f"need at least 2 values (got {j})")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    se = sd * np.sqrt(1 / j + test_train_ratio)
    quantile = float(stats.t.ppf(0.5 + level / 2, df=j - 1))
    if se == 0:  # every split scored the same: no spread to test against
        t = 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
        return Estimate(mean, sd, mean, mean, t, 1.0 if mean == 0 else 0.0)
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), df=j - 1))
    return Estimate(mean, sd, mean - quantile * se, mean + quantile * se, float(t), p)


def bootstrap_interval(
    statistic: Callable[..., Any],
    groups: Sequence[np.ndarray],
    *,
    level: float,
    resamples: int,
    seed: int,
    vectorized: bool = False,
) -> tuple[Any, Any]:
    """Percentile bootstrap interval of `statistic(*groups)`, resampling each group apart.

    Groups are typically the row indices of each class: resampling within a class keeps
    every resample's class counts (a stratified bootstrap), so a metric such as ROC-AUC is
    defined on each. scipy.stats.bootstrap does the drawing; `seed` makes it repeatable.
    A `vectorized` statistic gets each group as a (resamples, size) array and `axis=-1`,
    and may return several numbers per resample: then low and high are arrays.
    """
    groups = tuple(np.asarray(g) for g in groups)
    result = stats.bootstrap(
        groups,
        statistic,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        vectorized=vectorized,
        paired=False,
        # About 4M values per vectorized call, so memory stays bounded on large samples.
        batch=max(1, 4_000_000 // sum(len(g) for g in groups)) if vectorized else None,
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    if np.ndim(ci.low) == 0:
        return float(ci.low), float(ci.high)
    return np.asarray(ci.low), np.asarray(ci.high)


def empirical_p(value: float, null: ArrayLike, *, alternative: str) -> tuple[float, float]:
    """Where `value` falls in a sample of a null distribution: an empirical p-value and a z.

    p = (1 + #null at least as extreme) / (1 + m) (Phipson & Smyth 2010: never 0, valid for
    m draws); alternative "less" counts null <= value, "greater" null >= value, and
    "two-sided" doubles the smaller tail. z = (value - mean) / sd of the null.
    """
    draws = np.asarray(null, dtype=np.float64)
    m = len(draws)
    if m < 2:
        raise ValueError(f"need at least 2 null draws (got {m})")
    less = (1 + int(np.sum(draws <= value))) / (1 + m)
    greater = (1 + int(np.sum(draws >= value))) / (1 + m)
    tails = {"less": less, "greater": greater, "two-sided": min(1.0, 2 * min(less, greater))}
    if alternative not in tails:
        raise ValueError(f"alternative must be one of {', '.join(tails)} (got {alternative!r})")
    sd = float(draws.std(ddof=1))
    z = (value - float(draws.mean())) / sd if sd > 0 else float("nan")
    return tails[alternative], z


def proportion_interval(successes: int, trials: int, *, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for a handful of trials, unlike Wald)."""
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def half_samples(
    groups: Sequence[np.ndarray], *, resamples: int, seed: int
) -> list[list[np.ndarray]]:
    """`resamples` draws of half (rounded down) of every group, without replacement, sorted.

    Half-sampling is the delete-d jackknife with d = n/2 (Shao & Wu, Annals of Statistics
    17, 1989), a subsampling scheme (Politis & Romano, Annals of Statistics 22, 1994): for a
    smooth statistic of n independent rows, its spread over halves drawn without replacement
    matches its spread over fresh samples of n rows, since a half's finite-population factor
    (n - m) / n is then exactly m / n. Drawn without replacement, no row appears twice: the
    standard remedy for persistence (Fasy et al., Annals of Statistics 42, 2014 subsample),
    where a duplicated point is a zero-length edge and fills a k-NN graph with its copies.
    Groups (the rows of each class, say) are halved apart, so every draw keeps their shares.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1 (got {resamples})")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(g) for g in groups]
    return [
        [np.sort(rng.choice(g, len(g) // 2, replace=False)) for g in arrays]
        for _ in range(resamples)
    ]


def half_sample_interval(
    full: float, halves: Sequence[float], *, level: float, scale: float = 1.0
) -> tuple[float, float]:
    """Interval for a statistic from its values on B half-samples: full +- t * scale * sd.

    The half-samples' standard deviation is the delete-d jackknife's standard error with
    d = n/2 (Shao & Wu 1989: the factor (n - d) / d is then 1); t is Student's quantile on
    B - 1 degrees of freedom, which pays for estimating it from few (costly) half-samples.
    The spread is taken about the halves' own mean, so what halving the data does to the
    statistic's level (a total over the points is about half as large) does not shift the
    interval. `scale` 1 fits a statistic that does not grow with the number of points (a
    mean, a ratio of totals over the same points); a total that does (about n times a
    per-point mean) needs scale = n / m, the full size over the half's: its deviations on a
    half are m / n of its deviations on n points.
    """
    values = np.asarray(halves, dtype=np.float64)
    if len(values) < 2:
        raise ValueError(f"need at least 2 half-samples (got {len(values)})")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    half_width = (
        float(stats.t.ppf((1 + level) / 2, df=len(values) - 1)) * scale * values.std(ddof=1)
    )
    return float(full - half_width), float(full + half_width)


def fisher_p(table: np.ndarray, *, alternative: str) -> float:
    """Fisher's exact test of a 2x2 table of counts (rows: groups; columns: outcomes).

    "greater": the first row's odds of the first outcome are higher than the second row's.
    Exact for small counts such as a handful of misclassified rows, where a chi-squared or
    z approximation is not.
    """
    counts = np.asarray(table, dtype=np.int64)
    if counts.shape != (2, 2) or (counts < 0).any():
        raise ValueError(f"need a 2x2 table of counts (got {counts.tolist()})")
    return float(stats.fisher_exact(counts, alternative=alternative).pvalue)
