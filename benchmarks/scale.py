"""The pipeline on synthetic tables of 10k, 100k and 1M rows: wall time and peak memory.

For each size it writes a table with the default schema (the bundled table's 11 features,
realistic ranges and categories, a known logistic signal, no duplicated rows), copies the
repository (its tracked and unignored files, as the end-to-end tests do) into a temporary
folder, points `data.source` at the table and runs each stage up to `train`, and `sites`,
through the real `dvc` CLI (`dvc repro -s <stage>`), so DVC's hashing of the outputs is
counted. Then a
no-op `dvc repro train` and `topoxai predict` on the raw rows of the largest size:

    python benchmarks/scale.py                              # 10k, 100k, 1M rows
    python benchmarks/scale.py --sizes 10000 --hidden 1000 1000 --max-epochs 3

Peak MB is the resident memory of the command's whole process tree (sampled every 50 ms):
for a stage run by DVC, DVC itself, the stage script and any worker processes together.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from dvc.utils.serialize import modify_yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("download", "preprocess", "train", "sites")
# Budgets from issue 12, at 1,000,000 rows on 2 cores.
BUDGETS = {"preprocess": "<= 5 s and <= 1 GB at 1M rows", "no-op repro": "<= 1.5 s"}

# The bundled table's categories and their frequencies (rounded).
CATEGORIES = {
    "Sex": (["M", "F"], [0.79, 0.21]),
    "ChestPainType": (["ASY", "NAP", "ATA", "TA"], [0.54, 0.22, 0.19, 0.05]),
    "FastingBS": (["0", "1"], [0.77, 0.23]),
    "RestingECG": (["Normal", "LVH", "ST"], [0.60, 0.20, 0.20]),
    "ExerciseAngina": (["N", "Y"], [0.60, 0.40]),
    "ST_Slope": (["Up", "Flat", "Down"], [0.43, 0.50, 0.07]),
    # data.site: the four hospitals' shares of the bundled table
    "hospital": (
        ["Hungary", "Switzerland", "VA Long Beach", "Cleveland"],
        [0.32, 0.13, 0.22, 0.33],
    ),
}
# The known signal: log-odds of HeartDisease per standardized numeric unit or per category.
COEF = {
    "Age": 0.3, "RestingBP": 0.1, "Cholesterol": 0.2, "MaxHR": -0.4, "Oldpeak": 0.6,
    "Sex=M": 0.9, "ChestPainType=ASY": 1.2, "FastingBS=1": 0.6, "ExerciseAngina=Y": 0.9,
    "ST_Slope=Flat": 1.4, "ST_Slope=Down": 1.0, "RestingECG=ST": 0.2,
}  # fmt: skip
INTERCEPT = -2.0


def _draw(n: int, rng: np.random.Generator) -> pd.DataFrame:
    def whole(mean: float, sd: float, low: int, high: int) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, n).round(), low, high).astype(np.int64)

    def pick(column: str) -> np.ndarray:
        values, p = CATEGORIES[column]
        return np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)]

    # 0 means "not measured": about 19% of Cholesterol and 0.1% of RestingBP, as in the
    # bundled table, so the preprocess stage drops a realistic share.
    cholesterol = whole(245, 55, 85, 603)
    cholesterol[rng.random(n) < 0.19] = 0
    resting_bp = whole(132, 18, 80, 200)
    resting_bp[rng.random(n) < 0.001] = 0
    return pd.DataFrame(
        {
            "Age": whole(53, 9.4, 28, 77),
            "Sex": pick("Sex"),
            "ChestPainType": pick("ChestPainType"),
            "RestingBP": resting_bp,
            "Cholesterol": cholesterol,
            "FastingBS": pick("FastingBS"),
            "RestingECG": pick("RestingECG"),
            "MaxHR": whole(137, 25, 60, 202),
            "ExerciseAngina": pick("ExerciseAngina"),
            # Two decimals (the bundled table has one): enough distinct values that
            # duplicated rows are rare, and those few are drawn again.
            "Oldpeak": np.clip(rng.gamma(1.2, 0.75, n) - 0.2, -2.6, 6.2).round(2),
            "hospital": pick("hospital"),
            "ST_Slope": pick("ST_Slope"),
        }
    )


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` raw rows with the default schema, no two alike, HeartDisease from a logistic model."""
    rng = np.random.default_rng(seed)
    frame = _draw(n, rng)
    while (dup := frame.duplicated().to_numpy()).any():
        again = _draw(int(dup.sum()), rng)
        for column in frame.columns:
            frame.loc[dup, column] = again[column].to_numpy()
    logit = np.full(n, INTERCEPT)
    for name, coef in COEF.items():
        column, _, value = name.partition("=")
        if value:
            logit += coef * (frame[column] == value).to_numpy()
        else:
            x = frame[column].to_numpy(float)
            logit += coef * (x - x.mean()) / x.std()
    frame["HeartDisease"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame


def copy_project(path: Path, env: dict[str, str]) -> None:
    """The project's tracked and unignored files (so no outputs) in a new git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "copy"]):  # fmt: skip
        subprocess.run(cmd, cwd=path, env=env, check=True)


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak MB of the process tree, stderr) of a command that must succeed.

    The tree's resident sets summed, sampled every 50 ms: a stage with worker processes
    (evaluate.jobs, explain.jobs) holds them all at once, which GNU time's %M (the largest
    single process) would not show.
    """
    import psutil

    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        tree, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                members = [tree, *tree.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in members))
            except psutil.Error:  # a process that ended between listing and reading
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{stderr}")
    return seconds, peak / 2**20, stderr


