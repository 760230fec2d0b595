"""`topoxai verify`: which differences between two runs another CPU explains, and which not."""

import copy
import subprocess
import sys
from typing import Any

import pytest
import yaml
from helpers import ROOT, Repo

from topoxai.verify import TRAINING_STAGES, compare_metrics, lock_changes, tolerance


def out(path: str, md5: str) -> dict[str, str]:
    return {"path": path, "hash": "md5", "md5": md5}


def stage(deps: list[dict[str, str]], outs: list[dict[str, str]], **params: object) -> dict:
    return {"cmd": "python x.py", "deps": deps, "params": {"params.yaml": params}, "outs": outs}


# download -> preprocess -> train -> explain, as dvc.lock records them
LOCK: dict[str, Any] = {
    "schema": "2.0",
    "stages": {
        "download": stage([out("src/d.py", "d0")], [out("data/raw/heart.csv", "r0")]),
        "preprocess": stage(
            [out("data/raw/heart.csv", "r0"), out("src/p.py", "p0")], [out("data/processed", "x0")]
        ),
        "train": stage(
            [out("data/processed", "x0"), out("src/t.py", "t0")],
            [out("models", "m0"), out("reports/train", "rt0")],
            **{"train.lr": 0.001},
        ),
        "explain": stage(
            [out("models", "m0"), out("data/processed", "x0")], [out("reports/explain", "e0")]
        ),
    },
}


def changed(*edits: tuple[str, str, int, str]) -> dict[str, Any]:
    """LOCK with entries (stage, "deps"/"outs", index, new md5) replaced."""
    lock = copy.deepcopy(LOCK)
    for name, kind, index, md5 in edits:
        lock["stages"][name][kind][index]["md5"] = md5
    return lock


def test_the_same_lock_has_no_differences():
    assert lock_changes(LOCK, copy.deepcopy(LOCK)) == ([], [])


def test_new_weights_may_move_what_is_computed_from_them():
    other_cpu = changed(
        ("train", "outs", 0, "m1"),
        ("train", "outs", 1, "rt1"),
        ("explain", "deps", 0, "m1"),
        ("explain", "outs", 0, "e1"),
    )
    assert lock_changes(LOCK, other_cpu) == (["models", "reports/explain", "reports/train"], [])


def test_a_stage_that_trains_nothing_must_keep_its_bytes():
    moved, problems = lock_changes(LOCK, changed(("explain", "outs", 0, "e1")))
    assert moved == []
    assert problems == ["reports/explain: bytes differ, though explain trains no network"]
    # Downstream of preprocess, train's move is allowed; preprocess's own is the problem.
    moved, problems = lock_changes(
        LOCK,
        changed(("preprocess", "outs", 0, "x1"), ("train", "deps", 0, "x1"),
                ("explain", "deps", 1, "x1"), ("train", "outs", 0, "m1")),
    )  # fmt: skip
    assert moved == ["models"]
    assert problems == ["data/processed: bytes differ, though preprocess trains no network"]


def test_code_params_and_commands_are_not_the_cpus_doing():
    lock = changed(("train", "deps", 1, "t1"))
    lock["stages"]["train"]["params"]["params.yaml"]["train.lr"] = 0.01
    lock["stages"]["download"]["cmd"] = "python y.py"
    assert lock_changes(LOCK, lock)[1] == [
        "stage download: its command changed",
        "param train.lr: 0.001 -> 0.01",
        "src/t.py: changed (a dependency of train)",
    ]
    # A dependency that differs from what its own stage wrote: not a move another CPU makes.
    assert lock_changes(LOCK, changed(("explain", "deps", 0, "m1")))[1] == [
        "models: changed (a dependency of explain)"
    ]


def test_an_output_or_dependency_in_one_run_only_is_named():
    lock = copy.deepcopy(LOCK)
    lock["stages"]["train"]["outs"].append(out("reports/extra", "z0"))
    del lock["stages"]["train"]["deps"][1]  # src/t.py
    assert lock_changes(LOCK, lock)[1] == [
        "reports/extra: in one run's outs of train only",
        "src/t.py: in one run's deps of train only",
    ]


def test_a_file_inside_a_moved_folder_is_the_folders_move():
    """A dependency on one file of another stage's folder output moves with that folder."""
    before = copy.deepcopy(LOCK)
    before["stages"]["explain"]["deps"].append(out("reports/train/metrics.json", "f0"))
    after = changed(("train", "outs", 0, "m1"), ("train", "outs", 1, "rt1"),
                    ("explain", "deps", 0, "m1"), ("explain", "outs", 0, "e1"))  # fmt: skip
    after["stages"]["explain"]["deps"].append(out("reports/train/metrics.json", "f1"))
    assert lock_changes(before, after) == (["models", "reports/explain", "reports/train"], [])


def test_a_param_of_another_type_is_a_change():
    lock = copy.deepcopy(LOCK)
    lock["stages"]["train"]["params"]["params.yaml"]["train.lr"] = 1
    before = copy.deepcopy(LOCK)
    before["stages"]["train"]["params"]["params.yaml"]["train.lr"] = 1.0
    assert lock_changes(before, lock)[1] == ["param train.lr: 1.0 -> 1"]


