"""The sites stage's work: will the model work at a hospital it never saw?

Internal-external cross-validation (Steyerberg & Harrell, J Clin Epidemiol 2016): each site
(data.site) is held out in turn, and the whole procedure is fitted on the other sites'
rows: the preprocessing (imputation included) on their fit rows, the network with the
`train` params by the one training function (early stopping on their validation rows),
both baselines, and the conformal and out-of-distribution calibrations on their validation
rows. Every row of the held-out site is then scored, as a new hospital's patients would be
(with data.missing: drop, its rows with a missing value too: the model fills them in).

Per site and model: discrimination, calibration and net benefit with intervals from a
stratified bootstrap of the site's rows (calibration intercept and slope: Wald intervals
of their logistic fits). Across sites: a random-effects meta-analysis (topoxai.meta) of
ROC-AUC (logit scale) and calibration-in-the-large, with the prediction interval for a new
site (Riley et al., BMJ 2016; Debray et al., BMJ 2017).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai.data import Table, learning_rows, read_table_of, shuffle_split
from topoxai.errors import DataError
from topoxai.evaluate import CONFORMAL, MODELS, fold_arrays_of
from topoxai.files import atomic_dir, json_text
from topoxai.params import DataParams, ParamsError, SitesParams, TrainParams

POOLED = ("roc_auc", "citl")  # meta-analysed across sites


@dataclass(frozen=True)
class Held:
    """One held-out site: the positions of its rows, and of the rows the models learn from."""

    site: str
    seed: int
    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class SiteResult:
    site: str
    label: np.ndarray  # per test row: 1 for the positive class
    probability: dict[str, np.ndarray]  # per model, per test row
    scores: dict[str, dict[str, dict[str, float]]]  # model -> score -> value, low, high
    effects: dict[str, dict[str, tuple[float, float]]]  # model -> POOLED score -> (value, variance)
    conformal: dict[str, dict[str, float]]  # per model: every CONFORMAL measure
    ood_auroc: float  # the ood distance: the site's rows against the others' held-out rows
    updates: dict[str, Any]  # the MLP updated on n of the site's rows (update_effect)


@dataclass(frozen=True)
class Setup:
    frame: pd.DataFrame
    data: DataParams
    train: TrainParams
    level: float
    resamples: int
    update_rows: tuple[int, ...]
    update_draws: int


def validate_sites(
    params: SitesParams,
    *,
    data: DataParams,
    train: TrainParams,
    level: float,
    raw: Path,
    out: Path,
) -> dict[str, Any]:
    """Hold out each site of `raw` in turn; write `out`; return the metrics."""
    from topoxai.recalibration import MIN_ROWS

    if data.site is None:
        raise DataError("data.site is null: the sites stage needs the column naming each site")
    if too_few := [n for n in params.update_rows if n < MIN_ROWS]:
        raise ParamsError(
            f"sites.update_rows: {too_few[0]} is fewer than {MIN_ROWS}, the fewest rows an "
            "update takes"
        )
    table = read_table_of(raw, data)
    if len(table.frame) > params.max_rows:
        # A larger table: a sample stratified by site and class, so each site keeps its
        # share and its prevalence, and the cost (four networks) is bounded.
        assert table.sites is not None
        # pandas' text addition: numpy 1.26 (the floor) has no string "+"
        strata = (table.sites + "/" + table.frame[data.target].astype(str)).to_numpy()
        _, rows = shuffle_split(strata, params.max_rows / len(table.frame), params.seed)
        table = table.take(np.sort(rows))
    held = hold_out(table, data, seed=params.seed)
    setup = Setup(
        table.frame,
        data,
        train,
        level,
        params.resamples,
        params.update_rows,
        params.update_draws,
    )
    results = run_sites(setup, held, jobs=params.jobs)
    metrics: dict[str, Any] = {
        "level": level,
        "missing": data.missing,
        "rows": len(table.frame),  # sites.max_rows at most: a stratified sample beyond
        "sites": {r.site: site_metrics(r) for r in results},
        "pooled": pool(results, level=level),
        "updates": {r.site: update_summary(r.updates, level) for r in results},
    }
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json_text(metrics), encoding="utf-8")
        site_table(results).to_csv(tmp / "sites.tsv", sep="\t", index=False)
        forest_table(metrics).to_csv(tmp / "forest.tsv", sep="\t", index=False)
        update_table(metrics["updates"]).to_csv(tmp / "updates.tsv", sep="\t", index=False)
        from topoxai.sites_plots import calibration_figure, forest_figure, save

        save(forest_figure(metrics), tmp / "forest.png")
        save(calibration_figure(results), tmp / "calibration.png")
    return metrics


def hold_out(table: Table, data: DataParams, *, seed: int) -> list[Held]:
    """One `Held` per site, in order of first appearance; the other sites' rows (those
    data.missing keeps) split into fit and validation rows, stratified by class."""
    assert table.sites is not None
    sites = table.sites.to_numpy()
    names = list(dict.fromkeys(sites.tolist()))
    if len(names) < 3:
        raise DataError(
            f"data.site: column {data.site} has {len(names)} site(s); holding each out and "
            "pooling them needs at least 3"
        )
    learned = learning_rows(table.missing, data.missing)
    labels = table.frame[data.target].to_numpy()
    val_share = data.split[1] / (data.split[0] + data.split[1])
    out = []
    for i, name in enumerate(names):
        others = np.flatnonzero((sites != name) & learned)
        site_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        if len(np.unique(labels[others])) < 2 or len(np.unique(labels[sites == name])) < 2:
            raise DataError(f"site {name!r}: it or the other sites have one class only")
        fit, val = shuffle_split(labels[others], val_share, site_seed)
        test = np.flatnonzero(sites == name)
        out.append(Held(name, site_seed, np.sort(others[fit]), np.sort(others[val]), test))
    return out


def run_sites(setup: Setup, held: list[Held], *, jobs: int) -> list[SiteResult]:
    """Each site's result, in site order whatever `jobs` (each seeds its own draws)."""
    from topoxai.pool import Pool
    from topoxai.progress import iterate

    with Pool(min(jobs, len(held)), setup.train.threads) as pool:
        results = pool.map(score_site, ((setup, h) for h in held))
        return list(iterate(results, len(held), "sites", "site"))


