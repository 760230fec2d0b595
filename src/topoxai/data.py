"""The research code's data steps: read the raw CSV, drop impossible rows, split."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from topoxai.errors import DataError
from topoxai.features import Preprocessor, categorical_block, numeric_block, require_columns

SPLITS = ("train", "val", "test")
# A whole-number column whose values all differ looks like an ID only in a table this long:
# in 20 random rows of the bundled table, MaxHR or Cholesterol are all different 3-5% of the
# time (never in 2,000 draws of 50 rows), so a small real table would be refused by chance.
ID_MIN_ROWS = 100


@dataclass(frozen=True)
class Filtered:
    frame: pd.DataFrame
    nonpositive: dict[str, int]  # rows with a value <= 0, per column (a row may count twice)


def read_table(source: str | Path, *, categorical: list[str]) -> pd.DataFrame:
    """Raw rows from a CSV file (`-`: stdin), read the same way for training and prediction."""
    try:
        return pd.read_csv(
            sys.stdin if str(source) == "-" else source,
            # Categoricals as text, so that the codes 0/1 one-hot like words.
            dtype={c: str for c in categorical},
            # Only an empty cell is missing. pandas' NA words ("NA", "None", "null", "nan", ...)
            # would turn a category spelled so into a missing value; in a numeric column they
            # now read as text, which numeric_block reports as not a number, naming the line.
            keep_default_na=False,
            na_values=[""],
        )
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except (IsADirectoryError, PermissionError) as err:
        raise DataError(f"{source}: cannot read it ({err.strerror})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the input is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{source}: not a readable CSV ({str(err).splitlines()[0]})") from None


def read_raw(path: Path, *, target: str, categorical: list[str], drop: list[str]) -> pd.DataFrame:
    """Read and check the raw CSV, minus the `drop` columns."""
    frame = read_table(path, categorical=categorical)
    require_columns(frame, [target, *categorical])
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
        raise DataError(f"column {target}, line {i + 2}: an empty target value")
    numeric = [c for c in frame.columns if c != target and c not in categorical]
    values = numeric_block(frame, numeric)  # raises on NaN or text in a numeric column
    if len(frame) >= ID_MIN_ROWS:
        # Non-whole values (a ratio with many decimals) can all differ in a real measurement.
        for column, v in zip(numeric, values.T):
            if np.array_equal(v, np.round(v)) and len(np.unique(v)) == len(v):
                raise DataError(
                    f"column {column}: every value is different (an ID?); "
                    "list it in data.drop to ignore it"
                )
    for column in categorical:
        categorical_block(frame, column)
    return frame


def drop_nonpositive(frame: pd.DataFrame, columns: list[str]) -> Filtered:
    """Drop rows where any of `columns` is <= 0 (0 encodes 'not measured' in this dataset)."""
    require_columns(frame, columns)
    values = numeric_block(frame, columns)  # a text column here is one clear error
    bad = {c: values[:, j] <= 0 for j, c in enumerate(columns)}
    keep = ~np.logical_or.reduce(list(bad.values())) if bad else np.ones(len(frame), bool)
    kept = frame[keep]
    if kept.empty:
        raise DataError(f"no rows left after dropping non-positive values in {', '.join(columns)}")
    return Filtered(kept, {c: int(b.sum()) for c, b in bad.items()})


def stratified_split(
    frame: pd.DataFrame, target: str, ratios: tuple[float, float, float], random_state: int
) -> dict[str, pd.DataFrame]:
    """Train/val/test split that keeps the class balance in each part."""
    from sklearn.model_selection import train_test_split

    counts = frame[target].value_counts()
    smallest = counts.idxmin()
    smallest = smallest.item() if isinstance(smallest, np.generic) else smallest
    need = int(np.ceil(1 / min(ratios)))
    if counts.min() < need:
        raise DataError(
            f"column {target}: class {smallest!r} has {counts.min()} rows, too few to stratify "
            f"into data.split {list(ratios)} (needs at least {need})"
        )
    train_ratio, val_ratio, test_ratio = ratios
    rest, test = train_test_split(
        frame, test_size=test_ratio, stratify=frame[target], random_state=random_state
    )
    train, val = train_test_split(
        rest,
        test_size=val_ratio / (train_ratio + val_ratio),
        stratify=rest[target],
        random_state=random_state,
    )
    # Sorted by original row: the files then diff cleanly and do not depend on shuffle order.
    return {name: part.sort_index() for name, part in zip(SPLITS, (train, val, test))}


def read_split(path: Path, spec: Preprocessor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A processed split: float32 features, class indices and the raw CSV's row numbers."""
    try:
        frame = pd.read_csv(path, index_col="row")
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the preprocess stage") from None
    except ValueError as err:  # no `row` column
        raise DataError(f"{path}: not a processed split ({err})") from None
    if list(frame.columns) != [*spec.feature_names, spec.target]:
        raise DataError(f"{path}: columns do not match the preprocessing spec; rerun preprocess")
    x = frame[spec.feature_names].to_numpy(np.float32)
    return x, spec.encode_target(frame), frame.index.to_numpy()
