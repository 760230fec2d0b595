"""Known answers for the statistics every stage reports with."""

import math

import numpy as np
import pytest
from scipy.special import ndtr

from topoxai.stats import (
    bootstrap_interval,
    empirical_p,
    fisher_p,
    half_sample_interval,
    half_samples,
    proportion_interval,
    resampled_t,
)


def test_resampled_t_reproduces_a_hand_computed_example():
    # J = 5 differences, n_test / n_train = 1/4 (a 5-fold split):
    # mean 0.02; s^2 = (1 + 0 + 1 + 4 + 4)e-4 / 4 = 2.5e-4;
    # corrected variance (1/5 + 1/4) * 2.5e-4 = 1.125e-4; t = 0.02 / 0.0106066 = 1.885618.
    est = resampled_t([0.01, 0.02, 0.03, 0.00, 0.04], level=0.95, test_train_ratio=0.25)
    assert est.mean == pytest.approx(0.02)
    assert est.sd == pytest.approx(math.sqrt(2.5e-4))
    assert est.t == pytest.approx(0.02 / math.sqrt(1.125e-4))
    assert est.t == pytest.approx(1.885618, abs=1e-6)
    # Student t on 4 degrees of freedom has a closed-form CDF:
    # F(t) = 1/2 + (3/4) u (1 - u^2 / 3), with u = t / sqrt(4 + t^2).
    u = est.t / math.sqrt(4 + est.t**2)
    cdf = 0.5 + 0.75 * u - 0.25 * u**3
    assert est.p == pytest.approx(2 * (1 - cdf), rel=1e-9)
    assert est.p == pytest.approx(0.13242, abs=1e-5)
    # t(0.975, 4) = 2.776445: the interval is mean +- that times the corrected standard error.
    half = 2.776445 * math.sqrt(1.125e-4)
    assert (est.low, est.high) == pytest.approx((0.02 - half, 0.02 + half), abs=1e-6)


def test_the_correction_widens_the_interval_and_raises_p():
    values = [0.01, 0.02, 0.03, 0.00, 0.04]
    plain = resampled_t(values, level=0.95, test_train_ratio=0.0)
    corrected = resampled_t(values, level=0.95, test_train_ratio=0.25)
    assert corrected.high - corrected.low > plain.high - plain.low
    assert corrected.p > plain.p
    assert plain.t == pytest.approx(0.02 / (math.sqrt(2.5e-4) / math.sqrt(5)))


def test_resampled_t_with_no_spread_and_bad_arguments():
    same = resampled_t([0.5, 0.5, 0.5], level=0.9, test_train_ratio=0.25)
    assert (same.low, same.high, same.p) == (0.5, 0.5, 0.0)
    zero = resampled_t([0.0, 0.0], level=0.9, test_train_ratio=0.25)
    assert (zero.t, zero.p) == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        resampled_t([1.0], level=0.95, test_train_ratio=0.0)
    with pytest.raises(ValueError, match="level"):
        resampled_t([1.0, 2.0], level=1.0, test_train_ratio=0.0)


def test_plain_t_interval_covers_the_true_mean_at_its_level():
    rng = np.random.default_rng(0)
    covered = sum(
        est.low <= 1.0 <= est.high
        for est in (
            resampled_t(rng.normal(1.0, 2.0, size=10), level=0.9, test_train_ratio=0.0)
            for _ in range(2000)
        )
    )
    assert 0.88 <= covered / 2000 <= 0.92


def _auc(neg: np.ndarray, pos: np.ndarray) -> float:
    # P(score of a positive > score of a negative): the Mann-Whitney form of ROC-AUC.
    return float(np.mean(pos[:, None] > neg[None, :]))


def test_stratified_bootstrap_of_auc_covers_the_true_value_at_its_level():
    # Scores N(0, 1) for negatives and N(d, 1) for positives: true AUC = Phi(d / sqrt 2).
    d = 1.0
    truth = float(ndtr(d / math.sqrt(2)))
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        neg, pos = rng.normal(0, 1, 60), rng.normal(d, 1, 40)
        low, high = bootstrap_interval(_auc, [neg, pos], level=0.9, resamples=200, seed=trial)
        assert low <= _auc(neg, pos) <= high
        covered += low <= truth <= high
    assert 0.84 <= covered / 200 <= 0.96  # 0.9 nominal; sd of the share is 0.02


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    neg, pos = rng.normal(0, 1, 50), rng.normal(1, 1, 50)
    first = bootstrap_interval(_auc, [neg, pos], level=0.95, resamples=100, seed=7)
    assert bootstrap_interval(_auc, [neg, pos], level=0.95, resamples=100, seed=7) == first
    assert bootstrap_interval(_auc, [neg, pos], level=0.95, resamples=100, seed=8) != first


def test_stratified_bootstrap_keeps_each_groups_size():
    sizes = []

    def record(a: np.ndarray, b: np.ndarray) -> float:
        sizes.append((len(a), len(b), set(a) <= {0, 1, 2}, set(b) <= {10, 11}))
        return float(np.mean(a))

    bootstrap_interval(
        record, [np.array([0, 1, 2]), np.array([10, 11])], level=0.9, resamples=20, seed=0
    )
    assert set(sizes) == {(3, 2, True, True)}


