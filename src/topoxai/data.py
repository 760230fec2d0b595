"""The research code's data steps: read the raw CSV, drop impossible rows, split."""

import contextlib
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from topoxai.errors import DataError
from topoxai.features import (
    Preprocessor,
    numeric_block,
    parse_rows,
    require_columns,
)
from topoxai.params import DataParams

SPLITS = ("train", "val", "test")
# A whole-number column whose values all differ looks like an ID only in a table this long:
# in 20 random rows of the bundled table, MaxHR or Cholesterol are all different 3-5% of the
# time (never in 2,000 draws of 50 rows), so a small real table would be refused by chance.
ID_MIN_ROWS = 100
# The processed splits' compression: zstd at a fixed level. The bytes must not change
# between runs (DVC hashes them), and zstd makes the one-hot columns nearly free.
PARQUET_CODEC, PARQUET_LEVEL = "zstd", 1


@dataclass(frozen=True)
class Missing:
    rows: np.ndarray  # per row: True when any of its values is missing
    per_column: dict[str, int]  # rows missing each column's value (a row may count twice)


def read_table(
    source: str | Path | IO[bytes], *, categorical: list[str], name: str | None = None
) -> pd.DataFrame:
    """Raw rows from a CSV file (`-`: stdin), read the same way for training and prediction;
    `source` may be an open binary file, called `name` in messages."""
    name = name or str(source)
    try:
        with warnings.catch_warnings():
            # pandas reads a long file in chunks and warns when a column's type differs
            # between them (text in a numeric column): numeric_block names that cell, and
            # read_raw reads such a target column as text, so the warning is only noise.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(
                sys.stdin if str(source) == "-" else source,
                # Categoricals as text, so that the codes 0/1 one-hot like words; as pandas
                # categories (text, coded per row), read faster and in less memory than one
                # string object per cell.
                dtype={c: "category" for c in categorical},
                # Only an empty cell is missing. pandas' NA words ("NA", "None", "null", "nan",
                # ...) would turn a category spelled so into a missing value; in a numeric
                # column they now read as text, which numeric_block reports as not a number,
                # naming the line.
                keep_default_na=False,
                na_values=[""],
            )
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except (IsADirectoryError, PermissionError) as err:
        raise DataError(f"{name}: cannot read it ({err.strerror})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the input is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{name}: not a readable CSV ({str(err).splitlines()[0]})") from None


def read_raw(
    path: Path, *, target: str, categorical: list[str], drop: list[str], site: str | None = None
) -> pd.DataFrame:
    """Read and check the raw CSV, minus the `drop` columns. The `site` column, if named,
    must be there and have no empty cell; it is kept, as text, and checked as nothing else."""
    frame = read_table(path, categorical=categorical)
    require_columns(frame, [target, *categorical])
    if site is not None and site not in frame.columns:
        raise DataError(
            f"data.site: no column {site} in {path} (columns present: "
            f"{', '.join(frame.columns)}); name the column of each row's site, or null"
        )
    # A name that matches no column is most likely a typo, and the column meant would then
    # silently stay in as a feature.
    if absent := [c for c in drop if c not in frame.columns]:
        raise DataError(
            f"data.drop: no column {absent[0]} in {path} (columns present: {', '.join(frame.columns)})"
        )
    frame = frame.drop(columns=drop)
    if frame.empty:
        raise DataError(f"{path}: no rows")
    if frame[target].isna().any():
        i = int(np.argmax(frame[target].isna().to_numpy()))
        raise DataError(f"column {target}, row {i + 1}: an empty target value")
    if frame[target].dtype == object:
        # Text somewhere in the column: all of it as text, as one chunk of a long file would
        # otherwise hold the numbers 0, 1 and another the words "0", "1".
        frame[target] = frame[target].astype(str)
    if site is not None:
        if frame[site].isna().any():
            i = int(np.argmax(frame[site].isna().to_numpy()))
            raise DataError(f"column {site}, row {i + 1}: an empty site (data.site)")
        frame[site] = frame[site].astype(str)
    numeric = [c for c in frame.columns if c not in (target, site) and c not in categorical]
    # Raises on text in a numeric column; an empty cell is a missing value.
    values = numeric_block(frame, numeric, missing_ok=True)
    if len(frame) >= ID_MIN_ROWS:
        # Non-whole values (a ratio with many decimals) can all differ in a real measurement.
        for column, v in zip(numeric, values.T):
            if np.array_equal(v, np.round(v)) and all_different(v):
                raise DataError(
                    f"column {column}: every value is different (an ID?); "
                    "list it in data.drop to ignore it"
                )
    return frame


