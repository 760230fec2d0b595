"""What every part of the explain stage returns, and the folder they are written to at once."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from topoxai.files import atomic_dir, json_text

DPI = 100


@dataclass
class Report:
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # written as TSV
    figures: dict[str, Figure] = field(default_factory=dict)  # written as PNG
    texts: dict[str, str] = field(default_factory=dict)
    feature_scores: dict[str, np.ndarray] = field(default_factory=dict)  # method -> per feature


def write(out: Path, reports: list[Report]) -> dict[str, Any]:
    """Write every report into `out` at once (the old folder stays until all is written)."""
    metrics = {k: v for report in reports for k, v in report.metrics.items()}
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(json_text(metrics), encoding="utf-8")
        for report in reports:
            for name, table in report.tables.items():
                table.to_csv(tmp / name, sep="\t", index=False, float_format="%.6g")
            for name, figure in report.figures.items():
                # No "Software" entry: the PNG bytes must not change with matplotlib's version.
                figure.savefig(tmp / name, dpi=DPI, metadata={"Software": None})
            for name, text in report.texts.items():
                (tmp / name).write_text(text, encoding="utf-8")
    return metrics


def rounded(value: float | None) -> float | int | None:
    """Floats to four decimals (metrics files then diff cleanly); ints unchanged; None for
    None, nan and inf (strict JSON has no such numbers)."""
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    return round(float(value), 4) if np.isfinite(value) else None
