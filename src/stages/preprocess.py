"""Stage `preprocess`: filter, split and standardize the raw CSV; fit on train only."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.files import write_json
from topoxai.params import load_params
from topoxai.preprocess import preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the splits and spec")
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    metrics = preprocess(params.data, seed=params.seed, raw=args.raw, out=args.out)
    write_json(args.metrics, metrics)
    print(f"preprocess: {metrics['rows']} -> split {metrics['split']}")


if __name__ == "__main__":
    run_main(main)
