"""Wall time of a cold and a no-op `dvc repro`, of each stage, and train's peak memory.

Runs on a temporary copy of the repository (git-tracked files), so the workspace and
its DVC cache are left alone:

    python benchmarks/pipeline.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def timed(what: str, cmd: str, cwd: Path, env: dict[str, str]) -> tuple[str, float, float]:
    """(what, seconds, peak resident MiB of the largest process) for one shell command."""
    print(f"{what} ...", end=" ", flush=True)  # a cold repro is silent for about a minute
    with tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        # GNU time's %M is the largest resident set of the command and its waited-for children.
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, "sh", "-c", cmd],
                       cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        seconds = time.perf_counter() - start
        print(f"{seconds:.1f} s", flush=True)
        return what, seconds, int(peak.read().split()[-1]) / 1024


def main() -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        for name in ("params.yaml", "dvc.yaml"):  # uncommitted edits count too
            shutil.copy2(ROOT / name, repo / name)
        rows = [timed("dvc repro (cold)", "dvc repro", repo, env)]
        rows.append(timed("dvc repro (no-op)", "dvc repro", repo, env))
        stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
        for name, stage in stages.items():
            rows.append(timed(f"stage {name}", " ".join(stage["cmd"].split()), repo, env))
    print(f"\n{'what':<22}{'seconds':>9}{'peak MiB':>10}")
    for what, seconds, peak in rows:
        print(f"{what:<22}{seconds:>9.2f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
