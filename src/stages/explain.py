"""Stage `explain`: topology, Mapper and attribution of the trained model, into one folder."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import ParamsError, load_params
from topoxai.pool import Pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, required=True, help="the train stage's model folder")
    parser.add_argument("--data", type=Path, required=True, help="the preprocess stage's folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and plots")
    args = parser.parse_args()

    params = load_params(args.params)
    config = params.explain
    # Params are valid. Start the worker processes, draw the rows and start the untrained
    # controls on them (numpy only), and only then import torch, kmapper and the rest: the
    # workers compute while this process imports (on 2 cores, 4 of the stage's ~20 s).
    with Pool(config.jobs, config.threads, preload=("topoxai.explain.controls",)) as pool:
        from topoxai.artifacts import load_card
        from topoxai.explain import controls, sample

        rows = sample.draw(
            args.data, max_points=config.max_points, max_test_rows=config.max_test_rows,
            seed=params.seed,
        )  # fmt: skip
        control_diagrams = controls.start(
            pool, load_card(args.model)["architecture"], rows.points, rows.labels,
            seed=params.seed, count=config.controls, k=config.k, max_scale=config.filtration_max,
        )  # fmt: skip
        from topoxai.explain.stage import explain

        try:
            metrics = explain(
                config,
                seed=params.seed,
                level=params.level,
                model_dir=args.model,
                rows=rows,
                out=args.out,
                pool=pool,
                control_diagrams=control_diagrams,
            )
        except ParamsError as err:  # a layer the model does not have: known once it is read
            raise ParamsError(f"{args.params}: {err}") from None
    b0, b1 = metrics["topology"]["betti_h0"], metrics["topology"]["betti_h1"]
    graph = metrics["mapper"]
    print(
        f"explain: {args.out}: Betti numbers (both classes) input ({b0['input']}, "
        f"{b1['input']}), last hidden layer ({b0['trained']}, {b1['trained']}), "
        f"{config.controls} untrained (mean {b0['control_mean']}, {b1['control_mean']}; "
        f"p {b0['p']}, {b1['p']}); "
        f"Mapper {graph['nodes']} nodes, errors in "
        f"impure nodes {graph['error_share_impure']} vs all rows {graph['row_share_impure']} "
        f"(p {graph['p_errors_impure']})"
    )


if __name__ == "__main__":
    run_main(main)
