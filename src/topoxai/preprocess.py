"""The preprocess stage's work: raw CSV in, standardized splits, their spec and row counts out."""

from pathlib import Path
from typing import Any

import pandas as pd

from topoxai.data import SPLITS, drop_nonpositive, read_raw, stratified_split
from topoxai.features import SPEC_FILE, Preprocessor, fit_preprocessor
from topoxai.files import atomic_dir, sha256_file
from topoxai.params import DataParams


def preprocess(params: DataParams, *, seed: int, raw: Path, out: Path) -> dict[str, Any]:
    """Filter, split and standardize `raw` into the folder `out` (fit on train only).

    Returns the data metrics: rows read, dropped and kept, split sizes, class balance, columns.
    """
    frame = read_raw(
        raw, target=params.target, categorical=list(params.categorical), drop=list(params.drop)
    )
    filtered = drop_nonpositive(frame, list(params.positive))
    parts = stratified_split(filtered.frame, params.target, params.split, seed)
    spec = fit_preprocessor(
        parts["train"],
        target=params.target,
        categorical=list(params.categorical),
        source_sha256=sha256_file(raw),
    )
    with atomic_dir(out) as tmp:
        for name, part in parts.items():
            processed_table(part, spec).to_csv(tmp / f"{name}.csv", index_label="row")
        (tmp / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
    return {
        "rows": {
            "read": len(frame),
            "dropped": len(frame) - len(filtered.frame),
            **{f"nonpositive_{c}": n for c, n in filtered.nonpositive.items()},
            "kept": len(filtered.frame),
        },
        "split": {name: len(parts[name]) for name in SPLITS},
        "positive_rate": {
            name: round(float((parts[name][params.target] == spec.classes[-1]).mean()), 4)
            for name in SPLITS
        },
        "features": len(spec.feature_names),
        # Lists of names: DVC shows only numbers (and strings) as metrics and skips these.
        "columns": {
            "numeric": spec.numeric,
            "categorical": spec.categorical,
            "dropped": list(params.drop),
        },
    }


def processed_table(part: pd.DataFrame, spec: Preprocessor) -> pd.DataFrame:
    """Raw rows -> the feature columns then the target, indexed by the raw CSV's row."""
    table = part[[spec.target]].copy()
    table[spec.feature_names] = spec.transform(part)
    return table[[*spec.feature_names, spec.target]]
