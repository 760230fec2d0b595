"""The real `dvc` CLI on a temporary copy of the repository."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, TINY, Repo


def ran(output: str) -> set[str]:
    stages = ("download", "preprocess", "train", "evaluate", "sites", "explain")
    return {s for s in stages if f"Running stage '{s}'" in output}


def test_repro_then_noop_then_experiment(repo: Repo):
    repo.set_params(**TINY)
    out = repo.dvc("repro")
    assert ran(out) == {"download", "preprocess", "train", "evaluate", "sites", "explain"}
    for output in ("data/raw/heart.csv", "data/processed/train.parquet", "reports/data.json",
                   "models/model.safetensors", "models/model.json", "models/preprocess.json",
                   "reports/train/metrics.json", "reports/train/plots/custom/roc.json",
                   "reports/explain/metrics.json", "reports/explain/mapper.png",
                   "reports/evaluate/metrics.json", "reports/evaluate/folds.tsv"):  # fmt: skip
        assert (repo.path / output).is_file(), output
    assert not (repo.path / "lightning_logs").exists() and not (repo.path / "dvclive").exists()
    dvc_yaml_before = (ROOT / "dvc.yaml").read_text()
    assert (repo.path / "dvc.yaml").read_text() == dvc_yaml_before  # DVCLive left it alone

    out = repo.dvc("repro")
    assert ran(out) == set(), out
    assert out.count("didn't change, skipping") == 6
    shown = json.loads(repo.dvc("metrics", "show", "--json"))
    explained = shown[""]["data"]["reports/explain/metrics.json"]["data"]
    assert set(explained) >= {"topology", "mapper", "neural_persistence", "rank_agreement"}
    repo.commit("tiny baseline")
    assert repo.run("git", "status", "--porcelain").stdout == ""

    epochs_before = repo.metrics()["epochs"]
    out = repo.dvc("exp", "run", "-S", "train.max_epochs=1")
    assert ran(out) == {"train", "evaluate", "sites", "explain"}, out
    diff = json.loads(repo.dvc("metrics", "diff", "--json"))
    changed = diff["reports/train/metrics.json"]
    assert changed["epochs"] == {"old": epochs_before, "new": 1, "diff": 1 - epochs_before}

    # A data param reruns preprocess and train, never download.
    params = yaml.safe_load((repo.path / "params.yaml").read_text())
    params["data"]["split"] = [0.6, 0.2, 0.2]
    (repo.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # evaluate and sites read the raw rows themselves, and data.split sizes their
    # validation parts.
    assert ran(repo.dvc("repro")) == {"preprocess", "train", "evaluate", "sites", "explain"}
    assert json.loads((repo.path / "reports/data.json").read_text())["split"]["test"] == 184


def test_bad_param_fails_the_stage_with_one_line(repo: Repo):
    repo.set_params(**TINY, lr=-0.1)
    result = repo.run("dvc", "repro", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: train.lr must be > 0 (got -0.1)" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    # Every stage checks the whole file, so the first one stops the run before any output.
    assert "failed to reproduce 'download'" in result.stderr
    assert not (repo.path / "data/raw/heart.csv").exists() and not (repo.path / "models").exists()


# What another CPU changes, as far as one machine can show it: MKL's GEMM code path (the
# compatible one, not the CPU's own) and torch's plain kernels instead of its AVX2/AVX-512.
OTHER_CPUS = ({"MKL_CBWR": "COMPATIBLE"}, {"ATEN_CPU_CAPABILITY": "default"})


def out_hashes(repo: Repo) -> dict[str, str]:
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s["outs"]}


@pytest.mark.slow
def test_default_pipeline_meets_targets_and_reproduces_the_commit(repo: Repo):
    """A fresh clone's `make run` with the live params reproduces the committed run: on any
    CPU within the metrics' tolerance (make verify) and byte for byte where no network is
    trained; on this machine byte for byte, rerun after rerun."""
    shutil.copy(ROOT / "params.yaml", repo.path / "params.yaml")  # the live params locked it
    repo.commit("live params")
    made = repo.run("make", "run", "STAMP=").stdout
    metrics = repo.metrics()
    assert metrics["test"]["roc_auc"] >= 0.93 and metrics["test"]["f1"] >= 0.87
    assert made.splitlines()[-1].startswith("reproduced: "), made  # make run's last word
    committed = out_hashes(Repo(ROOT, repo.env))
    here = out_hashes(repo)
    for path in ("data/raw/heart.csv", "data/processed"):
        assert here[path] == committed[path], path
    assert repo.run("make", "verify", "STAMP=").stdout.startswith("reproduced: ")
    repo.dvc("repro", "-f")
    assert out_hashes(repo) == here  # the same machine: the same bytes
    for env in OTHER_CPUS:
        other = Repo(repo.path, {**repo.env, **env})
        other.dvc("repro", "-f")
        verdict = repo.run("make", "verify", "STAMP=").stdout
        assert verdict.startswith("reproduced: "), (env, verdict)
        print(env, verdict)  # which hashes this CPU's paths moved (pytest -rP shows it)
        # explain, given that model, writes the same bytes on the machine's own path.
        explained = out_hashes(repo)["reports/explain"]
        repo.dvc("repro", "-f", "-s", "explain")
        assert out_hashes(repo)["reports/explain"] == explained, env


def test_outputs_do_not_depend_on_the_cpus_code_paths(baseline: Repo):
    """From the same inputs, preprocess and explain write the same bytes on MKL's compatible
    path and with torch's plain (no SIMD) kernels: dvc.lock does not change."""
    lock = (baseline.path / "dvc.lock").read_text()
    for env in OTHER_CPUS:
        other = Repo(baseline.path, {**baseline.env, **env})
        for stage in ("preprocess", "explain"):
            assert f"Running stage '{stage}'" in other.dvc("repro", "-f", "-s", stage)
        assert (baseline.path / "dvc.lock").read_text() == lock, env
    assert baseline.run("git", "status", "--porcelain").stdout == ""


def run_train_stage(
    trained: Repo, tmp_path: Path, model: Path, **train: object
) -> subprocess.CompletedProcess[str]:
    """The train stage on the tiny pipeline's data with `train` overrides, live into tmp/out."""
    params = yaml.safe_load((trained.path / "params.yaml").read_text())
    params["train"].update(train)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(ROOT / "src/stages/train.py"), "--params", str(tmp_path / "params.yaml"),
         "--data", str(trained.path / "data/processed"),
         "--model", str(model), "--live", str(tmp_path / "out/live")],
        cwd=trained.path, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_train_stage_failing_after_setup_leaves_no_partial_outputs(trained: Repo, tmp_path):
    """A Fabric option typo fails the stage with one line and nothing written."""
    result = run_train_stage(trained, tmp_path, tmp_path / "out/models", precision="17-fake")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: train.accelerator, train.devices")
    assert "17-fake" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_train_stage_failing_after_training_leaves_no_partial_outputs(trained: Repo, tmp_path):
    """Saving the model fails once DVCLive has written its folder: that folder must not appear."""
    (tmp_path / "not-a-folder").write_text("")
    result = run_train_stage(trained, tmp_path, tmp_path / "not-a-folder/models", max_epochs=2)
    assert result.returncode == 1 and "epoch   1" in result.stdout  # it did train
    assert "GPU available" not in result.stdout + result.stderr  # Lightning's device inventory
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: [Errno") and "not-a-folder" in last  # the path to fix
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "out").iterdir()) == []  # no live folder, no temporary sibling
