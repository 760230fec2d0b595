"""Overhead of the ClearML hook (offline) on the train stage's wall time.

Runs the train stage on the workspace's processed data (run `make run` first) with
clearml.enabled false and then true + offline, writing into a temporary folder:

    python benchmarks/clearml_hook.py [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CLEARML_CACHE_DIR=f"{tmp}/clearml")
        for run in range(1, args.repeat + 1):
            for enabled in (False, True):
                print(
                    f"run {run}/{args.repeat}, hook {'on (offline)' if enabled else 'off'} ...",
                    end=" ",
                    flush=True,
                )  # each train stage takes seconds to a minute, with its output captured
                params = yaml.safe_load((ROOT / "params.yaml").read_text())
                params["clearml"].update(enabled=enabled, offline=True)
                (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params))
                cmd = [sys.executable, "src/stages/train.py", "--params", f"{tmp}/params.yaml",
                       "--data", "data/processed", "--model", f"{tmp}/models", "--live", f"{tmp}/live"]  # fmt: skip
                start = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
                times[enabled].append(time.perf_counter() - start)
                print(f"{times[enabled][-1]:.1f} s", flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"train stage, hook off:          {off:.2f} s (median of {args.repeat})")
    print(f"train stage, hook on (offline): {on:.2f} s -> overhead {on - off:+.2f} s")


if __name__ == "__main__":
    main()
