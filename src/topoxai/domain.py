"""The model's domain: does a raw row look like the rows the model was trained on?

A row is outside it when a numeric value is outside the training rows' range, when a value
is not measured (an empty cell, or <= 0 in a data.not_measured column: the spec fills it in
with the training rows' median or most frequent category), or when a category never
occurred in training. The network still returns a number for such a row (a standardized z
of 40, an all-zero one-hot block, a filled-in value), so `predict` scores it and says why
the number should not be taken at face value.

The range is the training rows' minimum and maximum, not a quantile range: a ReLU network
extrapolates linearly past the last value it saw, and that is where its numbers stop being
estimates; a narrower range would flag, by construction, rows like those it learned from.
"""

import numpy as np
import pandas as pd

from topoxai.features import Parsed, Preprocessor, index_in, per_row, row_of

# Every flag of a value not measured says so in these words.
MISSING_REASON = "not measured, scored as"


def row_flags(spec: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
    """`flags` of raw rows (parsed here: `predict` parses once for features and flags)."""
    return flags_of(spec, spec.parse(frame))


def flags_of(spec: Preprocessor, parsed: Parsed) -> np.ndarray:
    """Per row, "" when it is inside the domain, else every reason, joined by "; ".

    Each reason names the column, the row's value and the training range, the value it was
    scored with, or the known categories. Costs a comparison per cell; text is built for
    flagged rows only.
    """
    flags = np.full(len(parsed), "", dtype=object)
    for j, column in enumerate(spec.numeric):
        v, low, high = parsed.numeric[:, j], spec.lows[j], spec.highs[j]
        unmeasured = parsed.missing[:, j]
        rows = np.flatnonzero(unmeasured)
        fill = f"{MISSING_REASON} {spec.medians[j]:.15g} (the training median)"
        _add(flags, rows, [
            f"{column} empty: {fill}" if np.isnan(v[i]) else f"{column}={v[i]:.15g}: {fill}"
            for i in rows
        ])  # fmt: skip
        rows = np.flatnonzero(~unmeasured & ((v < low) | (v > high)))
        _add(flags, rows, [
            f"{column}={v[i]:.15g}: outside the training range [{low:.15g}, {high:.15g}]" for i in rows
        ])  # fmt: skip
    for column, known, mode, codes, text in zip(
        spec.categorical, spec.categories, spec.modes, parsed.codes, parsed.text
    ):
        rows = np.flatnonzero(codes < 0)
        _add(flags, rows, [
            f"{column} empty: {MISSING_REASON} {mode!r} (the training rows' most frequent)"
        ] * len(rows))  # fmt: skip
        unknown = index_in(known, text) < 0
        rows = np.flatnonzero(per_row(codes, unknown, False))
        _add(flags, rows, [
            f"{column}={text[codes[i]]!r}: a category training never saw "
            f"(known: {', '.join(known)})"
            for i in rows
        ])  # fmt: skip
    return flags


def first_flag(frame: pd.DataFrame, flags: np.ndarray) -> str | None:
    """Where the first flagged row is and its first reason, or None when no row is flagged."""
    flagged = np.flatnonzero(flags != "")
    if not len(flagged):
        return None
    i = int(flagged[0])
    return f"{row_of(frame, i)}: {flags[i].split('; ')[0]}"


def summary(flags: np.ndarray) -> str | None:
    """The one line a user sees about rows outside the training data (None when there are
    none): a value out of range or an unknown category. A value not measured is no such
    thing (training saw them); `missing_summary` has its own line."""
    count = sum(
        any(MISSING_REASON not in reason for reason in row.split("; "))
        for row in flags[flags != ""].tolist()
    )
    if not count:
        return None
    verb = "is" if count == 1 else "are"
    return (
        f"note: {count} of {len(flags)} row{'s' * (len(flags) != 1)} {verb} outside the "
        "training data: see the domain_flags column"
    )


def missing_summary(parsed: Parsed) -> str | None:
    """The one line a user sees about rows with a value not measured (None when none has)."""
    rows = np.asarray(parsed.missing.any(axis=1), dtype=bool).reshape(len(parsed))
    for codes in parsed.codes:
        rows |= codes < 0
    count = int(rows.sum())
    if not count:
        return None
    verb = "has" if count == 1 else "have"
    return (
        f"note: {count} of {len(parsed)} row{'s' * (len(parsed) != 1)} {verb} a value not measured, "
        "scored as domain_flags says; how such patients' probabilities held at a hospital the "
        "model never saw: docs/sites.md"
    )


def _add(flags: np.ndarray, rows: np.ndarray, reasons: list[str]) -> None:
    # Text for the flagged rows only: usually none or a few.
    for i, reason in zip(rows.tolist(), reasons):
        flags[i] = f"{flags[i]}; {reason}" if flags[i] else reason
