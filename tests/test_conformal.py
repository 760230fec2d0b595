"""Class-conditional conformal sets: the coverage they promise, and crepes' sets."""

import math

import numpy as np
import pytest
from crepes import ConformalClassifier

from topoxai.conformal import Conformal, calibrate, describe
from topoxai.errors import UserError


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and two-class probabilities from one fixed distribution (exchangeable rows)."""
    y = rng.integers(0, 2, n)
    p1 = 1 / (1 + np.exp(-(rng.normal(0, 1.5, n) + 1.5 * (2 * y - 1))))
    return y, np.stack([1 - p1, p1], axis=1)


def test_mean_coverage_per_class_is_its_exact_expectation():
    """With n_c calibration rows of class c, a new row of class c is covered with
    probability ceil((n_c + 1) level) / (n_c + 1), exactly, for continuous scores."""
    rng = np.random.default_rng(0)
    level, repeats = 0.9, 2000
    # Per repeat and class: the share of new rows covered minus its exact expectation.
    gaps: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        y_cal, p_cal = _rows(rng, 50)
        y_new, p_new = _rows(rng, 40)
        fitted = calibrate(p_cal, y_cal, level)
        sets = fitted.sets(fitted.p_values(p_new))
        for c in (0, 1):
            n_c = len(fitted.scores[c])
            expected = math.ceil((n_c + 1) * level) / (n_c + 1)
            gaps[c].append(sets[y_new == c, c].mean() - expected)
    for c in (0, 1):
        gap = np.array(gaps[c])
        error = gap.std(ddof=1) / math.sqrt(repeats)  # the Monte-Carlo error of the mean
        assert abs(gap.mean()) < 4 * error, (c, gap.mean(), error)
        assert error < 0.005  # the test can see a miss of 0.02


@pytest.mark.parametrize("level", [0.9, 0.95, 0.8])
def test_sets_and_p_values_are_crepes_class_conditional_ones(level):
    rng = np.random.default_rng(1)
    y_cal, p_cal = _rows(rng, 113)
    _, p_new = _rows(rng, 500)
    ours = calibrate(p_cal, y_cal, level)
    # crepes: the hinge score 1 - P(true class), Mondrian by class, non-smoothed p-values.
    cc = ConformalClassifier().fit(1 - p_cal[np.arange(len(y_cal)), y_cal], bins=y_cal)
    alphas = 1 - p_new
    theirs_p = np.stack(
        [cc.predict_p(alphas, np.full(len(p_new), c), smoothing=False)[:, c] for c in (0, 1)],
        axis=1,
    )
    theirs_sets = np.stack(
        [cc.predict_set(alphas, np.full(len(p_new), c), confidence=level, smoothing=False)[:, c]
         for c in (0, 1)],
        axis=1,
    )  # fmt: skip
    np.testing.assert_allclose(ours.p_values(p_new), theirs_p, rtol=0, atol=1e-12)
    # crepes keeps a label whose p-value equals 1 - level, Vovk's sets do not: no calibration
    # size here puts a p-value exactly there, so the sets are the same.
    for n_c in map(len, ours.scores):
        assert not math.isclose((1 - level) * (n_c + 1) % 1, 0, abs_tol=1e-9)
    assert np.array_equal(ours.sets(ours.p_values(p_new)), theirs_sets.astype(bool))


def test_p_values_by_hand():
    fitted = Conformal(level=0.75, scores=[[0.1, 0.2, 0.3], [0.05, 0.5, 0.6]])
    # class 0 score 1 - 0.8 = 0.2: 0.2 and 0.3 are >= it: (2 + 1) / 4
    # class 1 score 1 - 0.2 = 0.8: none >= it: 1 / 4
    p = fitted.p_values(np.array([[0.8, 0.2]]))
    assert p.tolist() == [[0.75, 0.25]]
    assert fitted.sets(p).tolist() == [[True, False]]  # > 0.25: only class 0
    assert describe(fitted.sets(p), ["0", "1"]).tolist() == ["{0}"]
    assert describe(np.array([[True, True], [False, False], [False, True]]), ["no", "yes"]).tolist() == [
        "{no, yes}", "{}", "{yes}",
    ]  # fmt: skip


def test_calibration_needs_rows_of_each_class_and_round_trips(tmp_path):
    with pytest.raises(UserError, match="no calibration row of class index 1"):
        calibrate(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 0]), 0.95)
    fitted = calibrate(np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]), np.array([0, 1, 0]), 0.9)
    assert fitted.scores[0] == pytest.approx([0.1, 0.4]) and fitted.scores[1] == pytest.approx(
        [0.3]
    )
    (tmp_path / "c.json").write_text(fitted.to_json())
    assert Conformal.load(tmp_path / "c.json") == fitted
    (tmp_path / "c.json").write_text('{"level": 2, "scores": [[0.1], [0.2]]}')
    with pytest.raises(UserError, match="not a conformal calibration"):
        Conformal.load(tmp_path / "c.json")
