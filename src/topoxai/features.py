"""The fitted preprocessing: imputed, standardized numerics and one-hot categoricals, as JSON.

Kept free of scikit-learn so that the same transform can be applied anywhere from a
plain JSON file: the preprocess stage fits it, training reads its output, prediction
re-applies it to raw rows.
"""

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai.errors import DataError

# 3: missing values are imputed (medians, modes) and may have indicator columns.
FORMAT_VERSION = 3
SPEC_FILE = "preprocess.json"  # beside the processed splits, and in the model folder
MISSING_MODES = ("drop", "impute", "indicator")
# How a missing value is written in a numeric cell besides an empty one (pandas writes NaN).
MISSING_WORDS = ("nan",)


@dataclass(frozen=True)
class Parsed:
    """Raw rows read once: what the features, the imputation and the domain flags all need."""

    numeric: np.ndarray  # (rows, numeric columns) float64 as written; NaN for an empty cell
    missing: np.ndarray  # (rows, numeric columns): empty, or <= 0 in a not_measured column
    codes: list[np.ndarray]  # per categorical: each row's index into `text`; -1: empty
    text: list[np.ndarray]  # per categorical: its distinct spellings (categorical_codes)

    def __len__(self) -> int:
        return len(self.numeric)


@dataclass(frozen=True)
class Preprocessor:
    target: str
    classes: list[Any]  # [negative, positive]: the probability predicted is the last's
    numeric: list[str]
    means: list[float]
    scales: list[float]
    categorical: list[str]
    categories: list[list[str]]  # the known categories (the domain, as much as the encoding)
    source_sha256: str
    # The model's domain (topoxai.domain): each numeric column's smallest and largest
    # measured value over the training rows, and the columns where a value <= 0 means "not
    # measured" (data.not_measured).
    lows: list[float]
    highs: list[float]
    not_measured: list[str]
    # Missing values (data.missing): what training did with them, and what fills one in any
    # row: the training rows' median of each numeric column and most frequent category of
    # each categorical one. `indicators`: the columns with a 0/1 "was missing" feature.
    missing: str
    medians: list[float]
    modes: list[str]
    indicators: list[str]
    # The classes as a person reads them (data.class_names), or None: the labels themselves.
    # Absent from specs written before it: the labels.
    class_names: list[str] | None = None

    @property
    def positive_class(self) -> Any:
        return self.classes[1]

    @property
    def raw_columns(self) -> list[str]:
        """The input columns the model reads, numeric then categorical."""
        return [*self.numeric, *self.categorical]

    @property
    def names(self) -> list[str]:
        """The classes as output for people names them: `class_names`, else the labels."""
        return list(self.class_names) if self.class_names else [str(c) for c in self.classes]

    @property
    def feature_names(self) -> list[str]:
        onehot = [f"{c}={v}" for c, cats in zip(self.categorical, self.categories) for v in cats]
        return self.numeric + onehot + [indicator_name(c) for c in self.indicators]

    def parse(self, frame: pd.DataFrame) -> Parsed:
        """The rows' numeric values and categories, and which are missing, read once."""
        require_columns(frame, self.raw_columns)
        return parse_rows(frame, self.numeric, self.categorical, self.not_measured)

    def transform(self, frame: pd.DataFrame, dtype: type = np.float64) -> np.ndarray:
        """Raw rows -> features (`features` of `parse`)."""
        return self.features(self.parse(frame), dtype)

    def features(self, rows: Parsed, dtype: type = np.float64) -> np.ndarray:
        """Parsed rows -> features: a missing value takes the training rows' median (or most
        frequent category), then numerics are standardized and categoricals one-hot coded;
        an unknown category becomes all-zero columns.

        Computed in float64 whatever `dtype`: float32 is float64's result rounded once.
        """
        out: np.ndarray = np.empty((len(rows), len(self.feature_names)), dtype)
        numeric = np.where(rows.missing, np.asarray(self.medians), rows.numeric)
        out[:, : len(self.numeric)] = (numeric - np.asarray(self.means)) / np.asarray(self.scales)
        start = len(self.numeric)
        missing = dict(zip(self.numeric, rows.missing.T))
        for column, cats, mode, codes, text in zip(
            self.categorical, self.categories, self.modes, rows.codes, rows.text
        ):
            # Each distinct text's column among `cats` (-1: unknown), then each row's; an
            # empty cell (code -1) is the training rows' most frequent category.
            known = index_in(cats, text)
            position = per_row(codes, known, cats.index(mode))
            out[:, start : start + len(cats)] = position[:, None] == np.arange(len(cats))
            start += len(cats)
            missing[column] = codes < 0
        for j, column in enumerate(self.indicators):
            out[:, start + j] = missing[column]
        return out

    def encode_target(self, frame: pd.DataFrame) -> np.ndarray:
        """Class labels -> indices into `classes`."""
        labels = frame[self.target].astype(object)
        # An object index matches as a dict would (Python equality), without a loop per row.
        codes = pd.Index(self.classes, dtype=object).get_indexer(labels)
        if (codes < 0).any():
            unknown = labels.iloc[int(np.argmax(codes < 0))]
            raise DataError(
                f"column {self.target}: unknown class {unknown!r} (known: {self.classes})"
            )
        return codes.astype(np.int64)

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Preprocessor":
        try:
            spec = json.loads(text)
            if spec.pop("format_version", None) != FORMAT_VERSION:
                raise DataError(
                    f"format_version must be {FORMAT_VERSION} (one written before missing "
                    "values were imputed: rerun the pipeline, dvc repro)"
                )
            return cls(**spec)
        except (
            ValueError,
            TypeError,
            AttributeError,
        ) as err:  # not JSON, not an object, wrong keys
            raise DataError(f"not a preprocessing spec ({err})") from None

    @classmethod
    def load(cls, path: Path) -> "Preprocessor":
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: cannot read it ({err}); run the preprocess stage") from None
        except DataError as err:
            raise DataError(f"{path}: {err}") from None