def score_site(setup: Setup, held: Held) -> SiteResult:
    """Fit everything on the other sites; score the held-out site's rows."""
    from threadpoolctl import threadpool_limits

    from topoxai import ood
    from topoxai.evaluate import conformal_sets, fit_mlp, set_scores
    from topoxai.metrics import baseline_models, roc_auc, scores_with_intervals
    from topoxai.update_effect import update_effects

    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = fold_arrays_of(
        setup.frame, (held.fit, held.val, held.test), setup.data
    )
    with threadpool_limits(limits=setup.train.threads):
        on_val, on_test = fit_mlp(
            setup.train, held.seed, (x_fit, y_fit), (x_val, y_val), x_val, x_test
        )
        proba, calibration_proba = {"mlp": on_test}, {"mlp": on_val}
        for name, model in baseline_models(held.seed).items():
            fitted = model.fit(x_fit, y_fit)
            proba[name], calibration_proba[name] = (
                fitted.predict_proba(x) for x in (x_test, x_val)
            )
        distance = ood.fit(x_fit, x_val)
        # The others' validation rows stand for "patients like the training ones": no
        # weight of the distance was fitted on them.
        far = np.concatenate([distance.score(x_val), distance.score(x_test)])
        ood_auroc = roc_auc(np.r_[np.zeros(len(x_val)), np.ones(len(x_test))], far)
    probability = {m: p[:, 1] for m, p in proba.items()}
    scores, effects = scores_with_intervals(
        y_test,
        probability,
        level=setup.level,
        resamples=setup.resamples,
        seed=held.seed,
    )
    sets = {
        name: set_scores(
            conformal_sets(calibration_proba[name], y_val, proba[name], setup.level), y_test
        )
        # on the other sites' validation rows (the MLP's chose its epoch; the baselines
        # never saw them)
        for name in MODELS
    }
    updates = update_effects(
        y_test,
        probability["mlp"],
        (calibration_proba["mlp"], y_val),
        level=setup.level,
        sizes=setup.update_rows,
        draws=setup.update_draws,
        seed=held.seed,
    )
    return SiteResult(held.site, y_test, probability, scores, effects, sets, ood_auroc, updates)


def pool(results: list[SiteResult], *, level: float) -> dict[str, Any]:
    """Per model, the random-effects pooled ROC-AUC (on the logit scale, shown as AUC) and
    calibration-in-the-large, with heterogeneity and the prediction interval for a new site.

    A site whose ROC-AUC is 0 or 1 has an infinite logit and no variance to weigh it by: it
    is left out of that pooling, and `sites` names the sites pooled. Fewer than 3 left: no
    prediction interval can be given, and the entry is null.
    """
    from topoxai.meta import random_effects

    out: dict[str, Any] = {}
    for model in MODELS:
        out[model] = {}
        for name in POOLED:
            pairs = [(r.site, *r.effects[model][name]) for r in results]
            usable = [(s, e, v) for s, e, v in pairs if np.isfinite(e) and np.isfinite(v) and v > 0]
            if len(usable) < 3:
                out[model][name] = None
                continue
            pooled = random_effects(
                [e for _, e, _ in usable], [v for _, _, v in usable], level=level
            )
            if name == "roc_auc":
                pooled = pooled.expit()
            entry = {
                "estimate": pooled.estimate,
                "low": pooled.low,
                "high": pooled.high,
                "prediction_low": pooled.prediction_low,
                "prediction_high": pooled.prediction_high,
                "tau2": pooled.tau2,
                "i2": pooled.i2,
                "p_heterogeneity": pooled.p_heterogeneity,
            }
            out[model][name] = {k: round(float(v), 4) for k, v in entry.items()}
            if len(usable) < len(pairs):
                out[model][name]["sites"] = [s for s, _, _ in usable]
    return out