def all_different(values: np.ndarray) -> bool:
    # A repeat among the first rows settles it, without sorting a long column.
    head = values[:ID_MIN_ROWS]
    return len(np.unique(head)) == len(head) and len(np.unique(values)) == len(values)


def find_missing(
    frame: pd.DataFrame,
    *,
    target: str,
    categorical: list[str],
    not_measured: list[str],
) -> Missing:
    """Which rows miss a value: an empty cell, or a value <= 0 in a `not_measured` column
    (0 encodes "not measured" in the default table)."""
    require_columns(frame, not_measured)
    numeric = [c for c in frame.columns if c != target and c not in categorical]
    if text := [c for c in not_measured if c not in numeric]:
        raise DataError(f"data.not_measured: {text[0]} is not a numeric column")
    parsed = parse_rows(frame, numeric, categorical, not_measured)
    per_column = dict(zip(numeric, parsed.missing.T))
    per_column |= {c: codes < 0 for c, codes in zip(categorical, parsed.codes)}
    rows = np.zeros(len(frame), bool)
    for column_missing in per_column.values():
        rows |= column_missing
    return Missing(rows, {c: int(m.sum()) for c, m in per_column.items() if m.any()})


@dataclass(frozen=True)
class Table:
    """The raw table as every validation reads it: each row's values, site and gaps."""

    frame: pd.DataFrame  # every row read, without the site column
    sites: pd.Series | None  # each row's site (data.site), as text; None without one
    missing: Missing

    def learned(self, mode: str) -> pd.DataFrame:
        """The rows training learns from under data.missing `mode`."""
        return drop_missing(self.frame, self.missing, mode)

    def take(self, rows: np.ndarray) -> "Table":
        """The table of the rows at these positions (the per-column counts stay those of
        the rows read)."""
        missing = Missing(self.missing.rows[rows], self.missing.per_column)
        sites = None if self.sites is None else self.sites.take(rows)
        return Table(self.frame.take(rows), sites, missing)


def read_table_of(raw: Path, data: DataParams) -> Table:
    """The raw CSV read and checked by the data params, the site column set apart."""
    frame = read_raw(
        raw,
        target=data.target,
        categorical=list(data.categorical),
        drop=list(data.drop),
        site=data.site,
    )
    sites = frame.pop(data.site) if data.site is not None else None
    if isinstance(data.positive_class, tuple):
        frame[data.target] = is_label(frame[data.target], data.positive_class).astype(np.int64)
    missing = find_missing(
        frame,
        target=data.target,
        categorical=list(data.categorical),
        not_measured=list(data.not_measured),
    )
    return Table(frame, sites, missing)


