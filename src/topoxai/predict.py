"""Score raw patient rows with a trained model folder: no DVC, git, Lightning or training data."""

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from topoxai import attribution, conformal, domain, ood
from topoxai.artifacts import Model, ModelError
from topoxai.cli import DIGITS
from topoxai.data import read_table
from topoxai.errors import DataError, UserError
from topoxai.features import Parsed, Preprocessor, categorical_codes, counted, per_row, row_of
from topoxai.model import chunked_logits

# Integrated-gradient steps per row. On the default model's 918 rows, the contributions add
# up to probability - reference's within 0.003 (0.002 at the explain stage's 50 steps, 0.007
# at 16); the cost is linear in steps, and 32 keeps 10,000 rows within 30 s on 2 cores.
STEPS = 32
# Contributions are written to 4 decimals: the quadrature's error is in the third.
DECIMALS = 4
# Inputs this long show progress on a terminal (topoxai.progress): scoring 100,000 rows takes
# about 3 s, explaining 1,000 about 2 s.
LARGE, LARGE_EXPLAIN = 100_000, 1_000
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What ends a line for some reader: CSV readers and spreadsheets at "\r" and "\n",
# str.splitlines and some editors at the rest.
LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # "-0.5" is no formula


def predict(
    model: Model,
    frame: pd.DataFrame,
    *,
    threshold: float = 0.5,
    warn: bool = True,
    strict: bool = False,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """`predict_columns` as a frame with the rows' index."""
    columns = predict_columns(
        model, frame, threshold=threshold, warn=warn, strict=strict, notes=notes
    )
    return pd.DataFrame(columns, index=frame.index)


def predict_columns(
    model: Model,
    frame: pd.DataFrame,
    *,
    threshold: float = 0.5,
    warn: bool = True,
    strict: bool = False,
    notes: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """The positive class's probability (column `probability_column(model.spec)`), the
    predicted label, the conformal set at the card's level with each label's conformal
    p-value (topoxai.conformal), and the row's domain flags ("" inside the training data's
    domain).

    Rows go through exactly the preprocess stage's transform; unknown categories become
    all-zero one-hot columns, the same rule training applied to its validation and test rows.
    A flagged row is scored all the same; `strict` refuses the frame instead (DataError
    naming the first flagged row). `warn` prints notes on stderr, or appends them to `notes`
    when given (a server's requests each keep their own); the flags are returned either way.
    """
    spec = model.spec
    tell = _teller(warn, notes)
    parsed = _parse(model, frame, tell=tell)  # once, for the features and the flags
    flags = domain.flags_of(spec, parsed)
    if strict and (first := domain.first_flag(frame, flags)):
        raise DataError(f"{first} (strict: no row may have a domain flag)")
    features = torch.as_tensor(spec.features(parsed), dtype=torch.float32)
    probability = positive_probability(model, features, progress=len(features) >= LARGE)
    if not np.isfinite(probability).all():
        i = int(np.argmax(~np.isfinite(probability)))
        raise ModelError(
            f"{row_of(frame, i)}: the model's output is not a number "
            f"({flags[i] or 'the weights or the values are out of float range'})"
        )
    if update := model.card.get("update"):
        rows = sum(update["rows"]["per_class"])
        tell(
            f"note: scoring with a model updated on {rows} rows of {update['rows']['file']} "
            f"({update['method']}; docs/update.md)"
        )
    if note := domain.summary(flags):
        tell(note)
    if note := domain.missing_summary(parsed):
        tell(note)
    negative, positive = spec.classes
    columns = {
        probability_column(spec): probability,
        "prediction": np.where(probability >= threshold, positive, negative),
    }
    if model.conformal is not None:  # absent from folders trained before conformal sets
        p_values = model.conformal.p_values(np.stack([1 - probability, probability], axis=1))
        columns["set"] = conformal.describe(model.conformal.sets(p_values), spec.names)
        for c, name in enumerate(spec.classes):
            columns[f"p_value({spec.target}={name})"] = p_values[:, c]
    if model.ood is not None:  # absent from folders trained before the ood score
        # float32 features, as the calibration's were (the processed validation split)
        p_value = model.ood.p_values(model.ood.score(features.numpy()))
        columns["ood_p_value"] = p_value
        columns["ood_flag"] = p_value < ood.ALPHA
        if unusual := int(columns["ood_flag"].sum()):
            rows = f"{unusual} of {len(frame)} row{'s' * (len(frame) != 1)}"
            tell(
                f"note: {rows} {'has' if unusual == 1 else 'have'} an out-of-distribution "
                f"(ood) p-value below {ood.ALPHA:g}: features unlike the training patients' "
                "(about 1 in 20 patients like them is flagged too): see ood_flag"
            )
    # Not "flags": a frame's column of that name hides behind pandas' DataFrame.flags.
    columns["domain_flags"] = flags
    return columns


def positive_probability(
    model: Model, features: torch.Tensor, *, progress: bool = False
) -> np.ndarray:
    """The network's probability of the positive class for rows of features (float64)."""
    with torch.no_grad():
        logits = chunked_logits(model.net, features, progress=progress)
        return torch.softmax(logits.double(), dim=1)[:, 1].numpy()


def probability_column(spec: Preprocessor) -> str:
    """The name of predict's probability column: it says which class it is the probability of."""
    return f"P({spec.target}={spec.positive_class})"


def explain_rows(
    model: Model, frame: pd.DataFrame, *, steps: int = STEPS, warn: bool = True
) -> pd.DataFrame:
    """Each raw feature's signed contribution to each row's probability, from the reference.

    Integrated gradients of the probability, summed over a categorical's one-hot columns,
    measured from `attribution.even_reference` (numerics at the training mean, categoricals
    an even mix); per row they add up to probability - `reference_probability(model)`.
    One column per raw feature, in the model's order, with the frame's index.
    """
    if steps < 1:
        raise UserError(f"steps must be at least 1 (got {steps})")
    features = features_of(model, frame, warn=warn).numpy()
    spec = model.spec
    groups = attribution.feature_groups(spec)
    ig = attribution.integrated_gradients(
        attribution.positive_probability(model.net),
        features,
        attribution.even_reference(spec),
        steps,
        progress=len(features) >= LARGE_EXPLAIN,
    )
    return pd.DataFrame(
        attribution.grouped(ig, list(groups.values())), columns=list(groups), index=frame.index
    )


def reference_probability(model: Model) -> float:
    """The model's probability at the reference patient that `explain_rows` measures from."""
    reference = attribution.even_reference(model.spec)
    with torch.no_grad():
        net = attribution.positive_probability(model.net)
        return float(net(torch.as_tensor(reference, dtype=torch.float32)).double().item())


def reference_note(model: Model, probability: float) -> str:
    """What `--explain`'s contributions are measured from, once for all rows."""
    return (
        f"note: contributions are measured from the reference patient (numbers at their "
        f"training means, categories an even mix), whose {probability_column(model.spec)} is "
        f"{probability:.{DIGITS}f}: a row's contributions add up to its probability minus that"
    )


def digits_of(text: str, option: str = "--digits") -> int | None:
    """`--digits`: a number of decimals from 0 to 17, or "all" (None: as computed)."""
    if text == "all":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 17:
        raise UserError(f"{option} must be a whole number from 0 to 17, or all (got {text!r})")
    return int(text)


def top_columns(
    contributions: pd.DataFrame, frame: pd.DataFrame, model: Model, top: int
) -> dict[str, np.ndarray]:
    """Per row, the `top` features with the largest |contribution| (ties: the model's order),
    as topK_feature, topK_value (the row's raw value), topK_contribution, then the rest's sum
    as other_contribution."""
    spec = model.spec
    _check_top(top, contributions.shape[1])
    names = np.array(contributions.columns, dtype=object)
    values = np.stack(
        [frame[c].to_numpy(dtype=object) for c in spec.numeric]
        + [_categories_or_empty(frame, c) for c in spec.categorical],
        axis=1,
    )
    scores = contributions.to_numpy()
    order = np.argsort(-np.abs(scores), axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(scores, order, axis=1)
    shown = np.take_along_axis(values, order, axis=1)
    table = {}
    for k in range(top):
        table[f"top{k + 1}_feature"] = names[order[:, k]]
        table[f"top{k + 1}_value"] = shown[:, k]
        table[f"top{k + 1}_contribution"] = chosen[:, k].round(DECIMALS)
    table["other_contribution"] = (scores.sum(axis=1) - chosen.sum(axis=1)).round(DECIMALS)
    return table


def _categories_or_empty(frame: pd.DataFrame, column: str) -> np.ndarray:
    # The row's category as the model reads it; "" where it is missing.
    codes, text = categorical_codes(frame, column, missing_ok=True)
    return per_row(codes, text, "")


def table_columns(
    model: Model,
    frame: pd.DataFrame,
    *,
    threshold: float = 0.5,
    id_columns: list[str] | None = None,
    explain: int | None = None,
    strict: bool = False,
    notes: list[str] | None = None,
    digits: int | None = DIGITS,
) -> dict[str, Any]:
    """The columns `topoxai predict` writes, by name: id columns (or `row`, counted from 1
    as `features.row_of` counts), `predict_columns` with probabilities and p-values rounded
    to `digits` decimals (None: as computed; the prediction is made before rounding), then,
    with `explain=N`, each row's N top contributions; `reference_note` goes to the notes.

    Columns, not a frame: a served row's answer is a few values, and building a frame of
    them costs more than scoring it.
    """
    if id_columns and (missing := [c for c in id_columns if c not in frame.columns]):
        raise DataError(f"--id column {missing[0]} is not in the input")
    if id_columns and (twice := [c for i, c in enumerate(id_columns) if c in id_columns[:i]]):
        raise UserError(f"--id {twice[0]} is given twice")
    if explain is not None:  # before the work, not after it
        _check_top(explain, len(attribution.feature_groups(model.spec)))
    if id_columns and (clash := [c for c in id_columns if c in _output_names(model, explain)]):
        # A CSV with two columns of one name is read back wrongly.
        raise UserError(f"--id {clash[0]}: the output has a column of that name already")
    ids = {c: frame[c].array for c in id_columns} if id_columns else {"row": _numbers(frame)}
    # An id column is copied, not ignored: predict would note it as a column it ignores.
    used = model.spec.raw_columns
    scored = frame.drop(columns=[c for c in ids if c in frame.columns and c not in used])
    table = ids | predict_columns(model, scored, threshold=threshold, strict=strict, notes=notes)
    if digits is not None:
        for name, values in table.items():
            if values.dtype == np.float64 and name not in ids:
                table[name] = values.round(digits)
    if explain is not None:
        contributions = explain_rows(model, frame, warn=False)  # predict gave the notes
        _teller(True, notes)(reference_note(model, reference_probability(model)))
        table |= top_columns(contributions, frame, model, explain)
    return table


def _numbers(frame: pd.DataFrame) -> np.ndarray:
    # features.row_of's numbers, so that an error's "row 3" is the output's row 3.
    return np.arange(1, len(frame) + 1) if counted(frame) else np.asarray(frame.index)


def _output_names(model: Model, explain: int | None) -> list[str]:
    spec = model.spec
    names = [probability_column(spec), "prediction", "domain_flags"]
    if model.conformal is not None:
        names += ["set", *(f"p_value({spec.target}={c})" for c in spec.classes)]
    if model.ood is not None:
        names += ["ood_p_value", "ood_flag"]
    if explain is not None:
        names += ["other_contribution"]
        names += [
            f"top{k}_{w}"
            for k in range(1, explain + 1)
            for w in ("feature", "value", "contribution")
        ]
    return names


def read_rows(source: str | Path, model: Model) -> pd.DataFrame:
    """Raw rows from a CSV file (`-`: stdin), read exactly as the preprocess stage reads them."""
    if "://" in str(source):  # pandas would fetch URLs itself, with none of our checks
        raise DataError(f"{source}: --input takes a file path or -, not a URL")
    return read_table(source, categorical=model.spec.categorical)


def _check_top(top: int, features: int) -> None:
    if not 1 <= top <= features:
        raise UserError(f"--top must be from 1 to {features}, the model's raw features (got {top})")


def _parse(model: Model, frame: pd.DataFrame, *, tell: Callable[[str], None]) -> Parsed:
    """Raw rows read once, after the checks every scoring path makes."""
    spec = model.spec
    if len(spec.classes) != 2:
        raise ModelError(f"predict supports two-class models; this one has {spec.classes}")
    if frame.empty:
        raise DataError("the input has no rows")
    # Unknown categories are not noted here: they are flagged, row by row.
    used = set(spec.raw_columns)
    if extra := [c for c in frame.columns if c not in used]:
        tell(f"note: ignoring columns not used by the model: {', '.join(map(str, extra))}")
    return spec.parse(frame)


def features_of(model: Model, frame: pd.DataFrame, *, warn: bool) -> torch.Tensor:
    """The network's input for raw rows (float32), after the checks every scoring path makes."""
    features = model.spec.features(_parse(model, frame, tell=_teller(warn, None)))
    return torch.as_tensor(features, dtype=torch.float32)


def _teller(warn: bool, notes: list[str] | None) -> Callable[[str], None]:
    """Where notes go: `notes` when given, else stderr; nowhere without `warn`."""
    if not warn:
        return lambda _: None
    if notes is not None:
        return notes.append
    return lambda note: print(note, file=sys.stderr)


def csv_text(table: pd.DataFrame) -> str:
    """The table as `topoxai predict` writes it: `for_spreadsheets`, one line per row, and
    every text cell that holds a line break quoted, so that it stays one cell of one row.

    Python's csv writer quotes a cell holding any character of its line terminator, and
    otherwise only "\n": a bare "\r" would end the row for a spreadsheet, and what follows
    it would start a row of its own, past the formula guard. So each row is written ended
    by every line break (LINE_BREAKS), and that ending is then written as "\n".
    """
    out = _RowEnds()
    for_spreadsheets(table).to_csv(out, index=False, lineterminator=LINE_BREAKS)
    return out.getvalue()


class _RowEnds(io.StringIO):
    """Text that csv's writer writes a whole row to per call, terminator included."""

    def write(self, text: str) -> int:
        if text.endswith(LINE_BREAKS):
            text = text[: -len(LINE_BREAKS)] + "\n"
        return super().write(text)


def for_spreadsheets(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell (and header) that a spreadsheet would read as a formula
    prefixed with ', as OWASP advises for CSV files; numbers stay numbers ("-0.5" too)."""
    out = table.copy()
    out.columns = [_defused(name) for name in table.columns]
    for j in range(out.shape[1]):  # by position: an --id column may share a name
        column = out.iloc[:, j]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
            continue  # numbers (and booleans), as numbers; anything else may hold text
        cells = column.to_numpy(dtype=object)
        starts = pd.Series(cells, dtype=object).astype(str).str.startswith(FORMULA_START)
        for i in np.flatnonzero(starts.to_numpy()).tolist():  # the few: text, not numbers?
            if _is_text(cells[i]):
                cells[i] = "'" + cells[i]
        out.isetitem(j, cells)
    return out


def _is_text(value: object) -> bool:
    return isinstance(value, str) and not PLAIN_NUMBER.fullmatch(value)


def _defused(name: str) -> str:
    return f"'{name}" if str(name).startswith(FORMULA_START) and _is_text(name) else name
