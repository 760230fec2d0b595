"""The `topoxai` command."""

import argparse
import sys
from pathlib import Path

from topoxai.errors import UserError, run_main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="topoxai", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="score raw patient rows with a trained model")
    p.add_argument(
        "--model", type=Path, default=Path("models"), help="model folder (default: models)"
    )
    p.add_argument("--input", required=True, help="CSV with the raw columns; - reads stdin")
    p.add_argument("--output", default="-", help="CSV to write; - (default) writes stdout")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="predict the positive class at >= (0.5)"
    )
    p.add_argument(
        "--id", action="append", dest="ids", metavar="COLUMN",
        help="input column to copy to the output (repeatable); default: the row number",
    )  # fmt: skip
    c = commands.add_parser(
        "check-params", help="validate a params file, as every stage does before it runs"
    )
    c.add_argument("params", nargs="?", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    if args.command == "check-params":
        run_main(lambda: _check_params(args.params))
    else:
        run_main(lambda: _predict(args))


def _check_params(path: Path) -> None:
    from topoxai.params import load_params

    load_params(path)
    print(f"{path}: ok")


def _predict(args: argparse.Namespace) -> None:
    from topoxai.files import write_text
    from topoxai.predict import predict_csv

    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1] (got {args.threshold:g})")
    table = predict_csv(args.model, args.input, threshold=args.threshold, id_columns=args.ids)
    text = table.to_csv(index=False)
    if args.output == "-":
        sys.stdout.write(text)
        return
    try:
        write_text(Path(args.output), text)
    except OSError as err:
        raise UserError(f"{args.output}: cannot write it ({err.strerror})") from None


if __name__ == "__main__":
    main()