def test_training_stages_are_the_ones_that_fit_networks():
    """Every stage that imports the training loop is listed, and no other: a new training
    stage must be, or verify would call its new weights a failure."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    fitting = {name for name, s in pipeline.items() if "src/topoxai/classifier.py" in s["deps"]}
    assert set(TRAINING_STAGES) == fitting


def test_metrics_agree_within_their_tolerance():
    expected = {"m.json": {"test": {"roc_auc": 0.9444, "z": 199.5346}, "epochs": 12, "k": "a"}}
    atol = tolerance("test.roc_auc")[0]
    same = {
        "m.json": {"test": {"roc_auc": 0.9444 + atol / 2, "z": 199.5348}, "epochs": 12, "k": "a"}
    }
    assert compare_metrics(expected, same) == (4, [])
    moved = {"m.json": {"test": {"roc_auc": 0.9444 + 2 * atol, "z": 199.6}, "epochs": 11, "x": 1}}
    count, problems = compare_metrics(expected, moved)
    assert count == 5
    assert [p.split(":")[0] for p in problems] == [
        "m.json epochs", "m.json k", "m.json test.roc_auc", "m.json test.z", "m.json x",
    ]  # fmt: skip
    assert problems[0] == "m.json epochs: 12 -> 11 (must be equal)"
    assert problems[1] == "m.json k: missing" and problems[4] == "m.json x: new"
    assert compare_metrics(expected, {}) == (0, ["m.json: missing"])


def verify(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return repo.run(sys.executable, "-m", "topoxai.cli", "verify", *args, check=False)


def record(repo: Repo) -> None:
    result = verify(repo, "--record")
    assert result.returncode == 0, result.stderr
    repo.commit("expected metrics")


def test_a_rerun_on_the_same_machine_reproduces_every_hash(baseline: Repo):
    record(baseline)
    baseline.dvc("repro", "-f", "-s", "train")
    result = verify(baseline)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.startswith("reproduced: ")
        and "metrics within tolerance of HEAD" in result.stdout
    )
    assert result.stdout.endswith("; every output hash as in HEAD\n")


def test_a_param_that_moves_metrics_fails_and_is_named(baseline: Repo):
    record(baseline)
    lr = yaml.safe_load((baseline.path / "params.yaml").read_text())["train"]["lr"]
    baseline.dvc("exp", "run", "-S", "train.lr=0.05")
    result = verify(baseline)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("not reproduced: ") and lines[0].endswith(
        " difference(s) from HEAD:"
    )
    assert f"  param train.lr: {lr!r} -> 0.05" in lines
    assert any(line.startswith("  reports/train/metrics.json test.roc_auc: ") for line in lines)


def test_changed_code_is_no_reproduction_even_with_the_same_outputs(baseline: Repo):
    record(baseline)
    code = baseline.path / "src/topoxai/preprocess.py"
    code.write_text(code.read_text() + "\n# a code change that writes the same bytes\n")
    assert "Running stage 'preprocess'" in baseline.dvc("repro")
    result = verify(baseline)
    assert result.returncode == 1
    assert result.stdout.splitlines()[1:] == [
        "  src/topoxai/preprocess.py: changed (a dependency of preprocess)"
    ]


def test_verify_refuses_a_workspace_out_of_step_with_its_lock(baseline: Repo):
    record(baseline)
    (baseline.path / "reports/train/metrics.json").write_text("{}")
    result = verify(baseline)
    assert result.returncode == 1
    assert result.stderr == (
        "error: the workspace is not what dvc.lock records (`dvc status` lists what changed): "
        "run `make run` (dvc repro) first\n"
    )


def test_expected_metrics_from_another_lock_are_refused(baseline: Repo):
    record(baseline)
    baseline.dvc("exp", "run", "-S", "train.max_epochs=1", "train")
    baseline.commit("a new lock without recording its metrics")
    result = verify(baseline)
    assert result.returncode == 1
    assert result.stderr == (
        "error: HEAD:metrics.expected.json was not recorded from HEAD's dvc.lock (reports/train "
        "differ): where that lock was made, run `topoxai verify --record` and commit both\n"
    )


def test_the_committed_expected_metrics_belong_to_the_committed_lock():
    """What a fresh clone's `make verify` compares with is what dvc.lock was made with."""
    import json

    expected = json.loads((ROOT / "metrics.expected.json").read_text())
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    outputs = {o["path"]: o["md5"] for s in lock["stages"].values() for o in s["outs"]}
    assert expected["lock"] and all(outputs[p] == md5 for p, md5 in expected["lock"].items())
    declared = yaml.safe_load((ROOT / "dvc.yaml").read_text())["metrics"]
    assert set(declared) <= set(expected["metrics"])


@pytest.mark.parametrize("rev", ["no-such-rev"])
def test_an_unknown_revision_is_one_line(baseline: Repo, rev: str):
    record(baseline)
    result = verify(baseline, "--rev", rev)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {rev}:dvc.lock: cannot read it from git (")
    assert len(result.stderr.splitlines()) == 1


def test_a_param_read_in_one_run_only_is_a_change():
    """A stage that starts or stops reading a param differs, even when the param is null."""
    read = {
        "stages": {"sites": {"cmd": "x", "params": {"params.yaml": {"data.site": None, "seed": 7}}}}
    }
    unread = {"stages": {"sites": {"cmd": "x", "params": {"params.yaml": {}}}}}
    assert lock_changes(read, unread) == (
        [],
        ["param data.site: None -> (not read)", "param seed: 7 -> (not read)"],
    )
    assert lock_changes(unread, read)[1] == [
        "param data.site: (not read) -> None",
        "param seed: (not read) -> 7",
    ]
