"""The everyday DVC workflow on this project: experiments, comparisons, plots, remotes."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT, Repo
from sklearn.metrics import f1_score

from topoxai.artifacts import load_model
from topoxai.data import read_split


def experiments(repo: Repo) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: its data (params, metrics)}."""
    show = json.loads(repo.dvc("exp", "show", "--json"))
    return {e["name"]: e["revs"][0]["data"] for rev in show for e in rev.get("experiments") or []}


def test_experiments_compare_and_apply(baseline: Repo):
    repo = baseline
    # -S of a value the file already has: nothing reruns and params.yaml keeps its bytes.
    before = (repo.path / "params.yaml").read_bytes()
    assert "Running stage" not in repo.dvc("exp", "run", "-S", "train.lr=0.01")
    assert (repo.path / "params.yaml").read_bytes() == before
    out = repo.dvc("exp", "run", "-n", "folds", "-S", "evaluate.folds=2")
    assert "Running stage 'evaluate'" in out
    assert [line for line in out.splitlines() if line.startswith("Running stage")] == [
        "Running stage 'evaluate':"
    ]
    # The cross-validated means and intervals are what `dvc metrics diff` shows.
    cv = json.loads(repo.dvc("metrics", "diff", "--json"))["reports/evaluate/metrics.json"]
    assert {"mlp.roc_auc.mean", "mlp.roc_auc.low", "mlp.roc_auc.high", "folds"} <= set(cv)
    assert (cv["folds"]["old"], cv["folds"]["new"]) == (3, 2)
    repo.run("git", "checkout", "params.yaml")
    repo.dvc("checkout")

    out = repo.dvc("exp", "run", "-n", "wide", "-S", "train.lr=0.05", "-S", "train.hidden=[32,32]")
    assert "Running stage 'train'" in out and "Running stage 'preprocess'" not in out
    assert "Running stage 'evaluate'" in out

    wide = experiments(repo)["wide"]
    assert wide["params"]["params.yaml"]["data"]["train"]["hidden"] == [32, 32]
    assert "test" in wide["metrics"]["reports/train/metrics.json"]["data"]

    params = json.loads(repo.dvc("params", "diff", "--json"))["params.yaml"]
    assert (params["train.lr"]["old"], params["train.lr"]["new"]) == (0.01, 0.05)
    metrics = json.loads(repo.dvc("metrics", "diff", "--json"))["reports/train/metrics.json"]
    assert "test.f1" in metrics or "test.roc_auc" in metrics  # the tiny net changes them

    table = repo.dvc("exp", "diff", "HEAD", "wide", "--md")
    assert table.startswith("| Path") and "train.hidden" in table and "test.roc_auc" in table

    # `make compare`: the headline metrics and only the params that differ, ~200 columns less.
    # STAMP= : the test's venv is already installed; the copy has no .venv of its own.
    rows = repo.run("make", "compare", "STAMP=").stdout.splitlines()
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    cv = ["mlp.roc_auc.mean", "mlp.roc_auc.low", "mlp.roc_auc.high"]
    paired = ["mlp_vs_logreg.roc_auc.diff", "mlp_vs_logreg.roc_auc.p"]
    headline = [*cv, *paired, "best_epoch", "best.val_loss", "test.roc_auc"]
    assert header[:9] == ["Experiment", *headline]
    assert sorted(header[9:]) == ["evaluate.folds", "train.hidden", "train.lr"]
    assert any("[wide]" in row for row in rows[2:]) and any("[folds]" in row for row in rows[2:])
    # The experiments ranked by the cross-validated ROC-AUC, best first (below the
    # workspace's and the commit's rows, which DVC keeps on top).
    cells = [row.split("|")[2].strip() for row in rows[2:] if "── " in row]
    means = [float(cell) for cell in cells if cell != "-"]
    assert len(means) == 3
    assert means == sorted(means, reverse=True), "\n".join(rows)

    repo.run("git", "checkout", "params.yaml")
    repo.dvc("checkout")
    repo.dvc("exp", "apply", "wide")
    assert yaml.safe_load((repo.path / "params.yaml").read_text())["train"]["hidden"] == [32, 32]
    repo.dvc("exp", "branch", "wide", "wide-branch")
    assert "wide-branch" in repo.run("git", "branch").stdout


def test_lightning_device_knobs_pass_through_dvc(baseline: Repo):
    """The knobs a GPU user changes go from -S to lightning.Fabric unchanged."""
    out = baseline.dvc(
        "exp", "run", "-n", "bf16", "-S", "train.accelerator=cpu", "-S", "train.devices=1",
        "-S", "train.precision=bf16-mixed", "-S", "train.max_epochs=2",
    )  # fmt: skip
    assert "Running stage 'train'" in out
    card = json.loads((baseline.path / "models/model.json").read_text())
    assert card["training"]["epochs"] == 2
    params = experiments(baseline)["bf16"]["params"]["params.yaml"]["data"]["train"]
    assert (params["accelerator"], params["precision"]) == ("cpu", "bf16-mixed")


