"""Wall time and peak memory of the evaluate stage for evaluate.jobs 1 and 2.

Runs the stage script on the workspace's raw CSV (the download stage's output) with the
live params, writing to a temporary folder:

    python benchmarks/evaluate.py [--jobs 1 2]

Peak memory is of the whole process tree (the stage and its worker processes, sampled
every 50 ms), since GNU time's %M reports only the largest single process.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


def run(jobs: int, tmp: Path) -> tuple[float, float]:
    """(seconds, peak MiB of the process tree) of one evaluate run with `jobs` processes."""
    yaml = YAML()
    params = yaml.load((ROOT / "params.yaml").read_text())
    params["evaluate"]["jobs"] = jobs
    variant = tmp / f"params-{jobs}.yaml"
    with variant.open("w") as f:
        yaml.dump(params, f)
    cmd = [sys.executable, "src/stages/evaluate.py", "--params", str(variant),
           "--raw", "data/raw/heart.csv", "--out", str(tmp / f"out-{jobs}")]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    tree, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            members = [tree, *tree.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in members if p.is_running()))
        except psutil.Error:  # a worker that ended between listing and reading
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"evaluate failed with jobs={jobs}")
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for jobs in args.jobs:
            seconds, peak = run(jobs, Path(tmp))
            print(f"jobs {jobs}: {seconds:.1f} s, peak {peak:.0f} MiB", flush=True)
            results.append(Path(tmp, f"out-{jobs}", "metrics.json").read_bytes())
        print("metrics.json identical for every jobs value:", len(set(results)) == 1)


if __name__ == "__main__":
    main()
