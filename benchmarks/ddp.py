"""Train stage wall time and test metrics: one CPU process vs DDP over CPU processes (gloo).

Runs the train stage on the workspace's processed data (run `make run` first) with default
params except the device knobs, writing into a temporary folder:

    python benchmarks/ddp.py [--devices 2] [--repeat 3]
"""

import argparse
import json
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
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = {"1 process": {"devices": 1, "strategy": "auto"},
            f"ddp x{args.devices}": {"devices": args.devices, "strategy": "ddp"}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, knobs in runs.items():
            params = yaml.safe_load((ROOT / "params.yaml").read_text())
            params["train"].update(accelerator="cpu", **knobs)
            (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params))
            cmd = [sys.executable, "src/stages/train.py", "--params", f"{tmp}/params.yaml",
                   "--data", "data/processed", "--model", f"{tmp}/models", "--live", f"{tmp}/live"]  # fmt: skip
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            summary = json.loads((Path(tmp) / "live/metrics.json").read_text())
            print(
                f"{name:10s} median {statistics.median(times):5.2f} s  "
                f"epochs {summary['epochs']:3d}  best {summary['best_epoch']:3d}  "
                f"test f1 {summary['test']['f1']:.4f}  roc_auc {summary['test']['roc_auc']:.4f}"
            )


if __name__ == "__main__":
    main()