def fit_preprocessor(
    train: pd.DataFrame,
    *,
    target: str,
    categorical: list[str],
    source_sha256: str,
    positive_class: Any = None,
    not_measured: list[str] | tuple[str, ...] = (),
    missing: str = "impute",
    class_names: tuple[str, str] | None = None,
) -> Preprocessor:
    """Learn means, scales, categories, ranges and fill values from the training rows only
    (their measured values: a missing one informs none of them)."""
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES} (got {missing!r})")
    classes = ordered_classes(train[target].unique().tolist(), positive_class, target)
    numeric = [c for c in train.columns if c != target and c not in categorical]
    rows = parse_rows(train, numeric, list(categorical), [c for c in numeric if c in not_measured])
    values = np.where(rows.missing, np.nan, rows.numeric)
    all_missing = np.asarray(rows.missing.all(axis=0)).tolist()
    if empty := [c for c, m in zip(numeric, all_missing) if m and len(train)]:
        raise DataError(f"column {empty[0]}: no measured value in the training rows")
    for column, codes in zip(categorical, rows.codes):
        if len(codes) and (codes < 0).all():
            raise DataError(f"column {column}: no measured value in the training rows")
    means, scales = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    # A constant column has nothing to standardize; leave it centred (as StandardScaler does).
    scales[scales == 0] = 1.0
    categories = [_present(codes, text) for codes, text in zip(rows.codes, rows.text)]
    missed = [c for c, m in zip(numeric, np.asarray(rows.missing.any(axis=0)).tolist()) if m]
    missed += [c for c, codes in zip(categorical, rows.codes) if (codes < 0).any()]
    return Preprocessor(
        target=target,
        classes=classes,
        numeric=numeric,
        means=means.tolist(),
        scales=scales.tolist(),
        categorical=list(categorical),
        categories=[sorted(c) for c in categories],
        source_sha256=source_sha256,
        lows=np.nanmin(values, axis=0, initial=np.inf).tolist(),
        highs=np.nanmax(values, axis=0, initial=-np.inf).tolist(),
        not_measured=[c for c in numeric if c in not_measured],
        missing=missing,
        medians=np.nanmedian(values, axis=0).tolist() if len(train) else [],
        modes=[_most_frequent(c) for c in categories],
        # Only where the training rows had a missing value: a constant 0 column teaches nothing.
        indicators=missed if missing == "indicator" else [],
        class_names=list(class_names) if class_names else None,
    )


def indicator_name(column: str) -> str:
    """The 0/1 feature saying that `column` was missing (data.missing: indicator)."""
    return f"{column}:missing"