def bad_input(csv: Path, repo: Path, env: dict[str, str]) -> None:
    """The preprocess stage on the table with one extra field in its middle line: one line."""
    lines = csv.read_text().splitlines()
    middle = len(lines) // 2  # a 0-based index: the file's line middle + 1
    lines[middle] += ",1"
    bad = csv.with_name(f"bad_{csv.name}")
    bad.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "src/stages/preprocess.py", "--raw", str(bad),
           "--out", str(repo / "bad_out"), "--metrics", str(repo / "bad.json")]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(f"[{len(lines) - 1:,} rows] an extra field on line {middle + 1:,}: exit "
          f"{result.returncode} after {seconds:.1f} s, stderr {result.stderr!r}", flush=True)  # fmt: skip
    bad.unlink()


# Rows per net for one epoch of each loop: the 2x1000 net runs about 5k rows/s, so 100k rows
# (about 20 s a loop) give a steady rate; the 64x64 net is measured on the full million.
LOOP_ROWS = {(1000, 1000): 100_000, (64, 64): 1_000_000}


def train_loop_throughput() -> None:
    """Our Lightning train loop against a plain PyTorch loop on the same tensors (rows/s)."""
    from train_loop import compare  # benchmarks/train_loop.py, beside this script

    for hidden, rows in LOOP_ROWS.items():
        print(f"train loop, hidden {list(hidden)}: one epoch of {rows:,} rows ...", flush=True)
        result = compare(rows, hidden)
        print(
            f"train loop, hidden {list(hidden)}: Lightning {result['lightning_rows_per_s']:,.0f} "
            f"rows/s, plain PyTorch {result['plain_rows_per_s']:,.0f} rows/s, "
            f"ratio {result['ratio']:.2f} (budget >= 0.8)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[1000, 1000])
    parser.add_argument("--keep", type=Path, help="keep the generated CSVs in this folder")
    parser.add_argument("--no-loop", action="store_true", help="skip the train-loop comparison")
    args = parser.parse_args()

    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "bench")
        env.setdefault(f"GIT_{role}_EMAIL", "bench@example.invalid")
    table: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            csv = data / f"heart_{n}.csv"
            if not csv.exists():
                print(f"[{n:,} rows] writing {csv.name} ...", flush=True)
                synthetic(n).to_csv(csv, index=False)
            repo = Path(tmp) / f"repo_{n}"
            repo.mkdir()
            copy_project(repo, env)
            with modify_yaml(repo / "params.yaml") as params:
                params["data"]["source"] = str(csv.resolve())
                params["data"]["sha256"] = None
                params["train"].update(
                    max_epochs=args.max_epochs, patience=args.patience, hidden=args.hidden
                )
            for stage in STAGES:
                seconds, mb, _ = measure(["dvc", "repro", "-s", stage], repo, env)
                table[stage, n] = seconds, mb
                print(f"[{n:,} rows] {stage}: {seconds:.1f} s, {mb:.0f} MB", flush=True)
            seconds, mb, _ = measure(["dvc", "repro", "train"], repo, env)
            table["no-op repro", n] = seconds, mb
            print(f"[{n:,} rows] no-op dvc repro train: {seconds:.2f} s", flush=True)
            seconds, mb, _ = measure(
                ["topoxai", "predict", "--model", "models", "--input", str(csv),
                 "--output", str(Path(tmp) / "predictions.csv")], repo, env,
            )  # fmt: skip
            table["predict", n] = seconds, mb
            print(f"[{n:,} rows] predict: {seconds:.1f} s ({n / seconds:,.0f} rows/s)", flush=True)
            if n == max(args.sizes):
                bad_input(csv, repo, env)
            shutil.rmtree(repo)  # its DVC cache holds a second copy of every output

    print(f"\ntrain: hidden {args.hidden}, max_epochs {args.max_epochs}, patience {args.patience}")
    header = "".join(f"{f'{n:,} rows':>22}" for n in args.sizes)
    print(f"{'stage':<14}{header}\n{'':<14}" + f"{'wall s':>12}{'peak MB':>10}" * len(args.sizes))
    for what in (*STAGES, "no-op repro", "predict"):
        cells = "".join(f"{table[what, n][0]:>12.2f}{table[what, n][1]:>10.0f}" for n in args.sizes)
        print(f"{what:<14}{cells}")
    n = max(args.sizes)
    print(f"predict: {n / table['predict', n][0]:,.0f} rows/s end to end at {n:,} rows")
    if len(args.sizes) > 1:
        small = min(args.sizes)
        for what in (*STAGES, "predict"):
            # Marginal: what each extra row costs beyond the interpreter and libraries.
            per_row = (table[what, n][1] - table[what, small][1]) * 2**20 / (n - small)
            print(f"{what}: {per_row:,.0f} bytes of peak memory per raw row "
                  f"({2**30 / max(per_row, 1):,.0f} rows per GB), {small:,} to {n:,} rows")  # fmt: skip
    print("budgets: " + "; ".join(f"{k} {v}" for k, v in BUDGETS.items()))
    if not args.no_loop:
        train_loop_throughput()


if __name__ == "__main__":
    main()
