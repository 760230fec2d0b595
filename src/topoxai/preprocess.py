"""The preprocess stage's work: raw CSV in, standardized splits, their spec and row counts out."""

from pathlib import Path
from typing import Any

import pandas as pd

from topoxai.data import (
    SPLITS,
    read_table_of,
    split_path,
    stratified_split,
    write_split,
)
from topoxai.errors import DataError
from topoxai.features import SPEC_FILE, fit_preprocessor
from topoxai.files import atomic_dir, sha256_file
from topoxai.params import DataParams


def preprocess(params: DataParams, *, seed: int, raw: Path, out: Path) -> dict[str, Any]:
    """Split and standardize `raw` into the folder `out` (fit on train only), after dropping
    the rows with a missing value if data.missing says so.

    Returns the data metrics: rows read, missing, dropped and kept, per site, split sizes,
    class balance, columns.
    """
    check_memory(raw, available_memory())
    table = read_table_of(raw, params)
    kept = table.learned(params.missing)
    parts = stratified_split(kept, params.target, params.split, seed)
    spec = fit_preprocessor(
        parts["train"],
        target=params.target,
        categorical=list(params.categorical),
        source_sha256=sha256_file(raw),
        positive_class=params.positive_label,
        not_measured=params.not_measured,
        missing=params.missing,
        class_names=params.class_names,
    )
    with atomic_dir(out) as tmp:
        for name, part in parts.items():
            write_split(split_path(tmp, name), part, spec)
        (tmp / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
    return {
        "rows": {
            "read": len(table.frame),
            # rows missing each column's value (an empty cell, or <= 0 in data.not_measured)
            **{f"missing_{c}": n for c, n in table.missing.per_column.items()},
            "dropped": len(table.frame) - len(kept),
            "kept": len(kept),
        },
        # rows kept per site (data.site), and each one's share of the positive class
        **(
            {}
            if table.sites is None
            else {
                "sites": site_counts(
                    table.sites[kept.index], kept[params.target] == spec.positive_class
                )
            }
        ),
        "split": {name: len(parts[name]) for name in SPLITS},
        "positive_rate": {
            name: round(float((parts[name][params.target] == spec.positive_class).mean()), 4)
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


def site_counts(sites: pd.Series, positive: pd.Series) -> dict[str, dict[str, float]]:
    """Per site, in order of first appearance: its rows and its positive rate."""
    out = {}
    for name, rows in positive.groupby(sites.to_numpy(), sort=False):
        out[str(name)] = {"rows": len(rows), "positive_rate": round(float(rows.mean()), 4)}
    return out


# The stage's peak resident memory is about MEMORY_BASE + MEMORY_PER_BYTE x the raw CSV's
# size: measured by benchmarks/scale.py on the default schema at 10k, 100k and 1M rows
# (137, 181 and 459 MB for 0.4, 4.1 and 41 MB of CSV; docs/scale.md). A table that cannot
# fit stops before it is read, with one line, rather than being killed half-way.
MEMORY_BASE, MEMORY_PER_BYTE = 150 * 2**20, 8


def check_memory(raw: Path, available: int | None) -> None:
    """DataError if preprocessing `raw` needs more memory than is `available` (None: unknown)."""
    size = raw.stat().st_size
    need = MEMORY_BASE + MEMORY_PER_BYTE * size
    if available is not None and need > available:
        raise DataError(
            f"{raw}: {size / 2**20:,.0f} MB of CSV needs about {need / 2**20:,.0f} MB of memory "
            f"to preprocess, and {available / 2**20:,.0f} MB is available"
        )


def available_memory() -> int | None:
    """Bytes this process may still use: the kernel's MemAvailable, capped by a cgroup v2 limit."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return available
