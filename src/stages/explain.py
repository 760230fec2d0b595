"""Stage `explain`: topology, Mapper and attribution of the trained model, into one folder."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, required=True, help="the train stage's model folder")
    parser.add_argument("--data", type=Path, required=True, help="the preprocess stage's folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and plots")
    args = parser.parse_args()

    params = load_params(args.params)
    # Validate params before paying for torch, ripser and kmapper imports.
    from topoxai.explain import explain
    from topoxai.params import ParamsError

    try:
        metrics = explain(
            params.explain,
            seed=params.seed,
            level=params.level,
            model_dir=args.model,
            data_dir=args.data,
            out=args.out,
        )
    except ParamsError as err:  # a layer the model does not have: known only once it is read
        raise ParamsError(f"{args.params}: {err}") from None
    topo, graph = metrics["topology"]["simplification_h1"], metrics["mapper"]
    print(
        f"explain: {args.out}: H1 simplification trained {topo['trained']} "
        f"[{topo['ci_low']}, {topo['ci_high']}] vs {params.explain.controls} untrained "
        f"{topo['control_mean']} (p {topo['p']}); Mapper {graph['nodes']} nodes, errors in "
        f"impure nodes {graph['error_share_impure']} vs all rows {graph['row_share_impure']} "
        f"(p {graph['p_errors_impure']})"
    )


if __name__ == "__main__":
    run_main(main)
