"""predict's ood score: Mahalanobis distances, conformal p-values, the JSON file."""

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from topoxai.errors import UserError
from topoxai.ood import Distance, fit


def test_distances_p_values_and_the_calibration_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 3)) * [1.0, 2.0, 0.5]
    held_out = rng.normal(size=(99, 3)) * [1.0, 2.0, 0.5]
    distance = fit(train, held_out)
    np.testing.assert_allclose(distance.location, train.mean(axis=0))
    precision = np.asarray(distance.precision)
    rows = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0]])
    expected = [mahalanobis(r, distance.location, precision) for r in rows]
    np.testing.assert_allclose(distance.score(rows), expected, rtol=1e-12)
    assert distance.calibration == sorted(distance.score(held_out).tolist())
    # A held-out row's own distance: itself and those beyond it, counting the row: rank / 100.
    p = distance.p_values(np.array(distance.calibration))
    np.testing.assert_allclose(p, (np.arange(99, 0, -1) + 1) / 100)
    # Beyond every held-out row: the smallest p-value there is, 1/100.
    assert distance.p_values(distance.score(np.array([[10.0, 10.0, 10.0]]))).tolist() == [0.01]
    (tmp_path / "ood.json").write_text(distance.to_json())
    assert Distance.load(tmp_path / "ood.json") == distance


def test_flag_rate_on_rows_like_the_held_out_ones_is_alpha():
    rng = np.random.default_rng(1)
    distance = fit(rng.normal(size=(2000, 4)), rng.normal(size=(999, 4)))
    new = rng.normal(size=(20000, 4))
    assert np.mean(distance.p_values(distance.score(new)) < 0.05) == pytest.approx(0.05, abs=0.01)


def test_a_malformed_file_is_one_line(tmp_path):
    (tmp_path / "ood.json").write_text(
        '{"location": [0, 1], "precision": [[1]], "calibration": [1]}'
    )
    with pytest.raises(UserError, match="not an ood calibration"):
        Distance.load(tmp_path / "ood.json")


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (J Multivar Anal 2004), Lemma 3.2 and Theorem 3.1, written from the paper:
    S shrunk towards m I by b^2 / d^2, with <A, B> = tr(A B') / p."""
    n, p = x.shape
    centred = x - x.mean(axis=0)
    s = centred.T @ centred / n
    m = np.trace(s) / p
    d2 = np.sum((s - m * np.eye(p)) ** 2) / p
    b2_bar = sum(np.sum((np.outer(r, r) - s) ** 2) / p for r in centred) / n**2
    b2 = min(b2_bar, d2)
    return b2 / d2 * m * np.eye(p) + (1 - b2 / d2) * s


def test_the_stored_matrix_inverts_the_training_rows_shrunk_covariance():
    """The distance reads precision, the inverse of the covariance: storing the covariance
    itself (or the plain one) would score every row wrongly."""
    rng = np.random.default_rng(2)
    train = rng.normal(size=(60, 4)) @ rng.normal(size=(4, 4))  # correlated, few rows: shrunk
    distance = fit(train, rng.normal(size=(9, 4)))
    expected = np.linalg.inv(ledoit_wolf(train))
    np.testing.assert_allclose(distance.precision, expected, rtol=1e-9)
    assert not np.allclose(expected, np.linalg.inv(np.cov(train.T, bias=True)), rtol=1e-3)
