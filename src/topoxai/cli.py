"""topoxai: score patients with a trained model (predict, serve, show, update), and check the
pipeline's runs (results, verify, check-params, repro). Docs: README.md and docs/."""

import argparse
import sys
from pathlib import Path
from typing import Any

from topoxai import version
from topoxai.errors import UserError, run_main

# The serve command's defaults, kept here so that --help needs no web framework.
MAX_BODY = 16 * 2**20
TOKEN_ENV = "TOPOXAI_TOKEN"
# Decimals of the probabilities and p-values `topoxai predict` writes (`--digits all`: as
# computed): a conformal p-value is a multiple of 1/(n + 1), about 0.005 apart for the
# default model's 200-odd calibration rows, so 4 tell every two apart; a probability's 5th
# is near float32's noise between batches (docs/serve.md). Here, not in predict, so that
# --help imports no torch.
DIGITS = 4
TOP = 3  # features per row with --explain: the ones that moved it most, readable in one line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="topoxai", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "predict",
        help="score raw patient rows with a trained model",
        description="Score a CSV of patients (the data's own columns) with a model folder: "
        "each row's probability, prediction, conformal set, p-values, out-of-distribution "
        "p-value and domain flags, as CSV. Every column: docs/use.md.",
    )
    p.add_argument(
        "--model", type=Path, default=Path("models"), help="model folder (default: models)"
    )
    p.add_argument("--input", required=True, help="CSV with the raw columns; - reads stdin")
    p.add_argument("--output", default="-", help="CSV to write; - (default) writes stdout")
    p.add_argument(
        "--threshold", type=float, default=0.5,
        help="predict the positive class when its probability is at least this (default 0.5)",
    )  # fmt: skip
    p.add_argument(
        "--strict", action="store_true",
        help="refuse the input, writing nothing, if any row has a domain flag: a value out of "
        "the training range, an unseen category or a value not measured (docs/use.md)",
    )  # fmt: skip
    p.add_argument(
        "--id", action="append", dest="ids", metavar="COLUMN",
        help="input column to copy to the output (repeatable); default: the row number",
    )  # fmt: skip
    p.add_argument(
        "--digits", default=str(DIGITS), metavar="D",
        help=f"decimals of probabilities and p-values (default: {DIGITS}); all: as computed",
    )  # fmt: skip
    p.add_argument(
        "--explain", action="store_true",
        help="add the features that moved each row's probability most from the reference "
        "patient's",
    )  # fmt: skip
    p.add_argument(
        "--top", type=int, metavar="N",
        help=f"with --explain: features per row (default: {TOP})",
    )  # fmt: skip
    u = commands.add_parser(
        "update",
        help="recalibrate a model folder on a new site's labelled rows, into a new folder",
    )
    u.add_argument(
        "--model", type=Path, default=Path("models"), help="model folder (default: models)"
    )
    u.add_argument(
        "--input", type=Path, required=True, help="CSV of the site's rows: raw columns and target"
    )
    u.add_argument("--output", type=Path, required=True, help="the updated model folder to write")
    w = commands.add_parser(
        "serve",
        help="serve a model folder over HTTP: /predict, /model, /health, /ready, a page at / "
        f"(needs the serve extra; ${TOKEN_ENV} set: every scoring route wants it)",
    )
    w.add_argument(
        "--model", type=Path, default=Path("models"), help="model folder (default: models)"
    )
    w.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )  # fmt: skip
    w.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    w.add_argument(
        "--max-body", type=int, default=MAX_BODY, metavar="BYTES",
        help=f"refuse larger request bodies with 413 (default {MAX_BODY:,})",
    )  # fmt: skip
    s = commands.add_parser(
        "show", help="check a model folder and print its card, one line per entry"
    )
    s.add_argument(
        "--model", type=Path, default=Path("models"), help="model folder (default: models)"
    )
    r = commands.add_parser(
        "results", help="print the cross-validated estimates and paired tests (evaluate stage)"
    )
    r.add_argument(
        "--metrics",
        type=Path,
        default=Path("reports/evaluate/metrics.json"),
        help="the evaluate stage's metrics (default: reports/evaluate/metrics.json)",
    )
    v = commands.add_parser(
        "verify",
        help="after `dvc repro`: check that the run reproduces a revision's (metrics within "
        "tolerance, only hashes that another CPU moves differ); exit 1 if not",
    )
    v.add_argument("--rev", default="HEAD", help="the git revision to compare with (HEAD)")
    v.add_argument(
        "--record",
        action="store_true",
        help="record the workspace's metrics as those verify expects, in a file to commit "
        "with dvc.lock",
    )
    commands.add_parser(
        "repro",
        help="dvc repro, without its hint to dvc push when no remote is configured (make run); "
        "other arguments go to dvc repro",
        add_help=False,
    )
    c = commands.add_parser(
        "check-params", help="validate a params file, as every stage does before it runs"
    )
    c.add_argument("params", nargs="?", type=Path, default=Path("params.yaml"))
    args, rest = parser.parse_known_args(argv)
    if args.command == "repro":
        from topoxai.repro import repro

        run_main(lambda: sys.exit(repro(rest)))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "check-params":
        run_main(lambda: _check_params(args.params))
    elif args.command == "show":
        run_main(lambda: _show(args.model))
    elif args.command == "serve":
        run_main(lambda: _serve(args))
    elif args.command == "update":
        run_main(lambda: _update(args.model, args.input, args.output))
    elif args.command == "results":
        run_main(lambda: _results(args.metrics))
    elif args.command == "verify":
        run_main(lambda: _verify(args.rev, record=args.record))
    else:
        run_main(lambda: _predict(args))


