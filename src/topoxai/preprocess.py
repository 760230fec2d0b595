"""The preprocess stage's work: raw CSV in, standardized splits, their spec and row counts out."""

from pathlib import Path
from typing import Any

from topoxai.data import (
    SPLITS,
    drop_nonpositive,
    read_raw,
    split_path,
    stratified_split,
    write_split,
)
from topoxai.features import SPEC_FILE, fit_preprocessor
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
            write_split(split_path(tmp, name), part, spec)
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
