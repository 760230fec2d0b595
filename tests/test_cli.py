"""The `topoxai` command's own options: --version, `show` and `results`."""

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from helpers import Repo


def topoxai(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "topoxai.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_version():
    result = topoxai("--version")
    assert result.returncode == 0
    assert result.stdout == f"topoxai {metadata.version('topoxai')}\n"


def test_show_prints_the_card_one_line_per_entry(trained: Repo):
    folder = trained.path / "models"
    result = topoxai("show", "--model", str(folder))
    assert result.returncode == 0, result.stderr
    shown = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    card = json.loads((folder / "model.json").read_text())
    assert shown["model"] == str(folder)
    assert shown["architecture.hidden"] == "16, 16"
    assert shown["feature_names"] == ", ".join(card["feature_names"])
    assert shown["metrics.test.f1"] == str(card["metrics"]["test"]["f1"])
    assert shown["training.best_epoch"] == str(card["training"]["best_epoch"])
    assert shown["data.train_sha256"] == card["data"]["train_sha256"]
    sha = card["files"]["model.safetensors"]["sha256"]
    assert shown["files.model.safetensors.sha256"] == sha
    # Every leaf of the card is one line, plus the folder's.
    assert len(shown) == 1 + _leaves(card)


def _leaves(card: object) -> int:
    return sum(map(_leaves, card.values())) if isinstance(card, dict) else 1


def _tamper(card: dict) -> None:
    card["feature_names"] = card["feature_names"][::-1]


def _swap_weights(card: dict) -> None:
    card["files"]["model.safetensors"]["sha256"] = "0" * 64


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (None, "model.json: not found; is"),
        (_tamper, "preprocess.json: its features do not match the model card's feature_names"),
        (_swap_weights, "model.safetensors: sha256 does not match model.json"),
        ("{", "model.json: not a readable JSON model card"),
    ],
)
def test_show_refuses_a_missing_or_tampered_folder(trained: Repo, tmp_path: Path, edit, message):
    folder = tmp_path / "models"
    if edit is not None:
        shutil.copytree(trained.path / "models", folder)
        card_file = folder / "model.json"
        if isinstance(edit, str):
            card_file.write_text(edit)
        else:
            card = json.loads(card_file.read_text())
            edit(card)
            card_file.write_text(json.dumps(card))
    result = topoxai("show", "--model", str(folder))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr, result.stderr


def test_results_prints_the_cross_validated_estimates(trained: Repo, tmp_path: Path):
    path = trained.path / "reports/evaluate/metrics.json"
    result = topoxai("results", "--metrics", str(path))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(path.read_text())
    lines = result.stdout.splitlines()
    assert lines[0] == "2x3-fold cross-validation on 918 rows: mean (sd) [95% interval]"
    auc = metrics["mlp"]["roc_auc"]
    assert lines[1].split()[:3] == ["mlp", "roc_auc", f"{auc['mean']:.4f}"]
    assert f"[{auc['low']:.4f}, {auc['high']:.4f}]" in lines[1]
    p = metrics["mlp_vs_logreg"]["roc_auc"]["p"]
    assert lines[4].startswith("  mlp - logreg: roc_auc") and f"p={p:.3f}" in lines[4]
    for bad, message in (
        (tmp_path / "missing.json", "not found; run the evaluate stage (dvc repro)"),
        (trained.path / "reports/train/metrics.json", "not the evaluate stage's metrics"),
    ):
        result = topoxai("results", "--metrics", str(bad))
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and message in result.stderr