def parse_rows(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], not_measured: list[str]
) -> Parsed:
    """`Parsed` for the columns named; DataError names the first cell that is neither a
    number nor missing."""
    values = numeric_block(frame, numeric, missing_ok=True)
    missing = np.isnan(values)
    for j, column in enumerate(numeric):
        if column in not_measured:
            missing[:, j] |= values[:, j] <= 0
    codes, text = [], []
    for column in categorical:
        c, t = categorical_codes(frame, column, missing_ok=True)
        codes.append(c)
        text.append(t)
    return Parsed(values, missing, codes, text)


def index_in(known: list[str], text: np.ndarray) -> np.ndarray:
    """Each text's position in `known`, -1 where it is not there (a few distinct texts: a
    dict beats a pandas index by a millisecond a call, the cost of a served row)."""
    position = {value: i for i, value in enumerate(known)}
    return np.array([position.get(t, -1) for t in text.tolist()], dtype=np.intp)


def per_row(codes: np.ndarray, per_code: np.ndarray, missing: Any) -> np.ndarray:
    """Each row's value from `per_code[code]`, and `missing` where the code is -1 (an empty
    cell). A column empty in every row has no codes at all: indexing `per_code` with -1
    would then fail, so the missing value takes a slot of its own."""
    slots = np.append(per_code, missing)
    return slots[np.where(codes < 0, len(slots) - 1, codes)]


def _most_frequent(counts: dict[str, int]) -> str:
    # The first in sorted order among ties ("" for a frame without rows).
    return max(counts.items(), key=lambda item: item[1])[0] if counts else ""


def _present(codes: np.ndarray, text: np.ndarray) -> dict[str, int]:
    # Each category that occurs, with its rows (one spelling may come from several texts);
    # in sorted order, so that the most frequent's ties go to the first in that order.
    counts = np.bincount(codes[codes >= 0], minlength=len(text))
    out: dict[str, int] = {}
    for spelling, n in zip(text.tolist(), counts.tolist()):
        if n:
            out[spelling] = out.get(spelling, 0) + n
    return dict(sorted(out.items()))


def ordered_classes(labels: list[Any], positive_class: Any, target: str) -> list[Any]:
    """The target's two labels as [negative, positive].

    `positive_class` None names 1 for a 0/1 target; any other target must name its positive
    class (sorting would pick one at random: "disease" < "healthy", "no" < "yes").
    """
    if len(labels) != 2:
        raise DataError(f"column {target}: the pipeline needs two classes, found {labels[:10]}")
    shown = ", ".join(map(repr, sorted(labels, key=str)))
    if positive_class is None:
        numbers = [_number(v) for v in labels]
        if sorted(n for n in numbers if n is not None) != [0, 1]:
            raise DataError(
                f"column {target} has the labels {shown}: name the one whose probability "
                "to predict in data.positive_class"
            )
        positive_class = 1
    # YAML's 1 is the CSV's 1, 1.0 or "1": compare as numbers where both are, else as text.
    wanted = _number(positive_class)
    chosen = [
        i
        for i, v in enumerate(labels)
        if (wanted is not None and _number(v) == wanted) or str(v) == str(positive_class)
    ]
    if len(chosen) != 1:
        raise DataError(
            f"data.positive_class {positive_class!r} is not a label of column {target} "
            f"(labels: {shown})"
        )
    return [labels[1 - chosen[0]], labels[chosen[0]]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column {missing[0]} (columns present: {', '.join(frame.columns)})"
        )


def numeric_block(
    frame: pd.DataFrame, columns: list[str], *, missing_ok: bool = False
) -> np.ndarray:
    """The columns as float64, or DataError naming the first empty or non-numeric cell.

    `missing_ok`: an empty cell (or NaN) is NaN instead; text and infinities still raise.
    """
    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        raw = frame[column]
        numbers = (
            raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
        )
        values = numbers.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)  # empty, not a number, or infinite
        if missing_ok and bad.any():
            bad &= ~_missing_cells(raw)
        if bad.any():
            i = int(np.argmax(bad))
            cell = raw.iloc[i]
            if pd.isna(cell) or str(cell).strip() == "":
                what = "an empty value"
            elif isinstance(cell, float | np.floating):  # inf, as pandas read it
                what = f"{cell:g}"
            else:
                what = f"{cell!r}"
            raise DataError(f"column {column}, {row_of(frame, i)}: {what} is not a number")
        out[:, j] = values
    return out


