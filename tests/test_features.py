"""The fitted preprocessing: statistics from train rows, one spelling per category, JSON."""

import json

import numpy as np
import pandas as pd
import pytest

from topoxai.errors import DataError
from topoxai.features import (
    SPELLINGS_CACHED,
    Preprocessor,
    categorical_block,
    categorical_codes,
    fit_preprocessor,
)


def test_fit_preprocessor_learns_train_statistics_and_transform_standardizes(frame):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    assert spec.numeric == ["Age", "Chol"]
    assert spec.means == pytest.approx([55.0, 187.5])
    assert spec.scales == pytest.approx([np.std([40, 50, 60, 70]), np.std([200, 0, 300, 250])])
    assert spec.feature_names == ["Age", "Chol", "Sex=F", "Sex=M"]
    x = spec.transform(frame)
    assert x[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-12)
    assert x[:, :2].std(axis=0) == pytest.approx([1, 1])
    assert x[:, 2:].tolist() == [[0, 1], [1, 0], [0, 1], [0, 1]]


def test_unknown_category_becomes_all_zeros(frame):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    new = frame.head(1).assign(Sex="X")
    assert spec.transform(new)[0, 2:].tolist() == [0, 0]


def test_categories_take_one_spelling():
    spelled = ["0.0", "0", " 0 ", "+0", "-0", "1e3", "1.50", " M ", "nan", "inf", "007"]
    canonical = ["0", "0", "0", "0", "0", "1000", "1.5", "M", "nan", "inf", "7"]
    long_code = "9007199254740993"  # 2**53 + 1: not a float, so it keeps its own digits
    frame = pd.DataFrame({"c": [*spelled, long_code]})
    assert categorical_block(frame, "c").tolist() == [*canonical, long_code]
    floats = pd.DataFrame({"c": [0.0, 1.0, 0.1]})  # rows passed to predict() from Python
    assert categorical_block(floats, "c").tolist() == ["0", "1", "0.1"]


def test_spellings_are_the_same_looked_up_or_computed():
    """Columns of few distinct texts have their spellings cached: a row at a time (as a
    server scores), each is spelled as within a column too varied to be cached."""
    spelled = ["0.0", " 0 ", "+0", "1e3", "1.50", " M ", "nan", "inf", "", "  ", "007"]
    varied = [*spelled, *(f"x{i}" for i in range(SPELLINGS_CACHED))]
    assert len(varied) > SPELLINGS_CACHED
    together = categorical_codes(pd.DataFrame({"c": varied}), "c", missing_ok=True)
    for i, value in enumerate(spelled):
        codes, text = categorical_codes(pd.DataFrame({"c": [value]}), "c", missing_ok=True)
        expected = together[1][together[0][i]] if together[0][i] >= 0 else None
        assert (text[codes[0]] if codes[0] >= 0 else None) == expected, value
        assert not text.flags.writeable  # shared by every later call


def test_category_columns_read_as_their_text():
    """read_table gives categorical columns pandas' category dtype: same spellings, same
    one-hot, the same empty-cell error, as with one string per cell."""
    text = pd.DataFrame(
        {"c": ["0.0", " M ", "F", "1.50", "F", "M"], "n": [1.0] * 6, "y": [0, 1] * 3}
    )
    coded = text.astype({"c": "category"})
    assert categorical_block(coded, "c").tolist() == categorical_block(text, "c").tolist()
    spec = fit_preprocessor(text, target="y", categorical=["c"], source_sha256="x")
    assert fit_preprocessor(coded, target="y", categorical=["c"], source_sha256="x") == spec
    new = pd.DataFrame({"c": ["F", "X", "1.5"], "n": [1.0] * 3}).astype({"c": "category"})
    assert spec.transform(new)[:, 1:].tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
    with pytest.raises(DataError, match=r"^column c, row 2: an empty value$"):
        categorical_block(coded.assign(c=coded["c"].where(coded.index != 1)), "c")


def test_float32_features_are_the_float64_ones_rounded(frame):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    x32 = spec.transform(frame, np.float32)
    assert x32.dtype == np.float32
    assert np.array_equal(x32, spec.transform(frame).astype(np.float32))


def test_float_spelled_codes_are_the_integer_categories(frame):
    spec = fit_preprocessor(frame.assign(Code=["0", "0.0", " 1 ", "1.50"]), target="y",
               categorical=["Sex", "Code"], source_sha256="x")  # fmt: skip
    assert spec.categories[1] == ["0", "1", "1.5"]
    new = frame.assign(Code=["+0", "1.0", "1.5", "2"])
    assert spec.transform(new)[:, -3:].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]


