"""Stage `download`: copy the raw CSV named by data.source to --out, verified."""

import argparse
from pathlib import Path

from topoxai.download import fetch
from topoxai.errors import run_main
from topoxai.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    data = load_params(args.params).data
    digest = fetch(data.source, args.out, sha256=data.sha256, target=data.target, site=data.site)
    print(f"download: {data.source} -> {args.out} (sha256 {digest})")


if __name__ == "__main__":
    run_main(main)
