"""Score raw patient rows with a trained model folder: no DVC, git, Lightning or training data."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from topoxai.artifacts import Model, ModelError, load_model
from topoxai.data import read_table
from topoxai.errors import DataError
from topoxai.features import categorical_block
from topoxai.model import chunked_logits


def predict(
    model: Model, frame: pd.DataFrame, *, threshold: float = 0.5, warn: bool = True
) -> pd.DataFrame:
    """Probability of the positive class (the last in the model's classes) and the label.

    Rows go through exactly the preprocess stage's transform; unknown categories become
    all-zero one-hot columns, the same rule training applied to its validation and test rows.
    """
    spec = model.spec
    if len(spec.classes) != 2:
        raise ModelError(f"predict supports two-class models; this one has {spec.classes}")
    if frame.empty:
        raise DataError("the input has no rows")
    if warn:
        _warn_about(frame, model)
    features = torch.as_tensor(spec.transform(frame), dtype=torch.float32)
    with torch.no_grad():
        logits = chunked_logits(model.net, features)
        probability = torch.softmax(logits.double(), dim=1)[:, 1].numpy()
    negative, positive = spec.classes
    return pd.DataFrame(
        {
            "probability": probability,
            "prediction": np.where(probability >= threshold, positive, negative),
        },
        index=frame.index,
    )


def predict_csv(
    model_dir: str | Path,
    source: str | Path,
    *,
    threshold: float = 0.5,
    id_columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV of raw rows (`-` for stdin) and return id columns (or `row`) + predictions."""
    model = load_model(model_dir)
    frame = read_rows(source, model)
    if id_columns and (missing := [c for c in id_columns if c not in frame.columns]):
        raise DataError(f"--id column {missing[0]} is not in the input")
    result = predict(model, frame, threshold=threshold)
    ids = frame[id_columns] if id_columns else pd.DataFrame({"row": frame.index})
    return pd.concat([ids.reset_index(drop=True), result.reset_index(drop=True)], axis=1)


def read_rows(source: str | Path, model: Model) -> pd.DataFrame:
    """Raw rows from a CSV file (`-`: stdin), read exactly as the preprocess stage reads them."""
    if "://" in str(source):  # pandas would fetch URLs itself, with none of our checks
        raise DataError(f"{source}: --input takes a file path or -, not a URL")
    return read_table(source, categorical=model.spec.categorical)


def _warn_about(frame: pd.DataFrame, model: Model) -> None:
    spec = model.spec
    used = {*spec.numeric, *spec.categorical}
    extra = [c for c in frame.columns if c not in used]
    if extra:
        print(f"note: ignoring columns not used by the model: {', '.join(extra)}", file=sys.stderr)
    for column, known in zip(spec.categorical, spec.categories):
        if column not in frame.columns:
            continue  # the transform names the missing column
        # Each distinct value once (the first occurrence: an error still names the first bad
        # line): a million rows hold a handful, and spelling every row again cost seconds.
        values = categorical_block(frame[[column]].drop_duplicates(), column)
        unknown = sorted(set(values) - set(known))
        if unknown:
            print(
                f"note: column {column}: unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))} encoded as all zeros (known: {', '.join(known)})",
                file=sys.stderr,
            )