def test_empirical_p_and_z_known_answers():
    null = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sd 1.290994
    p, z = empirical_p(0.5, null, alternative="less")
    assert p == pytest.approx(1 / 5)  # below every draw: the smallest p that 4 draws allow
    assert z == pytest.approx((0.5 - 2.5) / 1.2909944)
    assert empirical_p(0.5, null, alternative="greater")[0] == 1.0
    assert empirical_p(2.0, null, alternative="less")[0] == pytest.approx(3 / 5)
    assert empirical_p(0.5, null, alternative="two-sided")[0] == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="alternative"):
        empirical_p(0.5, null, alternative="lower")


def test_empirical_p_is_uniform_when_value_and_null_share_a_distribution():
    rng = np.random.default_rng(3)
    ps = [
        empirical_p(rng.normal(), rng.normal(size=19), alternative="less")[0] for _ in range(4000)
    ]
    # Under the null, P(p <= 0.05) = 1/20 exactly for 19 draws; nothing significant beyond that.
    assert np.mean(np.array(ps) <= 0.05) == pytest.approx(0.05, abs=0.012)


def test_wilson_interval_known_answers():
    # 0 of 10: the Wilson upper bound is z^2 / (n + z^2), z = 1.959964.
    z2 = 1.959964**2
    low, high = proportion_interval(0, 10, level=0.95)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(z2 / (10 + z2), rel=1e-6)
    # 5 of 10: symmetric about 0.5, centre (k + z^2/2) / (n + z^2).
    low, high = proportion_interval(5, 10, level=0.95)
    assert (low + high) / 2 == pytest.approx(0.5)
    half = 1.959964 / (10 + z2) * math.sqrt(10 * 0.25 + z2 / 4)
    assert high - 0.5 == pytest.approx(half, rel=1e-6)


def test_half_samples_take_exactly_half_of_each_group_without_repeats():
    groups = [np.arange(0, 11), np.arange(100, 104), np.arange(200, 201)]
    draws = half_samples(groups, resamples=30, seed=0)
    assert len(draws) == 30
    for draw in draws:
        assert [len(d) for d in draw] == [5, 2, 0]
        for half, group in zip(draw, groups):
            assert len(set(half.tolist())) == len(half)  # no row twice
            assert set(half.tolist()) <= set(group.tolist())
            assert (np.diff(half) > 0).all()
    assert len({tuple(d[0]) for d in draws}) > 20  # they vary
    again = half_samples(groups, resamples=30, seed=0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(draws, again))
    with pytest.raises(ValueError, match="resamples"):
        half_samples(groups, resamples=0, seed=0)


def _half_interval(x: np.ndarray, statistic, level: float, scale: float, seed: int):
    (halves,) = zip(*half_samples([np.arange(len(x))], resamples=20, seed=seed))
    values = [statistic(x[h]) for h in halves]
    return half_sample_interval(statistic(x), values, level=level, scale=scale)


def test_half_sample_interval_covers_a_mean_at_its_level():
    rng = np.random.default_rng(4)
    trials = [_half_interval(rng.normal(1.0, 2.0, 60), np.mean, 0.9, 1.0, t) for t in range(400)]
    covered = np.mean([low <= 1.0 <= high for low, high in trials])
    assert 0.85 <= covered <= 0.94  # 0.9 nominal; sd of the share 0.015


def test_half_sample_interval_of_a_total_needs_the_size_ratio():
    # The sum of 60 exponential(1) draws: truth 60. Its halves sum 30 draws, with half the
    # spread it has over 60 points; scale n / m = 2 puts it back.
    rng = np.random.default_rng(5)
    samples = [rng.exponential(1.0, 60) for _ in range(400)]
    scaled = [_half_interval(x, np.sum, 0.9, 2.0, t) for t, x in enumerate(samples)]
    assert 0.85 <= np.mean([low <= 60 <= high for low, high in scaled]) <= 0.94
    plain = [_half_interval(x, np.sum, 0.9, 1.0, t) for t, x in enumerate(samples)]
    assert np.mean([low <= 60 <= high for low, high in plain]) < 0.7  # too narrow


def test_half_sample_interval_known_answer_and_bad_arguments():
    # sd of 0, 1, 2, 3, 4 is sqrt(2.5); Student's t(0.975, 4) = 2.776445.
    halves = [0.0, 1.0, 2.0, 3.0, 4.0]
    half = 2.776445 * math.sqrt(2.5)
    assert half_sample_interval(10.0, halves, level=0.95) == pytest.approx((10 - half, 10 + half))
    low, high = half_sample_interval(10.0, halves, level=0.95, scale=2.0)
    assert (low, high) == pytest.approx((10 - 2 * half, 10 + 2 * half))
    with pytest.raises(ValueError, match="at least 2"):
        half_sample_interval(1.0, [1.0], level=0.9)
    with pytest.raises(ValueError, match="level"):
        half_sample_interval(1.0, [1.0, 2.0], level=0.0)


def test_fisher_p_known_answers():
    # Fisher's tea-tasting table: P(3 or more right | 4 of 8 chosen) = 17/70.
    tea = np.array([[3, 1], [1, 3]])
    assert fisher_p(tea, alternative="greater") == pytest.approx(17 / 70)
    assert fisher_p(tea, alternative="two-sided") == pytest.approx(34 / 70)
    # No association at all: the table's own probability is the largest, so p = 1.
    assert fisher_p(np.array([[5, 5], [5, 5]]), alternative="two-sided") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2x2"):
        fisher_p(np.array([1, 2, 3]), alternative="greater")