def update_summary(updates: dict[str, Any], level: float) -> dict[str, Any]:
    from topoxai.update_effect import rows_needed

    return {**updates, "rows_needed": rows_needed(updates, level)}


def update_table(updates: dict[str, Any]) -> pd.DataFrame:
    """One row per site, n and before/after: each measure's mean and spread over the draws."""
    from topoxai.update_effect import MEASURES

    rows = []
    for site, per_n in updates.items():
        for n, e in per_n.items():
            if n == "rows_needed":
                continue
            for when in ("before", "after"):
                row: dict[str, Any] = {
                    "site": site,
                    "rows": int(n),
                    "when": when,
                    "draws": e["draws"],
                }
                for name in MEASURES:
                    m = e[when][name]
                    row |= {name: m["mean"], f"{name}_low": m["low"], f"{name}_high": m["high"]}
                rows.append(row)
    return pd.DataFrame(rows)


def site_metrics(result: SiteResult) -> dict[str, Any]:
    return {
        "rows": len(result.label),
        "positive_rate": round(float(result.label.mean()), 4),
        **result.scores,
        "conformal": {
            m: {k: round(v, 4) for k, v in s.items()} for m, s in result.conformal.items()
        },
        "ood_auroc": round(result.ood_auroc, 4),
    }


def site_table(results: list[SiteResult]) -> pd.DataFrame:
    """One row per site and model: every score with its interval, and the conformal sets."""
    rows = []
    for r in results:
        for model in MODELS:
            row: dict[str, Any] = {"site": r.site, "model": model, "rows": len(r.label)}
            for name, s in r.scores[model].items():
                row |= {name: s["value"], f"{name}_low": s["low"], f"{name}_high": s["high"]}
            for name in CONFORMAL:
                row[f"conformal_{name}"] = (
                    round(r.conformal[model][name], 4) if model in r.conformal else None
                )
            rows.append(row)
    return pd.DataFrame(rows)


def forest_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The forest plot's rows: each site's MLP ROC-AUC and calibration-in-the-large with their
    intervals, then the pooled estimate and the prediction interval for a new site."""
    rows = []
    for site, m in metrics["sites"].items():
        row = {"site": site}
        for name in POOLED:
            s = m["mlp"][name]
            row |= {name: s["value"], f"{name}_low": s["low"], f"{name}_high": s["high"]}
        rows.append(row)
    for label, low, high in (
        ("pooled", "low", "high"),
        ("new site", "prediction_low", "prediction_high"),
    ):
        row = {"site": label}
        for name in POOLED:
            if p := metrics["pooled"]["mlp"][name]:  # null: too few sites to pool
                row |= {name: p["estimate"], f"{name}_low": p[low], f"{name}_high": p[high]}
        rows.append(row)
    return pd.DataFrame(rows)


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The per-site ROC-AUC and calibration-in-the-large, and the pooled estimates."""
    level = f"{metrics['level']:.0%}"
    lines = [f"validation by site (each held out in turn): value [{level} interval]"]
    for site, m in metrics["sites"].items():
        parts = [
            f"{model} AUC {m[model]['roc_auc']['value']:.3f} [{m[model]['roc_auc']['low']:.3f}, "
            f"{m[model]['roc_auc']['high']:.3f}] O-E {m[model]['citl']['value']:+.3f}"
            for model in MODELS
        ]
        lines.append(f"  {site} ({m['rows']} rows): " + "; ".join(parts))
    for model in MODELS:
        if not (auc := metrics["pooled"][model]["roc_auc"]):
            lines.append(f"  pooled {model}: fewer than 3 sites with a finite logit ROC-AUC")
            continue
        lines.append(
            f"  pooled {model}: AUC {auc['estimate']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}], "
            f"a new site {auc['prediction_low']:.3f} to {auc['prediction_high']:.3f}, "
            f"I2 {auc['i2']:.2f}"
        )
    return lines
