"""Stage `preprocess`: filter, split and standardize the raw CSV; fit on train only."""

import argparse
from pathlib import Path

from topoxai.data import SPLITS, drop_nonpositive, read_raw, stratified_split
from topoxai.errors import run_main
from topoxai.features import SPEC_FILE, fit
from topoxai.files import atomic_dir, sha256_file, write_json
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the splits and spec")
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    data = params.data
    raw = read_raw(
        args.raw, target=data.target, categorical=list(data.categorical), drop=list(data.drop)
    )
    filtered = drop_nonpositive(raw, list(data.positive))
    parts = stratified_split(filtered.frame, data.target, data.split, params.seed)
    digest = sha256_file(args.raw)
    spec = fit(
        parts["train"], target=data.target, categorical=list(data.categorical), source_sha256=digest
    )

    with atomic_dir(args.out) as out:
        for name, part in parts.items():
            features = spec.transform(part)
            table = part[[data.target]].copy()
            table[spec.feature_names] = features
            table = table[[*spec.feature_names, data.target]]
            table.to_csv(out / f"{name}.csv", index_label="row")
        (out / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
    metrics = {
        "rows": {
            "read": len(raw),
            "dropped": len(raw) - len(filtered.frame),
            **{f"nonpositive_{c}": n for c, n in filtered.nonpositive.items()},
            "kept": len(filtered.frame),
        },
        "split": {name: len(parts[name]) for name in SPLITS},
        "positive_rate": {
            name: round(float((parts[name][data.target] == spec.classes[-1]).mean()), 4)
            for name in SPLITS
        },
        "features": len(spec.feature_names),
        # Lists of names: DVC shows only numbers (and strings) as metrics and skips these.
        "columns": {
            "numeric": spec.numeric,
            "categorical": spec.categorical,
            "dropped": list(data.drop),
        },
    }
    write_json(args.metrics, metrics)
    print(f"preprocess: {metrics['rows']} -> split {metrics['split']}")


if __name__ == "__main__":
    run_main(main)