def _missing_cells(raw: pd.Series) -> np.ndarray:
    """Cells that hold no value: empty, NaN, or a word for it (a numeric column read as text)."""
    empty = raw.isna().to_numpy()
    if raw.dtype == object:
        text = raw.astype(str).str.strip().str.lower()
        empty |= (text == "").to_numpy() | text.isin(MISSING_WORDS).to_numpy()
    return empty


def categorical_block(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as text, one spelling per category, or DataError naming the first empty cell.

    Spaces are trimmed and numbers take one spelling ("0.0", " 0 ", "+0" -> "0"; "1.50" ->
    "1.5"): categories are compared as text, and a FastingBS of 0.0 (a CSV written from
    floats) must be the category "0" that training saw, not an unknown one.
    """
    codes, text = categorical_codes(frame, column)
    return text[codes]


def categorical_codes(
    frame: pd.DataFrame, column: str, *, missing_ok: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`categorical_block` as (codes, text): row i holds text[codes[i]]; text may repeat.

    Spelled once per distinct value, then spread back to the rows by whoever needs them: a
    1M-row column has a handful of categories, and parsing numbers is the slow part.
    `missing_ok`: an empty cell has code -1 instead of raising DataError.
    """
    raw = frame[column]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        # As read_table reads categorical columns: pandas already coded the rows (-1: empty).
        codes, values = raw.cat.codes.to_numpy(), raw.cat.categories
    else:
        # Values, not their text, are told apart: 1 and "1" get two codes and one spelling.
        codes, values = pd.factorize(raw)  # code -1: NaN or None
    distinct = tuple(str(v) for v in values.tolist())
    # A served request holds a row or a few, spelled as the last one was: the spelling of its
    # handful of texts is looked up, not recomputed through a dozen pandas operations.
    text, blank = (_spelled if len(distinct) <= SPELLINGS_CACHED else _spell)(distinct)
    empty = per_row(codes, blank, True)
    if missing_ok:
        codes = np.where(empty, -1, codes)
    elif empty.any():
        i = int(np.argmax(empty))
        raise DataError(f"column {column}, {row_of(frame, i)}: an empty value")
    return codes, text


def _spell(distinct: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct text's spelling (categorical_block) and whether it is blank; read-only."""
    text = pd.Series(distinct, dtype=object).str.strip()
    blank = (text == "").to_numpy()
    number = pd.to_numeric(text, errors="coerce").astype(float)  # NaN where not a number
    # From 2**53 on, floats skip integers: long numeric codes keep their own text.
    whole = (number % 1 == 0) & (number.abs() < 2**53)
    fraction = np.isfinite(number) & (number % 1 != 0)
    text = text.mask(whole, number.where(whole, 0).astype(np.int64).astype(str))
    text = text.mask(fraction, number.astype(str))  # the shortest text that reads back the same
    out = text.to_numpy(dtype=object)
    out.flags.writeable = blank.flags.writeable = False  # shared by every caller of the cache
    return out, blank


# Columns with at most this many distinct texts have their spellings cached (categories do).
SPELLINGS_CACHED = 64
_spelled = functools.lru_cache(maxsize=4096)(_spell)


def counted(frame: pd.DataFrame) -> bool:
    """Whether the frame's rows are named by their count from 1 (its index is the default
    0, 1, 2...: a file's rows, or a request's), rather than by their index labels."""
    return isinstance(frame.index, pd.RangeIndex) and frame.index.equals(pd.RangeIndex(len(frame)))


def row_of(frame: pd.DataFrame, position: int) -> str:
    """Where a row came from, as `topoxai predict` numbers its output rows: "row N", counted
    from 1 at the first row after a CSV's header or the first record of a JSON array (and
    the first row of a frame with the default index, in the Python API). A frame indexed
    otherwise (patient IDs, say) names the row's label: "row 'p1'", "row 20"."""
    if counted(frame):
        return f"row {position + 1}"
    label = frame.index[position]
    return f"row {label!r}" if isinstance(label, str) else f"row {label}"
