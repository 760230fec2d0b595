"""Wall time and peak memory of the explain stage at the default size, 100k and 1M rows.

The default size is the pipeline's own model and data (run `make run` first). The larger
sizes use benchmarks/scale.py's synthetic tables (the default schema, seeded), preprocessed by
the preprocess stage script; their model folder holds the default model's weights with the
synthetic table's fitted preprocessing. That is honest for cost, which does not depend on the
weights' values (only on the architecture and the rows sampled), and saves training a 2x1000
network on 700k rows (297 s for 2 epochs); the synthetic runs' metrics mean nothing.

    python benchmarks/explain.py                         # default, 100k and 1M rows
    python benchmarks/explain.py --sizes 100000 --parts  # and each part's time at the default

Peak MB is of the stage's whole process tree (its worker processes included).
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
from scale import measure, synthetic  # benchmarks/scale.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
BUDGET = "<= 30 s at the default size, <= 60 s at 1M rows, <= 2 GB peak, on 2 cores"


def timed(name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = step()
    print(f"{name:<26} {time.perf_counter() - start:6.2f} s", flush=True)
    return result


def stage(params: Path, model: Path, data: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, peak MB) of the explain stage script."""
    cmd = [sys.executable, str(ROOT / "src/stages/explain.py"), "--params", str(params),
           "--model", str(model), "--data", str(data), "--out", str(out)]  # fmt: skip
    seconds, mb, _ = measure(cmd, ROOT, dict(os.environ))
    return seconds, mb


def synthetic_inputs(n: int, tmp: Path, params: Path) -> tuple[Path, Path]:
    """Processed splits of an n-row synthetic table, and a model folder that fits them."""
    from topoxai.artifacts import load_initial, load_model, save_model
    from topoxai.features import Preprocessor

    csv, data, models = tmp / f"heart_{n}.csv", tmp / f"data_{n}", tmp / f"models_{n}"
    synthetic(n).to_csv(csv, index=False)
    subprocess.run(
        [sys.executable, str(ROOT / "src/stages/preprocess.py"), "--params", str(params),
         "--raw", str(csv), "--out", str(data), "--metrics", str(tmp / f"data_{n}.json")],
        check=True, capture_output=True,
    )  # fmt: skip
    csv.unlink()
    model = load_model(ROOT / "models")
    spec = Preprocessor.load(data / "preprocess.json")
    if spec.feature_names != model.spec.feature_names:
        sys.exit(f"the synthetic table's features differ from the model's: {spec.feature_names}")
    card = {k: v for k, v in model.card.items() if k != "files"}
    initial = load_initial(ROOT / "models", model.card).state_dict()
    save_model(models, model.net, spec, card, initial=initial)
    return data, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--parts", action="store_true", help="time each part at the default")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the start", flush=True)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        params = path / "params.yaml"
        raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
        raw["data"].update(sha256=None)  # the synthetic tables are not the bundled CSV
        params.write_text(yaml.safe_dump(raw), encoding="utf-8")
        seconds, mb = stage(params, ROOT / "models", ROOT / "data/processed", path / "out")
        rows.append(("default data (746 rows)", seconds, mb))
        print(f"default: {seconds:.1f} s, {mb:.0f} MB", flush=True)
        for n in args.sizes:
            print(f"[{n:,} rows] writing and preprocessing the synthetic table ...", flush=True)
            data, models = synthetic_inputs(n, path, params)
            seconds, mb = stage(params, models, data, path / f"out_{n}")
            rows.append((f"{n:,} raw rows", seconds, mb))
            print(f"[{n:,} rows] explain: {seconds:.1f} s, {mb:.0f} MB", flush=True)
        if args.parts:
            parts(params, ROOT / "models", ROOT / "data/processed", path / "parts")
    print(f"\n{'explain stage':<26}{'wall s':>8}{'peak MB':>9}")
    for name, seconds, mb in rows:
        print(f"{name:<26}{seconds:>8.1f}{mb:>9.0f}")
    print(f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(f"budget: {BUDGET}")


def parts(params_file: Path, model: Path, data: Path, out: Path) -> None:
    """Each part in this process, in the order, with the threads and the pool `explain` uses.

    The workers run the controls, the layers' diagrams and the shuffles while this process
    builds Mapper and the attributions, so the waits are what is left of the pool's work.
    """
    start = time.perf_counter()
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from topoxai import attribution
    from topoxai.artifacts import load_card
    from topoxai.explain import controls, sample
    from topoxai.explain.attributions import attribution_report
    from topoxai.explain.graph import mapper_report
    from topoxai.explain.inputs import in_float64, load_inputs
    from topoxai.explain.layers import start_topology
    from topoxai.explain.report import write
    from topoxai.explain.weights import start_shuffles, weights_report
    from topoxai.params import load_params
    from topoxai.pool import Pool

    print(f"\n{'imports':<26} {time.perf_counter() - start:6.2f} s")
    loaded = load_params(params_file)
    params, seed, level = loaded.explain, loaded.seed, loaded.level
    torch.set_num_threads(params.threads)
    caps = {"max_points": params.max_points, "max_test_rows": params.max_test_rows}
    with threadpool_limits(limits=params.threads), Pool(params.jobs, params.threads) as pool:
        rows = timed("draw rows, start controls", lambda: sample.draw(data, **caps, seed=seed))
        started = controls.start(pool, load_card(model)["architecture"], rows.points,
                                 rows.labels, seed=seed, count=params.controls, k=params.k,
                                 max_scale=params.filtration_max)  # fmt: skip
        inputs = timed("load model", lambda: in_float64(load_inputs(model, rows)))
        finish = timed("start layers' diagrams", lambda: start_topology(
            inputs, params, seed=seed, level=level, pool=pool, control_diagrams=started))  # fmt: skip
        shuffles = start_shuffles(inputs, params, seed=seed, pool=pool)
        graph = timed("mapper", lambda: mapper_report(inputs, params, seed=seed, level=level))
        mapper_error = graph.feature_scores["mapper_error"]
        reports = [
            timed(
                "attribution",
                lambda: attribution_report(inputs, params, seed=seed, mapper_error=mapper_error),
            ),
            timed("wait: topology", finish),
            timed(
                "wait: neural persistence",
                lambda: weights_report(
                    inputs, params, seed=seed, level=level, pool=pool, shuffles=shuffles
                ),
            ),
            graph,
        ]
        timed("write (PNG, HTML, TSV)", lambda: write(out, reports))

        print("attribution, of which:")
        x, y = inputs.rows.test, inputs.rows.test_labels
        groups = list(attribution.feature_groups(inputs.rows.spec).values())
        probability = attribution.positive_probability(inputs.trained)
        timed(
            "  integrated gradients",
            lambda: attribution.integrated_gradients(
                probability, x, inputs.rows.baseline, params.ig_steps
            ),
        )
        rng = np.random.default_rng(seed)
        timed("  permutation", lambda: attribution.permutation_importance(
            inputs.trained, x, y, groups, params.permutation_repeats, rng))  # fmt: skip


if __name__ == "__main__":
    main()
