"""The train stage on different devices: wall time, test metrics and weights per variant.

Runs the train stage script on the workspace's processed data (run `make run` first) with
default params except the device knobs, each variant `--repeat` times, writing into a
temporary folder. `repeatable` says whether every repeat wrote the same weights.

    python benchmarks/devices.py                                  # cpu, cpu-ddp2
    python benchmarks/devices.py --variants cpu gpu gpu-bf16 gpu-ddp1 --repeat 2
"""

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ONE = {"devices": 1, "strategy": "auto", "precision": "32-true"}
VARIANTS = {
    "cpu": {"accelerator": "cpu", **ONE},
    "cpu-ddp2": {"accelerator": "cpu", **ONE, "devices": 2, "strategy": "ddp"},
    "gpu": {"accelerator": "gpu", **ONE},
    "gpu-bf16": {"accelerator": "gpu", **ONE, "precision": "bf16-mixed"},
    "gpu-ddp1": {"accelerator": "gpu", **ONE, "strategy": "ddp"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["cpu", "cpu-ddp2"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            params = yaml.safe_load((ROOT / "params.yaml").read_text())
            params["train"].update(VARIANTS[name])
            (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params))
            cmd = [sys.executable, "src/stages/train.py", "--params", f"{tmp}/params.yaml",
                   "--data", "data/processed", "--model", f"{tmp}/models", "--live", f"{tmp}/live"]  # fmt: skip
            times: list[float] = []
            weights: set[str] = set()
            for _ in range(args.repeat):
                start = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
                data = (Path(tmp) / "models/model.safetensors").read_bytes()
                weights.add(hashlib.sha256(data).hexdigest())
            summary = json.loads((Path(tmp) / "live/metrics.json").read_text())
            print(
                f"{name:9s} median {statistics.median(times):5.2f} s  "
                f"epochs {summary['epochs']:3d}  best {summary['best_epoch']:3d}  "
                f"test f1 {summary['test']['f1']:.4f}  roc_auc {summary['test']['roc_auc']:.4f}  "
                f"weights {min(weights)[:12]}  "
                f"repeatable {'yes' if len(weights) == 1 else 'no'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
