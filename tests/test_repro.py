"""`topoxai repro` (make run's `dvc repro`), with the real DVC CLI on a one-stage repo."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from topoxai.repro import HINT

BIN = Path(sys.executable).parent


def _repo(path: Path) -> Path:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "stage", "add", "-q", "-n", "count", "-o", "out.txt", "seq 3 > out.txt"],
    ):
        subprocess.run(cmd, cwd=path, env=env, check=True, capture_output=True)
    return path


def _repro(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "topoxai"), "repro", *args]
    return subprocess.run(cmd, cwd=path, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("remote", [False, True], ids=["no-remote", "remote"])
def test_the_push_hint_shows_only_with_a_remote_to_push_to(tmp_path, remote):
    repo = _repo(tmp_path)
    if remote:
        subprocess.run([str(BIN / "dvc"), "remote", "add", "-q", "-d", "store", str(tmp_path / "store")], cwd=repo, check=True)  # fmt: skip
    result = _repro(repo)
    assert result.returncode == 0, result.stderr
    assert "Running stage 'count'" in result.stdout + result.stderr
    assert (repo / "out.txt").read_text() == "1\n2\n3\n"
    assert (HINT in result.stdout) == remote
    assert _repro(repo).stdout.strip().endswith("Data and pipelines are up to date.")


def test_dvcs_arguments_and_exit_status_pass_through(tmp_path):
    repo = _repo(tmp_path)
    (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text().replace("seq 3", "exit 3;"))
    result = _repro(repo, "--force", "count")
    assert result.returncode != 0 and "failed to reproduce 'count'" in result.stderr
    assert _repro(repo, "--no-such-option").returncode != 0


def test_outside_a_dvc_project_it_is_one_line(tmp_path):
    result = _repro(tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: topoxai repro: not inside a DVC project (run it in the clone)"
    ]
