"""Stage `sites`: validation by site, each held out in turn (internal-external CV)."""

import argparse
from pathlib import Path

from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="the downloaded CSV")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics and plots")
    args = parser.parse_args()

    params = load_params(args.params)
    from topoxai.sites import summary_lines, validate_sites  # after the params check

    metrics = validate_sites(
        params.sites,
        data=params.data,
        train=params.train,
        level=params.level,
        raw=args.raw,
        out=args.out,
    )
    print("\n".join(summary_lines(metrics)))


if __name__ == "__main__":
    run_main(main)
