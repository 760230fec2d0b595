"""`topoxai update`: a model folder updated on a new site's own labelled rows, written as a
new folder (topoxai.recalibration: the recalibration and the conformal sets; here the
out-of-distribution calibration, the card and the files)."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topoxai.errors import DataError
from topoxai.files import sha256_file
from topoxai.recalibration import (
    check_rows,
    conformal_rows,
    fit_recalibration,
    fold_into,
    recalibrate_sets,
)


def labels(frame: pd.DataFrame, spec: Any, source: str) -> np.ndarray:
    """The rows' class indices (1: the positive class), or DataError: no target column, an
    empty target, a label the model does not know."""
    if spec.target not in frame.columns:
        raise DataError(
            f"{source}: no column {spec.target} (the target): update needs labelled rows"
        )
    if frame[spec.target].isna().any():
        i = int(np.argmax(frame[spec.target].isna().to_numpy()))
        raise DataError(f"{source}: column {spec.target}, row {i + 1}: an empty target value")
    return spec.encode_target(frame)


def update_model(model_dir: str | Path, rows: str | Path, out: str | Path) -> dict[str, Any]:
    """Write `out`: the model folder `model_dir` updated on the labelled rows of the CSV `rows`
    (the raw columns and the target). Returns the new card. DataError or ModelError, and
    nothing written, on bad input."""
    from topoxai import ood
    from topoxai.artifacts import INITIAL, WEIGHTS, load_initial, load_model, save_model
    from topoxai.model import MLP
    from topoxai.predict import features_of, positive_probability, read_rows

    model_dir, rows, out = Path(model_dir), Path(rows), Path(out)
    if out.resolve() == model_dir.resolve():
        raise DataError(f"update: --output {out} is the model folder itself; name a new folder")
    model = load_model(model_dir)
    spec = model.spec
    frame = read_rows(rows, model)
    y = labels(frame, spec, str(rows))
    check_rows(y)
    x = features_of(model, frame, warn=False)
    p = positive_probability(model, x)
    recalibration = fit_recalibration(y, p)
    updated = recalibration.apply(p)
    notes: dict[str, Any] = {}
    conformal = model.conformal
    if conformal is not None:
        conformal, notes["conformal"] = recalibrate_sets(conformal, recalibration, y, updated)
    distance = model.ood
    if distance is not None:
        need = conformal_rows(1 - ood.ALPHA)
        if len(y) >= need:
            scores = np.sort(distance.score(x.numpy())).tolist()
            distance = ood.Distance(distance.location, distance.precision, scores)
            notes["ood"] = f"recalibrated on the {len(y)} rows"
        else:
            notes["ood"] = f"kept: {len(y)} rows, {need} needed to flag any row at {ood.ALPHA:g}"
    net = MLP.from_architecture(model.card["architecture"])
    net.load_state_dict(fold_into(model.net.state_dict(), recalibration))
    initial = load_initial(model_dir, model.card).state_dict()
    card = {k: v for k, v in model.card.items() if k not in ("format_version", "files")}
    card["update"] = {
        "from": {
            "folder": str(model_dir),
            "weights_sha256": model.card["files"][WEIGHTS]["sha256"],
            "initial_sha256": model.card["files"].get(INITIAL, {}).get("sha256"),
            "update": model.card.get("update"),  # an earlier update, if this folder had one
        },
        "rows": {
            "file": str(rows),
            "sha256": sha256_file(rows),
            "per_class": [int(np.sum(y == 0)), int(np.sum(y == 1))],  # in `classes` order
        },
        "method": recalibration.method,
        "intercept": round(recalibration.intercept, 6),
        "intercept_se": round(recalibration.intercept_se, 6),
        "slope": round(recalibration.slope, 6),
        "slope_se": None if recalibration.slope_se is None else round(recalibration.slope_se, 6),
        **notes,
    }
    return save_model(out, net, spec, card, initial=initial, conformal=conformal, ood=distance)
