"""Shared fixtures: a temporary git + DVC copy of the project, and a tiny trained one."""

import shutil
from pathlib import Path

import pytest
from helpers import TINY, Repo, isolated_env


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    (tmp_path / "repo").mkdir()
    return Repo.of_project(tmp_path / "repo")


@pytest.fixture
def baseline(trained: "Repo", tmp_path: Path) -> "Repo":
    """A private copy of the tiny trained repo, committed: as after `make run` + `git commit`."""
    path = tmp_path / "baseline"
    shutil.copytree(trained.path, path, symlinks=True)
    repo = Repo(path, isolated_env(tmp_path))
    repo.commit("baseline")
    return repo


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The pipeline run once with tiny training settings; tests must not change it."""
    path = tmp_path_factory.mktemp("trained") / "repo"
    path.mkdir()
    repo = Repo.of_project(path)
    repo.set_params(**TINY)
    repo.dvc("repro")
    return repo


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not intercept requests to 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