def test_ddp_on_two_cpu_processes_writes_once_from_rank_zero(baseline: Repo):
    """`strategy: ddp` re-runs the stage script per device; only rank 0 may write outputs."""
    out = baseline.dvc(
        "exp", "run", "-n", "ddp", "-S", "train.devices=2", "-S", "train.strategy=ddp",
        "-S", "train.max_epochs=3", "-S", "train.patience=3", "train",
    )  # fmt: skip
    assert "Running stage 'train'" in out
    assert [out.count(f"epoch {e:3d} ") for e in range(3)] == [1, 1, 1]  # rank 0 prints
    live, models = baseline.path / "reports/train", baseline.path / "models"
    summary = json.loads((live / "metrics.json").read_text())
    assert summary["epochs"] == 3 and summary["step"] == 2
    for folder in (baseline.path / "reports", models):  # no temporary siblings left behind
        assert not [
            p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".gitignore"
        ]
    assert not (baseline.path / "lightning_logs").exists()
    # The train stage's outputs are what dvc.lock records (evaluate and explain, which
    # `-s train` did not run, are out of date).
    assert "train:" not in baseline.dvc("status").splitlines()

    # Known answer: every rank scored the whole validation split, so the values logged for
    # the best epoch are the saved model's on that split (macro F1 of shards would differ).
    model = load_model(models)
    x, y, _ = read_split(baseline.path / "data/processed/val.parquet", model.spec)
    with torch.no_grad():
        logits = model.net(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    f1 = f1_score(y, logits.argmax(dim=1).numpy(), average="macro")
    best = summary["best_epoch"]
    for name, expected in [("loss", float(loss)), ("f1", f1)]:
        rows = (live / f"plots/metrics/val/{name}.tsv").read_text().splitlines()[1:]
        assert float(rows[best].split()[1]) == pytest.approx(expected, abs=2e-6), name
        # best.val_*: the kept epoch's values, what `make compare` ranks by
        assert summary["best"][f"val_{name}"] == pytest.approx(expected, abs=2e-6), name


def _untouched(repo: Repo) -> None:
    assert repo.run("git", "status", "--porcelain").stdout == ""
    assert "up to date" in repo.dvc("status")


def test_bad_overrides_leave_the_workspace_as_it_was(baseline: Repo):
    repo = baseline
    typo = repo.run("dvc", "exp", "run", "-S", "train.lrr=0.1", check=False)
    assert typo.returncode != 0 and "Key 'lrr' is not in struct" in typo.stderr + typo.stdout
    _untouched(repo)
    for override, message in [
        ("train.batch_size=abc", "train.batch_size must be an integer (got 'abc')"),
        ("train.lr=-1", "train.lr must be > 0 (got -1)"),
        ("+train.lrr=0.1", "unknown key train.lrr"),
    ]:
        result = repo.run("dvc", "exp", "run", "--temp", "-S", override, check=False)
        assert result.returncode != 0
        assert f"error: params.yaml: {message}" in result.stdout + result.stderr
        _untouched(repo)


def test_plots_show_and_diff_render_each_plot_once(baseline: Repo):
    repo = baseline
    repo.dvc("exp", "run", "-S", "train.max_epochs=2")
    repo.dvc("plots", "diff", "HEAD", "-o", "out", "--html-template", "docs/plots_template.html")
    page = (repo.path / "out/index.html").read_text()
    declared = yaml.safe_load((repo.path / "dvc.yaml").read_text())["plots"]
    charts = [next(iter(p.values())) for p in declared if isinstance(p, dict)]
    images = [p for p in declared if isinstance(p, str)]
    assert len(charts) >= 5 and len(images) == 5
    assert [page.count(f'"text": "{c["title"]}"') for c in charts] == [1] * len(charts)
    assert page.count("vegaEmbed(") == len(charts)  # no duplicates from DVCLive's own config
    # DVC copies each image beside the page, named after its path.
    assert all(i.replace("/", "_") in page for i in images)
    assert "cdn.jsdelivr" not in page and 'src="vendor/vega.min.js"' in page
    for label in ("Epoch", "False positive rate", "Recall", "True label"):
        assert f'"title": "{label}"' in page
    # Both revisions are in the page: the loss curve data comes from HEAD and the workspace.
    assert page.count('"rev": "HEAD"') > 0 and page.count('"rev": "workspace"') > 0


def test_push_pull_and_checkout_restore_data_and_model(baseline: Repo, tmp_path: Path):
    repo = baseline
    remote = tmp_path / "remote"
    repo.dvc("remote", "add", "-d", "local", str(remote))
    repo.commit("remote")
    repo.dvc("push")
    first = (repo.path / "models/model.json").read_text()
    repo.set_params(max_epochs=2)
    repo.dvc("repro")
    repo.commit("two epochs")
    repo.dvc("push")
    second = (repo.path / "models/model.json").read_text()
    assert first != second

    clone = Repo.clone(repo, tmp_path / "clone")
    clone.dvc("pull")
    assert "up to date" in clone.dvc("status")
    assert "Running stage" not in clone.dvc("repro")
    assert (clone.path / "models/model.json").read_text() == second
    # Where the cache holds both versions, switching commits is git checkout + dvc checkout;
    # a clone that pulled only the latest one pulls the older one from the remote.
    repo.run("git", "checkout", "-q", "HEAD~1")
    repo.dvc("checkout")
    assert (repo.path / "models/model.json").read_text() == first
    assert "up to date" in repo.dvc("status")
    clone.run("git", "checkout", "-q", "HEAD~1")
    clone.dvc("pull")
    assert (clone.path / "models/model.json").read_text() == first
    assert "up to date" in clone.dvc("status")


def test_artifacts_get_fetches_a_model_version_from_the_remote(baseline: Repo, tmp_path: Path):
    """dvc.yaml's model artifact, two versions tagged as GTO tags them, fetched by name."""
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    assert artifacts["heart-disease-mlp"]["path"] == "models"
    repo = baseline
    repo.dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))
    repo.commit("remote")
    repo.dvc("push")
    repo.run("git", "tag", "-a", "heart-disease-mlp@v1.0.0", "-m", "first")
    commit = repo.run("git", "rev-parse", "HEAD").stdout.strip()
    first = files(repo.path / "models")
    repo.set_params(max_epochs=2)
    repo.dvc("repro", "train")
    repo.commit("two epochs")
    repo.dvc("push")
    repo.run("git", "tag", "-a", "heart-disease-mlp@v1.1.0", "-m", "second")
    second = files(repo.path / "models")
    assert first != second

    # A bare clone has the history and tags but no DVC cache: the model can only come from
    # the remote, as on a machine that has nothing but the git URL.
    origin = tmp_path / "origin.git"
    repo.run("git", "clone", "-q", "--bare", str(repo.path), str(origin))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def dvc(*args: str) -> None:
        result = subprocess.run(
            ["dvc", *args], cwd=elsewhere, env=repo.env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr

    dvc("artifacts", "get", str(origin), "heart-disease-mlp", "-o", "latest")
    dvc("artifacts", "get", str(origin), "heart-disease-mlp", "--rev", "v1.0.0", "-o", "v1")
    # `dvc artifacts get --rev` takes a version; `dvc get --rev` any commit, tagged or not.
    dvc("get", str(origin), "models", "--rev", commit, "-o", "at-commit")
    assert files(elsewhere / "latest") == second  # the greatest version
    assert files(elsewhere / "v1") == first
    assert files(elsewhere / "at-commit") == first


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_queued_grid_runs_four_experiments(baseline: Repo):
    repo = baseline
    start = time.perf_counter()
    # STAMP= : the test's venv is already installed; the copy has no .venv of its own.
    repo.run("make", "grid", "STAMP=")
    seconds = time.perf_counter() - start
    runs = list(experiments(repo).values())
    grid = {
        (
            r["params"]["params.yaml"]["data"]["train"]["lr"],
            r["params"]["params.yaml"]["data"]["train"]["optimizer"],
        )
        for r in runs
    }
    assert grid == {(0.001, "sgd"), (0.001, "adam"), (0.01, "sgd"), (0.01, "adam")}
    assert all("test" in r["metrics"]["reports/train/metrics.json"]["data"] for r in runs)
    assert (
        "No worker" in repo.dvc("queue", "status")
        or "running" not in repo.dvc("queue", "status").lower()
    )
    print(f"4-run grid with -j 2: {seconds:.1f} s")


VEGA = ROOT / ".cache/vega/node_modules"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
@pytest.mark.skipif(not VEGA.is_dir(), reason="run `make plots` once to install Vega")
def test_plots_render_offline_in_headless_chromium(baseline: Repo, tmp_path: Path):
    """`make plots` gives a page that draws all five plots with no network at all."""
    repo = baseline
    repo.dvc("exp", "run", "-S", "train.max_epochs=2")
    repo.run("make", "plots", "STAMP=", f"VEGA={VEGA}")
    page = repo.path / "dvc_plots/index.html"
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    charts = [
        p
        for p in yaml.safe_load((repo.path / "dvc.yaml").read_text())["plots"]
        if isinstance(p, dict)
    ]
    assert dom.count("<canvas") == len(charts)  # each Vega view drew itself
