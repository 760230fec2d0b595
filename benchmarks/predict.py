"""Rows per second of `topoxai predict` on 100,000 raw rows, and its startup time.

Needs a trained model folder (run `make run` first):

    python benchmarks/predict.py [--model models] [--rows 100000]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "topoxai.cli", "predict", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models"))
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    raw = pd.read_csv(ROOT / "data/raw/heart.csv")
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one.csv", Path(tmp) / "many.csv"
        raw.head(1).to_csv(one, index=False)
        raw.sample(args.rows, replace=True, random_state=0).to_csv(many, index=False)
        startup = min(run("--model", args.model, "--input", str(one)) for _ in range(3))
        total = min(run("--model", args.model, "--input", str(many), "--output",
                        str(Path(tmp) / "out.csv")) for _ in range(3))  # fmt: skip
    print(f"startup (1 row, best of 3): {startup:.2f} s")
    print(f"{args.rows} rows (best of 3): {total:.2f} s -> {args.rows / total:,.0f} rows/s")
    print(f"excluding startup: {args.rows / (total - startup):,.0f} rows/s")


if __name__ == "__main__":
    main()
