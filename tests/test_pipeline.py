"""The real `dvc` CLI on a temporary copy of the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden": [16, 16], "max_epochs": 4, "patience": 2}


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["HOME"] = str(home)  # no user-level git or DVC config leaks in
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "test"
        env[f"GIT_{role}_EMAIL"] = "test@example.invalid"
    return env


class Repo:
    """A git + DVC copy of this project's files (tracked and not ignored), outputs excluded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = _env(path.parent)
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, listed):
            if (ROOT / name).is_file():
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, path / name)
        self.run("git", "init", "-q", "-b", "main")
        self.commit("copy")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(cmd, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> str:
        result = self.run("dvc", *args, check=check)
        return result.stdout + result.stderr

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def set_params(self, **train: object) -> None:
        path = self.path / "params.yaml"
        params = yaml.safe_load(path.read_text())
        params["train"].update(train)
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def metrics(self) -> dict:
        return json.loads((self.path / "reports/train/metrics.json").read_text())


def ran(output: str) -> set[str]:
    return {s for s in ("download", "preprocess", "train") if f"Running stage '{s}'" in output}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    (tmp_path / "repo").mkdir()
    return Repo(tmp_path / "repo")


def test_repro_then_noop_then_experiment(repo: Repo):
    repo.set_params(**TINY)
    out = repo.dvc("repro")
    assert ran(out) == {"download", "preprocess", "train"}
    for output in ("data/raw/heart.csv", "data/processed/train.csv", "reports/data.json",
                   "models/model.safetensors", "models/model.json", "models/preprocess.json",
                   "reports/train/metrics.json", "reports/train/plots/custom/roc.json"):  # fmt: skip
        assert (repo.path / output).is_file(), output
    assert not (repo.path / "lightning_logs").exists() and not (repo.path / "dvclive").exists()
    dvc_yaml_before = (ROOT / "dvc.yaml").read_text()
    assert (repo.path / "dvc.yaml").read_text() == dvc_yaml_before  # DVCLive left it alone

    out = repo.dvc("repro")
    assert ran(out) == set(), out
    assert out.count("didn't change, skipping") == 3
    repo.commit("tiny baseline")
    assert repo.run("git", "status", "--porcelain").stdout == ""

    epochs_before = repo.metrics()["epochs"]
    out = repo.dvc("exp", "run", "-S", "train.max_epochs=1")
    assert ran(out) == {"train"}, out
    diff = json.loads(repo.dvc("metrics", "diff", "--json"))
    changed = diff["reports/train/metrics.json"]
    assert changed["epochs"] == {"old": epochs_before, "new": 1, "diff": 1 - epochs_before}

    # A data param reruns preprocess and train, never download.
    params = yaml.safe_load((repo.path / "params.yaml").read_text())
    params["data"]["split"] = [0.6, 0.2, 0.2]
    (repo.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(repo.dvc("repro")) == {"preprocess", "train"}
    assert json.loads((repo.path / "reports/data.json").read_text())["split"]["test"] == 150


def test_bad_param_fails_the_stage_with_one_line(repo: Repo):
    repo.set_params(**TINY, lr=-0.1)
    result = repo.run("dvc", "repro", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: train.lr must be > 0 (got -0.1)" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert not (repo.path / "models").exists()


@pytest.mark.slow
def test_default_pipeline_meets_targets_and_reproduces_the_lock(repo: Repo):
    """The committed dvc.lock is what a fresh clone's `dvc repro` produces, byte for byte."""
    committed_lock = (ROOT / "dvc.lock").read_text()
    repo.dvc("repro")
    metrics = repo.metrics()
    assert metrics["test"]["roc_auc"] >= 0.93 and metrics["test"]["f1"] >= 0.87
    assert (repo.path / "dvc.lock").read_text() == committed_lock
    assert repo.run("git", "status", "--porcelain").stdout == ""
    repo.dvc("repro", "-f")
    assert (repo.path / "dvc.lock").read_text() == committed_lock
