"""Stage `evaluate`: repeated stratified k-fold cross-validation of the MLP and the baselines."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="the downloaded CSV")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and folds")
    args = parser.parse_args()

    params = load_params(args.params)
    from topoxai.evaluate import evaluate  # after the params check: torch is slow

    metrics = evaluate(
        params.evaluate,
        data=params.data,
        train=params.train,
        level=params.level,
        raw=args.raw,
        out=args.out,
    )
    # One line: `make run` prints the whole summary once, after the pipeline (topoxai results).
    auc = metrics["mlp"]["roc_auc"]
    print(
        f"evaluate: {args.out}: {metrics['repeats']}x{metrics['folds']}-fold cross-validation on "
        f"{metrics['rows']['used']} rows, MLP ROC-AUC {auc['mean']:.4f} [{auc['low']:.4f}, "
        f"{auc['high']:.4f}]; `topoxai results` prints the rest"
    )


if __name__ == "__main__":
    run_main(main)
