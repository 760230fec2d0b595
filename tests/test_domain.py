"""The model's domain: which raw rows are unlike the training rows, and why, row by row."""

import numpy as np
import pandas as pd
import pytest

from topoxai.domain import first_flag, row_flags, summary
from topoxai.errors import DataError
from topoxai.features import fit_preprocessor

TRAIN = pd.DataFrame(
    {
        "Age": [40.0, 50.0, 60.0, 70.0],
        "Chol": [200.0, 150.0, 300.0, 250.0],
        "Sex": ["M", "F", "M", "M"],
        "y": [0, 1, 1, 0],
    }
)
SPEC = fit_preprocessor(
    TRAIN, target="y", categorical=["Sex"], source_sha256="x", not_measured=["Chol"]
)


def rows(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"Age": [55.0] * n, "Chol": [220.0] * n, "Sex": ["F"] * n}
    return pd.DataFrame({**base, **columns})


def test_rows_like_the_training_rows_have_no_flags():
    # The bounds themselves are inside: they are training values.
    flags = row_flags(SPEC, rows(Age=[40.0, 70.0, 55.5], Chol=[150.0, 300.0, 151.0]))
    assert flags.tolist() == ["", "", ""]
    assert summary(flags) is None
    assert first_flag(rows(Age=[40.0]), flags[:1]) is None


def test_each_reason_names_column_value_and_the_range_or_rule():
    flags = row_flags(
        SPEC,
        rows(
            Age=[39.0, 55.0, 55.0, 85.5], Chol=[220.0, 0.0, 220.0, -3.0], Sex=["F", "F", "X", "M"]
        ),
    )
    assert flags.tolist() == [
        "Age=39: outside the training range [40, 70]",
        "Chol=0: not measured, scored as 225 (the training median)",
        "Sex='X': a category training never saw (known: F, M)",
        "Age=85.5: outside the training range [40, 70]; "
        "Chol=-3: not measured, scored as 225 (the training median)",
    ]
    # row 2 has a value not measured only: missing_summary notes it
    assert (
        summary(flags)
        == "note: 3 of 4 rows are outside the training data: see the domain_flags column"
    )
    frame = rows(Age=[55.0, 39.0])
    assert first_flag(frame, row_flags(SPEC, frame)) == (
        "row 2: Age=39: outside the training range [40, 70]"
    )


def test_a_column_without_the_rule_is_only_range_checked():
    spec = fit_preprocessor(TRAIN, target="y", categorical=["Sex"], source_sha256="x")
    assert row_flags(spec, rows(Chol=[0.0])).tolist() == [
        "Chol=0: outside the training range [150, 300]"
    ]


def test_one_flagged_row_in_many_costs_no_text_for_the_rest():
    frame = rows(Age=np.full(100_000, 55.0).tolist())
    frame.loc[70_000, "Sex"] = "?"
    flags = row_flags(SPEC, frame)
    assert np.flatnonzero(flags != "").tolist() == [70_000]
    assert (
        summary(flags)
        == "note: 1 of 100000 rows is outside the training data: see the domain_flags column"
    )


def test_a_missing_column_is_named():
    with pytest.raises(DataError, match="missing column Chol"):
        row_flags(SPEC, rows(Age=[50.0]).drop(columns="Chol"))


def test_rows_with_a_value_not_measured_get_one_note_pointing_to_the_measurement():
    from topoxai.domain import missing_summary

    assert missing_summary(SPEC.parse(rows(Chol=[220.0, 230.0]))) is None
    frame = rows(Chol=[0.0, 220.0, None], Sex=["F", None, "M"])
    assert missing_summary(SPEC.parse(frame)) == (
        "note: 3 of 3 rows have a value not measured, scored as domain_flags says; how such "
        "patients' probabilities held at a hospital the model never saw: docs/sites.md"
    )
