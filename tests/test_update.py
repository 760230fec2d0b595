"""`topoxai update`: known answers for the recalibration, the folded network, bad input refused
in one line, and an updated default model scoring a hospital's rows."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topoxai.errors import DataError
from topoxai.metrics import roc_auc
from topoxai.recalibration import MIN_ROWS, SLOPE_MIN_CLASS, expit, fit_recalibration, logit
from topoxai.update import update_model


def _synthetic(n: int, a: float, b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities p and outcomes whose true log-odds are a + b logit(p)."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(0, 1.5, n))
    y = (rng.uniform(size=n) < expit(a + b * logit(p))).astype(np.int64)
    return y, p


def test_the_recalibration_recovers_a_known_intercept_and_slope():
    y, p = _synthetic(4000, a=0.6, b=0.7)
    fit = fit_recalibration(y, p)
    assert fit.method == "intercept and slope"
    assert fit.slope_se is not None
    # Within two standard errors (a 95% statement; these draws are within one).
    assert abs(fit.intercept - 0.6) <= 2 * fit.intercept_se
    assert abs(fit.slope - 0.7) <= 2 * fit.slope_se


def test_the_fits_are_statsmodels_logistic_regressions():
    import statsmodels.api as sm

    y, p = _synthetic(600, a=-0.4, b=1.3, seed=1)
    x = logit(p)
    full = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    fit = fit_recalibration(y, p)
    np.testing.assert_allclose([fit.intercept, fit.slope], full.params, atol=1e-6)
    assert fit.slope_se is not None
    np.testing.assert_allclose([fit.intercept_se, fit.slope_se], full.bse, atol=1e-6)
    # Few rows of one class: the slope held at 1, an offset logistic regression.
    few = np.concatenate([np.flatnonzero(y == 0)[: SLOPE_MIN_CLASS - 1], np.flatnonzero(y == 1)])
    offset = sm.GLM(y[few], np.ones(len(few)), family=sm.families.Binomial(), offset=x[few]).fit()
    fit = fit_recalibration(y[few], p[few])
    assert (fit.method, fit.slope, fit.slope_se) == ("intercept", 1.0, None)
    assert fit.intercept == pytest.approx(offset.params[0], abs=1e-6)
    assert fit.intercept_se == pytest.approx(offset.bse[0], abs=1e-6)


def test_a_recalibration_never_reorders_rows():
    y, p = _synthetic(500, a=1.0, b=0.5, seed=2)
    fit = fit_recalibration(y, p)
    assert roc_auc(y, fit.apply(p)) == roc_auc(y, p)
    # Outcomes that fall as p rises: a negative slope would reverse the ranking; the
    # intercept alone is fitted instead.
    reversed_y = (np.random.default_rng(3).uniform(size=500) < 1 - p).astype(np.int64)
    assert fit_recalibration(reversed_y, p).method == "intercept"


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array([0, 1] * ((MIN_ROWS - 1) // 2)), f"at least {MIN_ROWS} are needed"),
        (np.ones(30, np.int64), "every row is class 1; recalibrating needs both classes"),
    ],
)
def test_too_few_rows_or_one_class_is_refused(y, message):
    with pytest.raises(DataError, match=message):
        fit_recalibration(y, np.full(len(y), 0.5))


@pytest.fixture
def hospital_rows(small_run: Path, tmp_path: Path) -> Path:
    """Every row of one hospital of the bundled table, with its target, as a site sends them."""
    raw = pd.read_csv(small_run / "data/raw/heart.csv")
    path = tmp_path / "cleveland.csv"
    raw[raw["hospital"] == "Cleveland"].to_csv(path, index=False)
    return path


def _topoxai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "topoxai.cli", *args], capture_output=True, text=True, check=False
    )


def test_an_updated_default_model_scores_a_hospitals_rows(small_run, hospital_rows, tmp_path):
    out = tmp_path / "updated"
    result = _topoxai("update", "--model", str(small_run / "models"), "--input",
                      str(hospital_rows), "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"updated {small_run / 'models'} on 303 rows of")
    card = json.loads((out / "model.json").read_text())
    update = card["update"]
    assert update["rows"]["per_class"] == [164, 139]
    assert update["method"] == "intercept and slope"  # 139 >= SLOPE_MIN_CLASS of each class
    assert update["from"]["folder"] == str(small_run / "models")
    assert (
        update["conformal"]
        == "class 0: recalibrated on 164 rows; class 1: recalibrated on 139 rows"
    )
    # The network's probability, mapped: exactly what predict now says, ranking unchanged.
    before = _topoxai(
        "predict", "--model", str(small_run / "models"), "--input", str(hospital_rows),
        "--digits", "all",
    )  # fmt: skip
    after = _topoxai(
        "predict", "--model", str(out), "--input", str(hospital_rows), "--digits", "all"
    )
    assert after.returncode == 0, after.stderr
    assert (
        "note: scoring with a model updated on 303 rows of "
        f"{hospital_rows} (intercept and slope; docs/update.md)"
    ) in after.stderr.splitlines()
    p0 = pd.read_csv(io.StringIO(before.stdout))["P(HeartDisease=1)"].to_numpy()
    p1 = pd.read_csv(io.StringIO(after.stdout))["P(HeartDisease=1)"].to_numpy()
    mapped = expit(update["intercept"] + update["slope"] * logit(p0))
    np.testing.assert_allclose(p1, mapped, atol=2e-6)  # float32 output weights, 6-digit card
    y = pd.read_csv(hospital_rows)["HeartDisease"].to_numpy()
    assert roc_auc(y, p1) == pytest.approx(roc_auc(y, p0), abs=1e-4)
    # On the rows it was fitted to, the update brings O-E to 0 (an intercept's score
    # equation), whatever it was before.
    assert abs(y.mean() - p1.mean()) < 1e-3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="HeartDisease"), "no column HeartDisease (the target)"),
        (lambda f: f.assign(HeartDisease=f["HeartDisease"].replace(1, 7)), "unknown class 7"),
        (lambda f: f[f["HeartDisease"] == 1], "every row is class 1"),
        (lambda f: f.head(MIN_ROWS - 1), f"at least {MIN_ROWS} are needed"),
        (lambda f: f.drop(columns="Age"), "missing column Age"),
    ],
)
def test_bad_rows_are_one_line_and_write_nothing(small_run, hospital_rows, tmp_path, edit, message):
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(hospital_rows)).to_csv(bad, index=False)
    result = _topoxai("update", "--model", str(small_run / "models"), "--input", str(bad),
                      "--output", str(tmp_path / "updated"))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "updated").exists()


def test_the_python_api_refuses_to_overwrite_its_own_model_folder(small_run, hospital_rows):
    with pytest.raises(DataError, match="is the model folder itself"):
        update_model(small_run / "models", hospital_rows, small_run / "models")