def _serve(args: argparse.Namespace) -> None:
    try:
        from topoxai.serve import serve
    except ImportError as err:
        raise UserError(
            f"topoxai serve needs the serve extra ({err.name} is missing): in a clone, "
            "pip install --constraint constraints.txt '.[serve]' (make install has it)"
        ) from None
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be from 0 to 65535 (got {args.port})")
    if args.max_body < 1:
        raise UserError(f"--max-body must be at least 1 byte (got {args.max_body})")
    serve(args.model, host=args.host, port=args.port, max_body=args.max_body)


def _update(model: Path, rows: Path, out: Path) -> None:
    from topoxai.update import update_model

    card = update_model(model, rows, out)
    u = card["update"]
    slope = "" if u["slope_se"] is None else f" (se {u['slope_se']:.3f})"
    print(
        f"updated {model} on {sum(u['rows']['per_class'])} rows of {rows} "
        f"({u['rows']['per_class'][0]} and {u['rows']['per_class'][1]} per class): "
        f"{u['method']}, intercept {u['intercept']:+.3f} (se {u['intercept_se']:.3f}), "
        f"slope {u['slope']:.3f}{slope}; conformal sets: {u.get('conformal', 'none')}; "
        f"ood: {u.get('ood', 'none')}; wrote {out}"
    )


def _check_params(path: Path) -> None:
    from topoxai.params import load_params

    load_params(path)
    print(f"{path}: ok")


def _show(folder: Path) -> None:
    from topoxai.artifacts import load_model

    # load_model checks the files against the card first: what is printed is what predicts.
    entries = [("model", str(folder)), *_flatten(load_model(folder).card)]
    width = max(len(key) for key, _ in entries)
    for key, value in entries:
        print(f"{key:<{width}}  {value}")


def _results(path: Path) -> None:
    import json

    from topoxai.evaluate import summary_lines

    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        print("\n".join(summary_lines(metrics)))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the evaluate stage (dvc repro)") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not the evaluate stage's metrics ({err!r})") from None


def _verify(rev: str, *, record: bool) -> None:
    from topoxai import verify

    if record:
        print(f"wrote {verify.record(Path.cwd())}: commit it with dvc.lock")
        return
    verdict = verify.verify(Path.cwd(), rev)
    print("\n".join(verdict.lines(rev)))
    if verdict.problems:
        sys.exit(1)


def _flatten(card: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested card entries as (dotted key, text), lists joined by commas."""
    entries: list[tuple[str, str]] = []
    for key, value in card.items():
        if isinstance(value, dict):
            entries += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            entries.append((prefix + key, ", ".join(map(str, value))))
        else:
            entries.append((prefix + key, str(value)))
    return entries


def _predict(args: argparse.Namespace) -> None:
    import pandas as pd

    from topoxai.artifacts import load_model
    from topoxai.files import write_text
    from topoxai.predict import csv_text, digits_of, probability_column, read_rows, table_columns

    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1] (got {args.threshold:g})")
    if args.top is not None and not args.explain:
        raise UserError("--top needs --explain")
    explain = (TOP if args.top is None else args.top) if args.explain else None
    digits = digits_of(args.digits)
    model = load_model(args.model)
    columns = table_columns(
        model,
        read_rows(args.input, model),
        threshold=args.threshold,
        id_columns=args.ids,
        explain=explain,
        strict=args.strict,
        digits=digits,
    )
    table = pd.DataFrame(columns)
    # Opened in spreadsheets: no cell that echoes the input may run as a formula there.
    text = csv_text(table)
    if args.output == "-":
        sys.stdout.write(text)
        return
    try:
        write_text(Path(args.output), text)
    except OSError as err:
        raise UserError(f"{args.output}: cannot write it ({err.strerror})") from None
    rows = f"{len(table)} row" + ("" if len(table) == 1 else "s")
    # Counted from the predictions, made before rounding: a probability of 0.49996 is
    # written 0.5 under the default threshold, and is no positive.
    positive = int((columns["prediction"] == model.spec.positive_class).sum())
    probability = probability_column(model.spec)
    print(
        f"scored {rows}: {positive} positive ({probability} >= {args.threshold:g}); "
        f"wrote {args.output}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