def is_label(values: pd.Series, labels: tuple[str | int, ...]) -> np.ndarray:
    """Which values are one of `labels`, compared as numbers where both are (YAML's 1 is the
    CSV's 1, 1.0 or "1"), else as text."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    text = values.astype(str).str.strip().to_numpy()
    out = np.zeros(len(values), bool)
    for label in labels:
        with contextlib.suppress(TypeError, ValueError):
            out |= numbers == float(label)
        out |= text == str(label)
    return out


def learning_rows(missing: Missing, mode: str) -> np.ndarray:
    """Per row, whether training learns from it under data.missing `mode`."""
    return ~missing.rows if mode == "drop" else np.ones(len(missing.rows), bool)


def drop_missing(frame: pd.DataFrame, missing: Missing, mode: str) -> pd.DataFrame:
    """The rows training learns from: all of them, or (data.missing: drop) the complete ones."""
    if mode != "drop":
        return frame  # as it is: a mask of all rows would copy a 1M-row frame for nothing
    kept = frame[learning_rows(missing, mode)]
    if kept.empty:
        raise DataError(
            f"no rows left after dropping those with a missing value "
            f"({', '.join(missing.per_column)}); try data.missing: impute"
        )
    return kept


def stratified_split(
    frame: pd.DataFrame, target: str, ratios: tuple[float, float, float], random_state: int
) -> dict[str, pd.DataFrame]:
    """Train/val/test split that keeps the class balance in each part."""
    counts = frame[target].value_counts()
    smallest = counts.idxmin()
    smallest = smallest.item() if isinstance(smallest, np.generic) else smallest
    if len(counts) < 2:
        raise DataError(
            f"column {target}: all {len(frame)} rows are class {smallest!r}; "
            "the pipeline needs two classes"
        )
    need = int(np.ceil(1 / min(ratios)))
    if counts.min() < need:
        raise DataError(
            f"column {target}: class {smallest!r} has {counts.min()} rows, too few to stratify "
            f"into data.split {list(ratios)} (needs at least {need})"
        )
    train_ratio, val_ratio, test_ratio = ratios
    labels = frame[target].to_numpy()
    rest, test = shuffle_split(labels, test_ratio, random_state)
    train, val = shuffle_split(labels[rest], val_ratio / (train_ratio + val_ratio), random_state)
    # In the original row order: the files then diff cleanly and do not depend on shuffle order.
    parts = (rest[train], rest[val], test)
    return {name: frame.take(np.sort(part)) for name, part in zip(SPLITS, parts)}


def shuffle_split(
    labels: np.ndarray, test_size: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a stratified (train, test) split, the very draws of scikit-learn's
    `train_test_split(range(n), test_size=..., stratify=labels, random_state=...)`.

    Ported from scikit-learn 1.9's StratifiedShuffleSplit._iter_indices and
    utils.extmath._approximate_mode, because importing sklearn takes longer (1-2 s) than
    splitting a million rows; tests/test_data.py checks the positions against sklearn's.
    """
    rng = np.random.RandomState(random_state)
    n_test = math.ceil(test_size * len(labels))
    n_train = len(labels) - n_test
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train, test = [], []
    for i, members in enumerate(by_class):
        drawn = members[rng.permutation(counts[i])]
        train.append(drawn[: n_i[i]])
        test.append(drawn[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    # Draws per class in proportion to its size, ties in the remainders broken at random.
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add_now = min(len(tied), need)
            floored[rng.choice(tied, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)


def split_path(folder: Path, name: str) -> Path:
    """Where the preprocess stage writes the processed split `name` in `folder`."""
    return folder / f"{name}.parquet"


def write_split(path: Path, part: pd.DataFrame, spec: Preprocessor) -> None:
    """Raw rows -> a processed split: `row` (the raw CSV's row), the features, the target.

    Features are stored as float32, what training and explain compute with, so the file is
    exactly their input. Written by pyarrow alone (no pandas metadata, no timestamp), with a
    fixed codec and level, so the same rows give the same bytes and `dvc.lock` stays put.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = spec.transform(part, np.float32)
    columns = {
        "row": pa.array(part.index.to_numpy(np.int64)),
        **{name: pa.array(features[:, j]) for j, name in enumerate(spec.feature_names)},
        spec.target: pa.array(part[spec.target].to_numpy()),
    }
    pq.write_table(
        pa.table(columns),
        path,
        compression=PARQUET_CODEC,
        compression_level=PARQUET_LEVEL,
        store_schema=False,
    )


def read_split(path: Path, spec: Preprocessor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A processed split: float32 features, class indices and the raw CSV's row numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the preprocess stage") from None
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a processed split ({err})") from None
    if table.column_names != ["row", *spec.feature_names, spec.target]:
        raise DataError(f"{path}: columns do not match the preprocessing spec; rerun preprocess")
    x = np.empty((table.num_rows, len(spec.feature_names)), np.float32)
    for j, name in enumerate(spec.feature_names):
        x[:, j] = table.column(name).to_numpy()
    target = table.select([spec.target]).to_pandas()
    return x, spec.encode_target(target), table.column("row").to_numpy()
