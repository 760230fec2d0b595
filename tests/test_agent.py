"""Experiments on ClearML agents: the task `make agent-run` defines (real SDK, offline mode),
and its entry point run the way an agent runs it (its interpreter, PATH left as it was)."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, Repo

pytest.importorskip("clearml")

ORIGIN = "https://git.example.invalid/team/topoxai.git"


def make_agent_run(repo: Repo, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make agent-run` as a user runs it: the venv in .venv, not on the shell's PATH."""
    (repo.path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in repo.env.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env.update(PATH="/usr/bin:/bin", CLEARML_OFFLINE_MODE="1")
    env.update(CLEARML_CACHE_DIR=str(tmp_path / "clearml"))
    make = ["make", "agent-run", "STAMP=", "QUEUE=", *args]
    return subprocess.run(make, cwd=repo.path, env=env, capture_output=True, text=True)


def define_task(repo: Repo, tmp_path: Path, exp: str) -> dict:
    """Without a queue, offline: ClearML writes the task it would create."""
    result = make_agent_run(repo, tmp_path, f"REPO={ORIGIN}", f"EXP={exp}")
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = (tmp_path / "clearml/offline").glob("*/task.json")
    return json.loads(task.read_text())


def test_agent_run_defines_the_task_an_agent_needs(baseline: Repo, tmp_path):
    task = define_task(baseline, tmp_path, "-S 'train.hidden=[32,32]' -S train.lr=0.05")
    script = task["script"]
    assert script["entry_point"] == (
        "-m topoxai.agent exp run -S 'train.hidden=[32,32]' -S train.lr=0.05 "
        "-S clearml.enabled=true -S clearml.offline=false"
    )
    assert (script["repository"], script["working_dir"]) == (ORIGIN, ".")
    assert script["version_num"] == baseline.run("git", "rev-parse", "HEAD").stdout.strip()
    pins = script["requirements"]["pip"].splitlines()
    constraints = (ROOT / "constraints.txt").read_text().split()
    assert pins == [*constraints, "-e .[pipeline,clearml]"]  # every pin, torch==2.13.0 among them
    assert "torch==2.13.0" in pins
    params = yaml.safe_load((baseline.path / "params.yaml").read_text())
    assert task["project_name"] == params["clearml"]["project"]
    assert task["name"] == "dvc exp run -S 'train.hidden=[32,32]' -S train.lr=0.05"


def test_agent_run_without_a_repository_url_stops(baseline: Repo, tmp_path):
    result = make_agent_run(baseline, tmp_path, "REPO=")  # the copy has no git remote either
    assert result.returncode != 0
    assert "error: no git remote 'origin': set REPO to the URL agents clone" in result.stderr
    assert not (tmp_path / "clearml").exists()  # no task defined


@pytest.mark.slow
def test_entry_point_runs_as_an_agent_runs_it(baseline: Repo, tmp_path):
    """A fresh clone at the task's commit; the venv's python, but not on PATH (as an agent)."""
    task = define_task(baseline, tmp_path, "-S train.lr=0.05")
    clone = tmp_path / "agent"
    subprocess.run(["git", "clone", "-q", str(baseline.path), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", task["script"]["version_num"]], cwd=clone, check=True)
    env = {
        "PATH": "/usr/bin:/bin",  # no `python` here, or not the venv's
        "HOME": str(tmp_path / "home"),
        "DVC_NO_ANALYTICS": "1",
        "CLEARML_CACHE_DIR": str(tmp_path / "agent-clearml"),
    }
    # No server here: the same task, its ClearML record made offline instead.
    args = [*shlex.split(task["script"]["entry_point"]), "-S", "clearml.offline=true"]

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)

    plain = run(sys.executable, "-u", "-m", "dvc", *args[2:])  # DVC's CLI, no launcher
    assert plain.returncode != 0 and "python: not found" in plain.stderr + plain.stdout

    result = run(sys.executable, "-u", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran experiment(s)" in result.stdout + result.stderr
    assert yaml.safe_load((clone / "params.yaml").read_text())["train"]["lr"] == 0.05
    assert json.loads((clone / "reports/train/metrics.json").read_text())["test"]["roc_auc"] > 0
    assert len(list((tmp_path / "agent-clearml/offline").glob("*.zip"))) == 1
