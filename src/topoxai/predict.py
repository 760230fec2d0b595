"""Score raw patient rows with a trained model folder: no DVC, git, Lightning or training data."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from topoxai import attribution
from topoxai.artifacts import Model, ModelError, load_model
from topoxai.data import read_table
from topoxai.errors import DataError, UserError
from topoxai.features import categorical_block
from topoxai.model import chunked_logits

# Integrated-gradient steps per row. On the default model's 918 rows, the contributions add
# up to probability - baseline within 0.003 (0.002 at the explain stage's 50 steps, 0.007
# at 16); the cost is linear in steps, and 32 keeps 10,000 rows within 30 s on 2 cores.
STEPS = 32
# Contributions are written to 4 decimals: the quadrature's error is in the third.
DECIMALS = 4


def predict(
    model: Model, frame: pd.DataFrame, *, threshold: float = 0.5, warn: bool = True
) -> pd.DataFrame:
    """Probability of the positive class (the last in the model's classes) and the label.

    Rows go through exactly the preprocess stage's transform; unknown categories become
    all-zero one-hot columns, the same rule training applied to its validation and test rows.
    """
    features = _features(model, frame, warn=warn)
    with torch.no_grad():
        logits = chunked_logits(model.net, features)
        probability = torch.softmax(logits.double(), dim=1)[:, 1].numpy()
    negative, positive = model.spec.classes
    return pd.DataFrame(
        {
            "probability": probability,
            "prediction": np.where(probability >= threshold, positive, negative),
        },
        index=frame.index,
    )


def explain_rows(
    model: Model, frame: pd.DataFrame, *, steps: int = STEPS, warn: bool = True
) -> pd.DataFrame:
    """Each raw feature's signed contribution to each row's probability, from the baseline.

    Integrated gradients of the probability, summed over a categorical's one-hot columns,
    measured from `attribution.even_baseline` (numerics at the training mean, categoricals
    an even mix); per row they add up to probability - `baseline_probability(model)`.
    One column per raw feature, in the model's order, with the frame's index.
    """
    if steps < 1:
        raise UserError(f"steps must be at least 1 (got {steps})")
    features = _features(model, frame, warn=warn).numpy()
    spec = model.spec
    groups = attribution.feature_groups(spec)
    ig = attribution.integrated_gradients(
        attribution.positive_probability(model.net),
        features,
        attribution.even_baseline(spec),
        steps,
    )
    return pd.DataFrame(
        attribution.grouped(ig, list(groups.values())), columns=list(groups), index=frame.index
    )


def baseline_probability(model: Model) -> float:
    """The model's probability at the baseline that `explain_rows` measures from."""
    baseline = attribution.even_baseline(model.spec)
    with torch.no_grad():
        net = attribution.positive_probability(model.net)
        return float(net(torch.as_tensor(baseline, dtype=torch.float32)).double().item())


def top_contributions(
    contributions: pd.DataFrame, frame: pd.DataFrame, model: Model, top: int
) -> pd.DataFrame:
    """Per row, the `top` features with the largest |contribution| (ties: the model's order),
    as topK_feature, topK_value (the row's raw value), topK_contribution, then the rest's sum
    as other_contribution."""
    spec = model.spec
    _check_top(top, contributions.shape[1])
    names = np.array(contributions.columns, dtype=object)
    values = np.stack(
        [frame[c].to_numpy(dtype=object) for c in spec.numeric]
        + [categorical_block(frame, c) for c in spec.categorical],
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
    return pd.DataFrame(table, index=contributions.index)


def predict_csv(
    model_dir: str | Path,
    source: str | Path,
    *,
    threshold: float = 0.5,
    id_columns: list[str] | None = None,
    explain: int | None = None,
) -> pd.DataFrame:
    """Read a CSV of raw rows (`-` for stdin) and return id columns (or `row`) + predictions,
    then, with `explain=N`, the baseline's probability and each row's N top contributions."""
    model = load_model(model_dir)
    frame = read_rows(source, model)
    if id_columns and (missing := [c for c in id_columns if c not in frame.columns]):
        raise DataError(f"--id column {missing[0]} is not in the input")
    if explain is not None:  # before the work, not after it
        _check_top(explain, len(attribution.feature_groups(model.spec)))
    result = predict(model, frame, threshold=threshold)
    parts = [frame[id_columns] if id_columns else pd.DataFrame({"row": frame.index}), result]
    if explain is not None:
        contributions = explain_rows(model, frame, warn=False)  # predict gave the notes
        baseline = pd.Series(baseline_probability(model), index=frame.index)
        parts += [baseline.rename("baseline_probability").to_frame(),
                  top_contributions(contributions, frame, model, explain)]  # fmt: skip
    return pd.concat([p.reset_index(drop=True) for p in parts], axis=1)


def read_rows(source: str | Path, model: Model) -> pd.DataFrame:
    """Raw rows from a CSV file (`-`: stdin), read exactly as the preprocess stage reads them."""
    if "://" in str(source):  # pandas would fetch URLs itself, with none of our checks
        raise DataError(f"{source}: --input takes a file path or -, not a URL")
    return read_table(source, categorical=model.spec.categorical)


def _check_top(top: int, features: int) -> None:
    if not 1 <= top <= features:
        raise UserError(f"--top must be from 1 to {features}, the model's raw features (got {top})")


def _features(model: Model, frame: pd.DataFrame, *, warn: bool) -> torch.Tensor:
    """The network's input for raw rows (float32), after the checks every scoring path makes."""
    spec = model.spec
    if len(spec.classes) != 2:
        raise ModelError(f"predict supports two-class models; this one has {spec.classes}")
    if frame.empty:
        raise DataError("the input has no rows")
    if warn:
        _warn_about(frame, model)
    return torch.as_tensor(spec.transform(frame), dtype=torch.float32)


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
