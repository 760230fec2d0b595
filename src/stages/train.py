"""Stage `train`: fit the MLP with Lightning, log to DVCLive, save the model as plain data."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="the preprocess stage's folder")
    parser.add_argument("--model", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()

    params = load_params(args.params)
    if params.clearml.enabled:
        from topoxai import tracking

        tracking.preflight(params.clearml)  # seconds, before any training time is spent
    # Validate params before paying for torch and lightning imports.
    from topoxai.artifacts import WEIGHTS
    from topoxai.train import train

    result = train(
        params.train,
        seed=params.seed,
        level=params.level,
        data=args.data,
        model_dir=args.model,
        live_dir=args.live,
    )
    if result is None:  # an extra DDP rank: rank 0 writes the outputs and the ClearML record
        return
    if params.clearml.enabled:
        where = tracking.record(
            params.clearml,
            train=params.train,
            seed=params.seed,
            params_file=args.params,
            history=result.history,
            test=result.test,
            baseline=result.baseline,
            card=result.card,
            weights=args.model / WEIGHTS,
        )
        print(f"clearml: recorded {where}")


if __name__ == "__main__":
    run_main(main)
