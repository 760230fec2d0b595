"""The fitted preprocessing: standardized numerics and one-hot categoricals, saved as JSON.

Kept free of scikit-learn so that the same transform can be applied anywhere from a
plain JSON file: the preprocess stage fits it, training reads its output, prediction
re-applies it to raw rows.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai.errors import DataError

# 2: classes put the positive one last, and the training rows' domain is recorded.
FORMAT_VERSION = 2
SPEC_FILE = "preprocess.json"  # beside the processed splits, and in the model folder


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
    # The model's domain (topoxai.domain): each numeric column's smallest and largest value
    # over the training rows, and the columns where a value <= 0 means "not measured" (the
    # rows training dropped: data.positive).
    lows: list[float]
    highs: list[float]
    not_measured: list[str]

    @property
    def positive_class(self) -> Any:
        return self.classes[1]

    @property
    def feature_names(self) -> list[str]:
        onehot = [f"{c}={v}" for c, cats in zip(self.categorical, self.categories) for v in cats]
        return self.numeric + onehot

    def transform(self, frame: pd.DataFrame, dtype: type = np.float64) -> np.ndarray:
        """Raw rows -> features; unknown categories become all-zero columns.

        Computed in float64 whatever `dtype`: float32 is float64's result rounded once.
        """
        require_columns(frame, [*self.numeric, *self.categorical])
        out: np.ndarray = np.empty((len(frame), len(self.feature_names)), dtype)
        numeric = numeric_block(frame, self.numeric)
        out[:, : len(self.numeric)] = (numeric - np.asarray(self.means)) / np.asarray(self.scales)
        start = len(self.numeric)
        for column, cats in zip(self.categorical, self.categories):
            codes, text = categorical_codes(frame, column)
            # Each distinct text's column among `cats` (-1: unknown), then each row's.
            position = pd.Index(cats, dtype=object).get_indexer(pd.Index(text))[codes]
            out[:, start : start + len(cats)] = position[:, None] == np.arange(len(cats))
            start += len(cats)
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
                    f"format_version must be {FORMAT_VERSION} (one written before the model's "
                    "domain was recorded: rerun the pipeline, dvc repro)"
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
) -> Preprocessor:
    """Learn means, scales, categories and ranges from the training rows only."""
    classes = ordered_classes(train[target].unique().tolist(), positive_class, target)
    numeric = [c for c in train.columns if c != target and c not in categorical]
    values = numeric_block(train, numeric)
    means = values.mean(axis=0)
    scales = values.std(axis=0)
    # A constant column has nothing to standardize; leave it centred (as StandardScaler does).
    scales[scales == 0] = 1.0
    return Preprocessor(
        target=target,
        classes=classes,
        numeric=numeric,
        means=means.tolist(),
        scales=scales.tolist(),
        categorical=list(categorical),
        categories=[present_categories(train, c) for c in categorical],
        source_sha256=source_sha256,
        lows=values.min(axis=0, initial=np.inf).tolist(),
        highs=values.max(axis=0, initial=-np.inf).tolist(),
        not_measured=[c for c in numeric if c in not_measured],
    )


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


def present_categories(frame: pd.DataFrame, column: str) -> list[str]:
    """The categories that occur in the column, sorted."""
    codes, text = categorical_codes(frame, column)
    return sorted(set(text[np.bincount(codes, minlength=len(text)) > 0].tolist()))


def require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column {missing[0]} (columns present: {', '.join(frame.columns)})"
        )


def numeric_block(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The columns as float64, or DataError naming the first empty or non-numeric cell."""
    out = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = int(np.argmax(bad))
            cell = raw.iloc[i]
            what = "an empty value" if pd.isna(cell) or str(cell).strip() == "" else f"{cell!r}"
            raise DataError(f"column {column}, {line_of(frame, i)}: {what} is not a number")
        out[:, j] = values.to_numpy(dtype=float)
    return out


def categorical_block(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as text, one spelling per category, or DataError naming the first empty cell.

    Spaces are trimmed and numbers take one spelling ("0.0", " 0 ", "+0" -> "0"; "1.50" ->
    "1.5"): categories are compared as text, and a FastingBS of 0.0 (a CSV written from
    floats) must be the category "0" that training saw, not an unknown one.
    """
    codes, text = categorical_codes(frame, column)
    return text[codes]


def categorical_codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """`categorical_block` as (codes, text): row i holds text[codes[i]]; text may repeat.

    Spelled once per distinct value, then spread back to the rows by whoever needs them: a
    1M-row column has a handful of categories, and parsing numbers is the slow part.
    """
    raw = frame[column]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        # As read_table reads categorical columns: pandas already coded the rows (-1: empty).
        codes, distinct = raw.cat.codes.to_numpy(), raw.cat.categories.astype(str)
    else:
        codes, distinct = pd.factorize(raw.astype(str))
    text = pd.Series(distinct, dtype=object).str.strip()
    empty = raw.isna().to_numpy() | (text == "").to_numpy()[codes]
    if empty.any():
        i = int(np.argmax(empty))
        raise DataError(f"column {column}, {line_of(frame, i)}: an empty value")
    number = pd.to_numeric(text, errors="coerce").astype(float)  # NaN where not a number
    # From 2**53 on, floats skip integers: long numeric codes keep their own text.
    whole = (number % 1 == 0) & (number.abs() < 2**53)
    fraction = np.isfinite(number) & (number % 1 != 0)
    text = text.mask(whole, number.where(whole, 0).astype(np.int64).astype(str))
    text = text.mask(fraction, number.astype(str))  # the shortest text that reads back the same
    return codes, text.to_numpy(dtype=object)


def line_of(frame: pd.DataFrame, position: int) -> str:
    """Where a row came from: frames read from CSV keep the default index, so line = index +
    2; a frame indexed otherwise (patient IDs, say, in the Python API) names the row's label."""
    label = frame.index[position]
    if isinstance(frame.index, pd.RangeIndex) or isinstance(label, int | np.integer):
        return f"line {label + 2}"
    return f"row {label!r}"
