"""Shared fixtures: tiny raw rows, an in-process small run, and git + DVC copies of the project
(fresh, or with the pipeline run once by `dvc repro`) for the end-to-end tests."""

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import PARAMS, SMALL, TINY, Repo, isolated_env, process_state_kept


@pytest.fixture
def frame() -> pd.DataFrame:
    """Four raw rows: two numeric columns (one with a 0), a categorical one, a 0/1 target."""
    return pd.DataFrame(
        {
            "Age": [40.0, 50.0, 60.0, 70.0],
            "Chol": [200.0, 0.0, 300.0, 250.0],
            "Sex": ["M", "F", "M", "M"],
            "y": [0, 1, 1, 0],
        }
    )


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


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preprocess and train stages' work, in-process on the bundled table with a tiny
    network: data/raw/heart.csv, data/processed, models and reports/train, as `dvc repro`
    lays them out, in seconds. For unit tests of what reads them; tests must not change it."""
    from topoxai.download import fetch
    from topoxai.params import load_params
    from topoxai.preprocess import preprocess
    from topoxai.train import train

    root = tmp_path_factory.mktemp("small_run")
    params = load_params(PARAMS)
    raw = root / "data/raw/heart.csv"
    raw.parent.mkdir(parents=True)
    fetch(params.data.source, raw, sha256=None, target=params.data.target, site=params.data.site)
    preprocess(params.data, seed=params.seed, raw=raw, out=root / "data/processed")
    with process_state_kept():
        train(dataclasses.replace(params.train, **SMALL), seed=params.seed, level=params.level,
              data=root / "data/processed", model_dir=root / "models",
              live_dir=root / "reports/train")  # fmt: skip
    return root


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not intercept requests to 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
