"""Stage `train`: fit the MLP with Lightning, log to DVCLive, save the model as plain data."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, required=True, help="the preprocess stage's folder")
    parser.add_argument("--model", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder")
    args = parser.parse_args()

    params = load_params(args.params)
    # Validate params before paying for torch and lightning imports.
    from topoxai.train import train

    train(params.train, seed=params.seed, data=args.data, model_dir=args.model, live_dir=args.live)


if __name__ == "__main__":
    run_main(main)
