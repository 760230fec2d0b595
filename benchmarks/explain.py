"""Wall time of each part of the explain stage, and of the whole stage as DVC runs it.

Needs a trained model and processed data (run `make run` first):

    python benchmarks/explain.py [--params params.yaml] [--model models] [--data data/processed]

The params file needs an `explain:` section; `--defaults` adds the recommended one.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {
    "layers": ["input", "hidden", "logits"],
    "k": 10,
    "filtration_max": 4.0,
    "filtration_steps": 81,
    "mapper_cubes": 8,
    "mapper_overlap": 0.5,
    "mapper_eps_quantile": 0.3,
    "mapper_min_samples": 1,
    "ig_steps": 50,
    "permutation_repeats": 10,
    "threads": 1,
}


def timed(name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = step()
    print(f"{name:<22} {time.perf_counter() - start:6.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--model", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT / "data/processed")
    parser.add_argument("--defaults", action="store_true", help="use the recommended section")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        params_file = Path(tmp) / "params.yaml"
        raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
        if args.defaults:
            raw["explain"] = DEFAULTS
        params_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
        stage = [sys.executable, str(ROOT / "src/stages/explain.py"), "--params", str(params_file),
                 "--model", str(args.model), "--data", str(args.data), "--out", f"{tmp}/out"]  # fmt: skip
        print(f"{os.cpu_count()} CPUs")
        timed("whole stage", lambda: subprocess.run(stage, check=True, capture_output=True))
        parts(params_file, args.model, args.data, Path(tmp) / "parts")


def parts(params_file: Path, model: Path, data: Path, out: Path) -> None:
    """Each part in this process, in the order and with the threads `explain` uses."""
    start = time.perf_counter()
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from topoxai import attribution
    from topoxai import explain as ex
    from topoxai.params import ExplainParams, parse

    print(f"{'imports':<22} {time.perf_counter() - start:6.2f} s")
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params, seed = parse(ExplainParams, raw["explain"], "explain."), raw["seed"]
    torch.set_num_threads(params.threads)
    with threadpool_limits(limits=params.threads):
        inputs = timed("load", lambda: ex.load_inputs(model, data))
        reports = [
            timed("topology", lambda: ex.topology_report(inputs, params)),
            timed("neural persistence", lambda: ex.weights_report(inputs)),
            timed("mapper", lambda: ex.mapper_report(inputs, params, seed=seed)),
        ]
        mapper_error = reports[-1].feature_scores["mapper_error"]
        reports.append(
            timed(
                "attribution",
                lambda: ex.attribution_report(inputs, params, seed=seed, mapper_error=mapper_error),
            )
        )
        timed("write (PNG, HTML, TSV)", lambda: ex.write(out, reports))

        print("attribution, of which:")
        x, y = inputs.x["test"], inputs.y["test"]
        groups = list(attribution.feature_groups(inputs.spec).values())
        probability = attribution.positive_probability(inputs.trained)
        baseline = inputs.x["train"].mean(axis=0, keepdims=True)
        timed(
            "  integrated gradients",
            lambda: attribution.integrated_gradients(probability, x, baseline, params.ig_steps),
        )
        rng = np.random.default_rng(seed)
        timed("  permutation", lambda: attribution.permutation_importance(
            inputs.trained, x, y, groups, params.permutation_repeats, rng))  # fmt: skip


if __name__ == "__main__":
    main()
