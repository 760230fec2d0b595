"""A failed run must not take the user's data away: the real `dvc` CLI and `make run`."""

import hashlib
from pathlib import Path

from helpers import RawServer, Repo

OUTPUTS = ("data/raw", "data/processed", "models", "reports")
HTML = b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n"


def contents(repo: Repo) -> dict[str, str]:
    """sha256 of every file under the pipeline's outputs, by path."""
    files = (p for folder in OUTPUTS for p in (repo.path / folder).rglob("*") if p.is_file())
    return {
        str(p.relative_to(repo.path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p.name != ".gitignore"
    }


def test_failed_download_keeps_the_last_good_raw_file(baseline: Repo):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        baseline.env.pop(name, None)  # 127.0.0.1 must be reached directly
    before = contents(baseline)
    page = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + HTML
    with RawServer(page) as server:
        result = baseline.run(
            "dvc", "exp", "run", "-S", f"data.source={server.url}/heart.csv", check=False
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "the server sent an HTML page" in output
    assert "Traceback" not in output
    assert contents(baseline) == before  # data/raw/heart.csv included, byte for byte
    status = baseline.dvc("status")  # the truth: download's params changed, nothing else did
    assert "download:" in status and "data.source" in status
    assert "train:" not in status and "explain:" not in status
    baseline.run("git", "checkout", "params.yaml")
    assert "up to date" in baseline.dvc("status")


def make_run(repo: Repo, **train: object) -> str:
    repo.set_params(**train)
    result = repo.run("make", "run", "STAMP=", check=False)  # the test's venv is installed
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_make_run_leaves_the_last_good_outputs_after_a_failure(baseline: Repo):
    before = contents(baseline)
    # A bad value: refused before DVC starts, so no stage's outputs are ever removed.
    output = make_run(baseline, lr=-1)
    assert "error: params.yaml: train.lr must be > 0 (got -1)" in output
    assert "Running stage" not in output
    assert contents(baseline) == before

    # A failure only the stage can see (Lightning refuses the precision): DVC has removed
    # the train stage's outputs by then; make run restores them from the cache.
    output = make_run(baseline, lr=0.01, precision="17-fake")
    assert "Running stage 'train'" in output and "17-fake" in output
    assert "restored its last good outputs with dvc checkout" in output
    assert contents(baseline) == before
    status = baseline.dvc("status")
    assert "train:" in status and "params.yaml" in status and "preprocess:" not in status


def test_check_params_names_the_key(tmp_path: Path, repo: Repo):
    repo.set_params(batch_size=0)
    result = repo.run("topoxai", "check-params", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: params.yaml: train.batch_size must be >= 1 (got 0)"
    repo.set_params(batch_size=64)
    assert repo.run("topoxai", "check-params").stdout.strip() == "params.yaml: ok"
