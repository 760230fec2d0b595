"""Rows per second of `topoxai predict` end to end, its startup, and the shares of the
forward pass and of the domain check (the flags column), on ordinary rows and on rows that
are all flagged; then `topoxai predict --explain` on fewer rows, with its CPU time and peak
memory; and the cost of the conformal sets and the ood score: the same rows against a
copy of the model folder without them (plain `predict`), wall time and peak memory.

Needs a trained model folder (run `make run` first):

    python benchmarks/predict.py [--model models] [--rows 100000] [--raw data/raw/heart.csv]
                                 [--explain-rows 10000]

The rows are the raw table's, drawn with replacement (all flagged: the same rows with
Cholesterol 0, "not measured", so that every row's flag text is built). End to end is the CLI as a user runs
it (a new process: imports, reading, transform, forward, writing the output CSV). The
forward share is the time inside the network's forward calls over the whole run, measured
in one more run of the same command with the forward timed. The explain run's CPU time
(user + system) is printed beside its wall time: on cores shared with other jobs the wall
time overstates what the command costs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# The CLI, with MLP.forward and the domain check timed: prints "<forward seconds> <domain
# seconds> <total seconds>" on stderr.
TIMED = """
import sys, time
start = time.perf_counter()
import torch
from topoxai import cli, domain, model
spent = {"forward": 0.0, "domain": 0.0}
def timed(name, inner):
    def run(*args):
        t = time.perf_counter()
        try:
            return inner(*args)
        finally:
            spent[name] += time.perf_counter() - t
    return run
model.MLP.forward = timed("forward", model.MLP.forward)
# The flags of rows parsed once (predict); before that, of raw rows (its own parse).
name = "flags_of" if hasattr(domain, "flags_of") else "row_flags"
setattr(domain, name, timed("domain", getattr(domain, name)))
try:
    cli.main(sys.argv[1:])
finally:
    print(spent["forward"], spent["domain"], time.perf_counter() - start, file=sys.stderr)
"""


def run(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "topoxai.cli", "predict", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def measured(*args: str) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MB) of one run; the CPU time and peak are that process's own."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "topoxai.cli", "predict", *args]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def shares(*args: str) -> tuple[float, float, float]:
    """(forward seconds, domain check seconds, total seconds) of one timed run."""
    result = subprocess.run([sys.executable, "-c", TIMED, "predict", *args], check=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    forward, domain, total = map(float, result.stderr.splitlines()[-1].split())
    return forward, domain, total


def plain_copy(model: Path, folder: Path) -> Path:
    """The model folder without its conformal and ood calibrations: plain `predict`."""
    import json
    import shutil

    from topoxai.conformal import CONFORMAL_FILE
    from topoxai.ood import OOD_FILE

    shutil.copytree(model, folder)
    card = json.loads((folder / "model.json").read_text())
    for name in (CONFORMAL_FILE, OOD_FILE):
        card["files"].pop(name, None)
        (folder / name).unlink(missing_ok=True)
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models"))
    parser.add_argument("--raw", default=str(ROOT / "data/raw/heart.csv"), help="rows to draw")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--explain-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    raw = pd.read_csv(args.raw)
    with tempfile.TemporaryDirectory() as tmp:
        one, many, out = Path(tmp) / "one.csv", Path(tmp) / "many.csv", Path(tmp) / "out.csv"
        raw.head(1).to_csv(one, index=False)
        raw.sample(args.rows, replace=True, random_state=0).to_csv(many, index=False)
        startup = min(run("--model", args.model, "--input", str(one)) for _ in range(args.repeat))
        rows = ("--model", args.model, "--input", str(many), "--output", str(out))
        total = min(run(*rows) for _ in range(args.repeat))
        forward, domain, timed_total = shares(*rows)
        flagged = Path(tmp) / "flagged.csv"
        pd.read_csv(many).assign(Cholesterol=0).to_csv(flagged, index=False)
        odd = ("--model", args.model, "--input", str(flagged), "--output", str(out))
        odd_total = min(run(*odd) for _ in range(args.repeat))
        _, odd_domain, odd_timed = shares(*odd)
        plain_dir = plain_copy(Path(args.model), Path(tmp) / "plain")
        plain_rows = ("--model", str(plain_dir), "--input", str(many), "--output", str(out))
        full = min(measured(*rows) for _ in range(args.repeat))
        plain = min(measured(*plain_rows) for _ in range(args.repeat))
        few = Path(tmp) / "few.csv"
        raw.sample(args.explain_rows, replace=True, random_state=0).to_csv(few, index=False)
        explain = ("--model", args.model, "--input", str(few), "--output", str(out), "--explain")
        explained = [measured(*explain) for _ in range(args.repeat)]
    print(f"startup (1 row, best of {args.repeat}): {startup:.2f} s")
    print(
        f"{args.rows} rows (best of {args.repeat}): {total:.2f} s -> {args.rows / total:,.0f} rows/s"
    )
    print(f"excluding startup: {args.rows / (total - startup):,.0f} rows/s")
    print(f"forward pass: {forward:.2f} s of {timed_total:.2f} s ({forward / timed_total:.0%})")
    print(f"domain check: {domain:.2f} s of {timed_total:.2f} s ({domain / timed_total:.1%})")
    print(
        f"{args.rows} rows, every one flagged (best of {args.repeat}): {odd_total:.2f} s; "
        f"domain check {odd_domain:.2f} s of {odd_timed:.2f} s ({odd_domain / odd_timed:.1%})"
    )
    print(
        f"{args.rows} rows with sets and ood (best of {args.repeat}): {full[0]:.2f} s, peak "
        f"{full[2]:,.0f} MB; without: {plain[0]:.2f} s, peak {plain[2]:,.0f} MB "
        f"({full[0] / plain[0]:.2f}x)"
    )
    wall, cpu, peak = min(explained)
    print(
        f"--explain, {args.explain_rows} rows (best of {args.repeat}): {wall:.2f} s "
        f"(CPU {cpu:.2f} s) -> {args.explain_rows / wall:,.0f} rows/s; peak {peak:,.0f} MB"
    )


if __name__ == "__main__":
    main()
