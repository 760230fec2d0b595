"""Drop, impute or impute with an indicator? The three data.missing modes, measured by the
sites stage's validation by hospital (each held out in turn, everything refitted).

    python benchmarks/missing.py                  # the workspace's raw CSV and live params
    python benchmarks/missing.py --seeds 7 8 9    # mean over several sites.seed draws

Prints, per mode: each held-out site's MLP ROC-AUC, calibration-in-the-large (observed -
predicted), ICI and the conformal sets' coverage per class, then the pooled ROC-AUC and
calibration-in-the-large with the prediction interval for a new site. docs/sites.md reads
the numbers (and chose the default by them).
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoxai.data import read_table_of  # noqa: E402
from topoxai.params import load_params  # noqa: E402
from topoxai.sites import Setup, hold_out, pool, run_sites  # noqa: E402

MODES = ("drop", "impute", "indicator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", help="sites.seed values (default: live)")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    raw = ROOT / "data/raw/heart.csv"
    seeds = args.seeds or [params.sites.seed]
    print(f"MLP, mean over sites.seed {seeds} (one network per site and seed)")
    for mode in MODES:
        data = dataclasses.replace(params.data, missing=mode)
        table = read_table_of(raw, data)
        start = time.perf_counter()
        runs = []
        for seed in seeds:
            held = hold_out(table, data, seed=seed)
            setup = Setup(table.frame, data, params.train, params.level, params.sites.resamples)
            results = run_sites(setup, held, jobs=params.sites.jobs)
            runs.append((results, pool(results, level=params.level)["mlp"]))
        print(f"data.missing: {mode} ({time.perf_counter() - start:.0f} s)")
        print("  site            rows  AUC    O-E     ICI    coverage(0) coverage(1)")
        for i, r in enumerate(runs[0][0]):
            each = [results[i] for results, _ in runs]
            auc, oe, ici = (
                np.mean([x.scores["mlp"][k]["value"] for x in each])
                for k in ("roc_auc", "citl", "ici")
            )
            cover = [
                np.mean([x.conformal["mlp"][f"coverage_class_{c}"] for x in each]) for c in (0, 1)
            ]
            print(
                f"  {r.site:15s} {len(r.label):4d}  {auc:.3f}  {oe:+.3f}  {ici:.3f}  "
                f"{cover[0]:.3f}       {cover[1]:.3f}"
            )
        for name in ("roc_auc", "citl"):
            p = {
                k: sum(pooled[name][k] for _, pooled in runs) / len(runs) for k in runs[0][1][name]
            }
            print(
                f"  pooled {name}: {p['estimate']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}], "
                f"new site [{p['prediction_low']:+.3f}, {p['prediction_high']:+.3f}], "
                f"I2 {p['i2']:.2f}"
            )


if __name__ == "__main__":
    main()
