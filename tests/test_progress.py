"""Progress bars on a terminal, none in a log: each long-running command under a real
pseudo-terminal, and again with stderr redirected."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pandas as pd
import pytest
import yaml

from topoxai import progress


def run(cmd: list[str], cwd: Path, *, terminal: bool) -> str:
    """The command's stderr, which is a pseudo-terminal (120 columns) or a pipe."""
    env = {k: v for k, v in os.environ.items() if k != progress.VARIABLE}
    if not terminal:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True)
        return done.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert child.wait() == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny trained repo, and params that keep evaluate and explain to seconds."""
    folder = tmp_path_factory.mktemp("progress")
    params = yaml.safe_load((trained.path / "params.yaml").read_text())
    params["evaluate"] |= {"folds": 2, "repeats": 1, "jobs": 1}
    params["explain"] |= {"controls": 4, "resamples": 2, "max_points": 60, "jobs": 1}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return trained.path, folder


def commands(repo: Path, folder: Path, out: str) -> dict[str, list[str]]:
    python = sys.executable
    params = ["--params", str(folder / "params.yaml")]
    rows = pd.read_csv(repo / "data/raw/heart.csv")
    many = folder / "many.csv"
    if not many.exists():  # enough rows that predict shows its progress
        rows.sample(100_000, replace=True, random_state=0).to_csv(many, index=False)
    return {
        "train": [python, "src/stages/train.py", *params, "--data", "data/processed",
                  "--model", f"{folder}/{out}/models", "--live", f"{folder}/{out}/live"],
        "evaluate": [python, "src/stages/evaluate.py", *params, "--raw", "data/raw/heart.csv",
                     "--out", f"{folder}/{out}/evaluate"],
        "explain": [python, "src/stages/explain.py", *params, "--model", "models",
                    "--data", "data/processed", "--out", f"{folder}/{out}/explain"],
        "predict": [python, "-m", "topoxai.cli", "predict", "--model", "models",
                    "--input", str(many), "--output", f"{folder}/{out}-scores.csv"],
    }  # fmt: skip


# What each command's bar shows: its name and a rate (tqdm draws "<n>/<total> [<elapsed><<left>,
# <rate>]"), redrawn with carriage returns.
BARS = {
    "train": ["epoch 0", "rows/s"],
    "evaluate": ["folds", "/2 ["],
    "explain": ["persistence", "untrained controls"],
    "predict": ["scoring", "rows/s"],
}


@pytest.mark.parametrize("command", list(BARS))
def test_a_terminal_sees_progress_and_a_log_does_not(setup, command):
    repo, folder = setup
    shown = run(commands(repo, folder, f"tty-{command}")[command], repo, terminal=True)
    assert "\r" in shown
    for text in BARS[command]:
        assert text in shown, shown[-2000:]
    logged = run(commands(repo, folder, f"log-{command}")[command], repo, terminal=False)
    assert "\r" not in logged
    for text in BARS[command]:
        assert text not in logged, logged[-2000:]


def test_the_variable_overrides_the_terminal(monkeypatch):
    monkeypatch.setenv(progress.VARIABLE, "1")
    assert progress.enabled()
    monkeypatch.setenv(progress.VARIABLE, "0")
    assert not progress.enabled()
    monkeypatch.delenv(progress.VARIABLE)
    assert progress.enabled() == sys.stderr.isatty()
    with progress.bar(10, "x", show=False) as shown:  # off: no output, updates cost nothing
        shown.update(5)
    assert list(progress.iterate(iter([1, 2, 3]), 3, "y")) == [1, 2, 3]
