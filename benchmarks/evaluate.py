"""Wall time and peak memory of the evaluate stage for evaluate.jobs 1 and 2.

Runs the stage script on the workspace's raw CSV (the download stage's output) with the
live params, writing to a temporary folder:

    python benchmarks/evaluate.py [--jobs 1 2]
    python benchmarks/evaluate.py --jobs 2 --rows 1000000   # scale.py's synthetic table

With --rows, the raw CSV is benchmarks/scale.py's synthetic table of that many rows (the
default schema, seeded); the stage cross-validates a stratified sample of
evaluate.max_rows of them, so its cost beyond reading the table does not grow with it.

Peak memory is of the whole process tree (the stage and its worker processes).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from scale import measure, synthetic  # benchmarks/scale.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def run(jobs: int, tmp: Path, raw: Path) -> tuple[float, float]:
    """(seconds, peak MiB of the process tree) of one evaluate run with `jobs` processes."""
    yaml = YAML()
    params = yaml.load((ROOT / "params.yaml").read_text())
    params["evaluate"]["jobs"] = jobs
    variant = tmp / f"params-{jobs}.yaml"
    with variant.open("w") as f:
        yaml.dump(params, f)
    cmd = [sys.executable, "src/stages/evaluate.py", "--params", str(variant),
           "--raw", str(raw), "--out", str(tmp / f"out-{jobs}")]  # fmt: skip
    seconds, peak, _ = measure(cmd, ROOT, dict(os.environ))
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, help="a synthetic table of this many rows")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = ROOT / "data/raw/heart.csv"
        if args.rows:
            raw = Path(tmp) / "synthetic.csv"
            synthetic(args.rows).to_csv(raw, index=False)
            print(
                f"{args.rows:,} synthetic rows in {raw.stat().st_size / 2**20:.0f} MB", flush=True
            )
        results = []
        for jobs in args.jobs:
            seconds, peak = run(jobs, Path(tmp), raw)
            print(f"jobs {jobs}: {seconds:.1f} s, peak {peak:.0f} MiB", flush=True)
            results.append(Path(tmp, f"out-{jobs}", "metrics.json").read_bytes())
        print("metrics.json identical for every jobs value:", len(set(results)) == 1)


if __name__ == "__main__":
    main()