def test_constant_column_keeps_scale_one(frame):
    spec = fit_preprocessor(
        frame.assign(Age=5.0), target="y", categorical=["Sex"], source_sha256="x"
    )
    assert spec.scales[0] == 1.0
    assert spec.transform(frame.assign(Age=5.0))[:, 0].tolist() == [0, 0, 0, 0]


def test_spec_round_trips_through_json(frame):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="abc")
    text = spec.to_json()
    assert json.loads(text)["format_version"] == 3
    assert Preprocessor.from_json(text) == spec


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "column Age, row 2: 'abc' is not a number"),
        ("inf", "column Age, row 2: 'inf' is not a number"),
    ],
)
def test_bad_numeric_cell_is_named(frame, value, message):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    bad = frame.astype({"Age": object})
    bad.loc[1, "Age"] = value
    with pytest.raises(DataError, match=message):
        spec.transform(bad)


def test_missing_column_is_named(frame):
    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    with pytest.raises(DataError, match="missing column Chol"):
        spec.transform(frame.drop(columns="Chol"))


@pytest.mark.parametrize(
    ("labels", "positive_class", "classes"),
    [
        ([1, 0, 1], None, [0, 1]),  # a 0/1 target: 1 by default
        ([1.0, 0.0, 1.0], None, [0.0, 1.0]),
        (["1", "0", "1"], 1, ["0", "1"]),  # YAML's 1 is the CSV's "1"
        (["disease", "healthy", "disease"], "healthy", ["disease", "healthy"]),
        (["healthy", "disease", "healthy"], "disease", ["healthy", "disease"]),
        ([2, 1, 2], 1, [2, 1]),  # not sorted: the named class is the positive one
    ],
)
def test_the_positive_class_is_the_named_one_and_last(labels, positive_class, classes):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": labels})
    spec = fit_preprocessor(
        frame, target="y", categorical=[], source_sha256="x", positive_class=positive_class
    )
    assert spec.classes == classes
    assert spec.positive_class == classes[1]
    assert spec.encode_target(frame).tolist() == [int(v == classes[1]) for v in labels]


@pytest.mark.parametrize(
    ("labels", "positive_class", "message"),
    [
        (
            ["healthy", "disease"],
            None,
            "column y has the labels 'disease', 'healthy': name the one whose probability "
            "to predict in data.positive_class",
        ),
        ([1, 2], None, "column y has the labels 1, 2: name the one"),
        (
            ["healthy", "disease"],
            "sick",
            "data.positive_class 'sick' is not a label of column y (labels: 'disease', 'healthy')",
        ),
        ([0, 1], 2, "data.positive_class 2 is not a label of column y (labels: 0, 1)"),
    ],
)
def test_a_positive_class_that_is_not_clear_is_refused(labels, positive_class, message):
    frame = pd.DataFrame({"a": [1.0, 2.0], "y": labels})
    with pytest.raises(DataError) as err:
        fit_preprocessor(
            frame, target="y", categorical=[], source_sha256="x", positive_class=positive_class
        )
    assert str(err.value).startswith(message)


def test_the_training_rows_domain_is_recorded(frame):
    spec = fit_preprocessor(
        frame, target="y", categorical=["Sex"], source_sha256="x", not_measured=["Chol"]
    )
    # Chol 0 is "not measured": no part of the range, the mean or the median
    assert (spec.lows, spec.highs) == ([40.0, 200.0], [70.0, 300.0])
    assert spec.not_measured == ["Chol"]
    assert spec.means == pytest.approx([55.0, 250.0])
    assert spec.medians == [55.0, 250.0]
    assert Preprocessor.from_json(spec.to_json()) == spec


def test_a_spec_from_before_the_domain_says_to_rerun(frame):
    text = json.loads(
        fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x").to_json()
    )
    text["format_version"] = 2
    with pytest.raises(DataError, match=r"format_version must be 3 .*rerun the pipeline"):
        Preprocessor.from_json(json.dumps(text))


def test_a_column_empty_in_every_row_is_filled_in_not_a_crash(frame, tmp_path):
    """read_table gives an all-empty categorical column no categories at all: the one row a
    clinician sends without Sex must still be scored as the spec fills it in."""
    from topoxai.data import read_table
    from topoxai.domain import row_flags

    spec = fit_preprocessor(frame, target="y", categorical=["Sex"], source_sha256="x")
    (tmp_path / "one.csv").write_text("Age,Chol,Sex\n50,210,\n")
    row = read_table(tmp_path / "one.csv", categorical=["Sex"])
    assert spec.modes == ["M"]
    assert spec.transform(row)[0, 2:].tolist() == [0, 1]  # Sex=F, Sex=M: the training mode
    assert row_flags(spec, row).tolist() == [
        "Sex empty: not measured, scored as 'M' (the training rows' most frequent)"
    ]
