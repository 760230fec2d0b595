"""Seconds of `topoxai update` on a site's rows: the update itself (in-process, after the
imports, best of 5), and the command end to end (a new process, as a user runs it).

Needs a trained model folder and the raw table with its hospital column (run `make run`):

    python benchmarks/update.py [--model models] [--rows 100] [--site Cleveland]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoxai.update import update_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models")
    parser.add_argument("--raw", type=Path, default=ROOT / "data/raw/heart.csv")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--site", default="Cleveland")
    args = parser.parse_args()
    raw = pd.read_csv(args.raw)
    rows = raw[raw["hospital"] == args.site].head(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "site.csv"
        rows.to_csv(csv, index=False)
        update_model(args.model, csv, Path(tmp) / "warm")  # imports and caches
        times = []
        for i in range(5):
            start = time.perf_counter()
            update_model(args.model, csv, Path(tmp) / f"out{i}")
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "topoxai.cli", "update", "--model", str(args.model),
             "--input", str(csv), "--output", str(Path(tmp) / "cli")],
            check=True, capture_output=True,
        )  # fmt: skip
        end_to_end = time.perf_counter() - start
    print(
        f"update on {len(rows)} rows of {args.site}: {min(times):.2f} s (best of 5, in-process; "
        f"budget <= 2 s), {end_to_end:.2f} s end to end (a new process)"
    )


if __name__ == "__main__":
    main()
