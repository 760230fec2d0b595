"""Class-conditional ("Mondrian") split conformal prediction sets for a two-class model.

The nonconformity score of label c for a row is 1 - P(c) (crepes' "hinge"). Calibration
keeps, per class, the scores of calibration rows of that class. A new row's p-value for
label c is (#{calibration rows of class c scoring >= its score} + 1) / (n_c + 1), and its
set is every label whose p-value exceeds 1 - level (Vovk's definition). If the calibration
rows and the new row are exchangeable within a class, the set holds the true label with
probability at least `level`, within each class: ceil((n_c + 1) level) / (n_c + 1) exactly
for continuous scores. Nothing is promised for a row unlike the calibration rows, which is
what the domain flags and the ood score are for.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topoxai.errors import UserError

CONFORMAL_FILE = "conformal.json"  # in the model folder, hashed in the card


@dataclass(frozen=True)
class Conformal:
    level: float
    scores: list[list[float]]  # per class index: its calibration rows' scores, sorted

    def p_values(self, proba: np.ndarray) -> np.ndarray:
        """(rows, classes) conformal p-values from (rows, classes) class probabilities."""
        proba = np.asarray(proba, dtype=np.float64)
        out = np.empty(proba.shape)
        for c, calibration in enumerate(self.scores):
            out[:, c] = p_values(calibration, 1 - proba[:, c])
        return out

    def sets(self, p_values: np.ndarray) -> np.ndarray:
        """(rows, classes) booleans: the labels in each row's set."""
        return np.asarray(p_values) > 1 - self.level

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "scores": self.scores}) + "\n"

    @classmethod
    def load(cls, path: Path) -> "Conformal":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            conformal = cls(
                level=float(raw["level"]), scores=[list(map(float, s)) for s in raw["scores"]]
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}: not a conformal calibration ({err})") from None
        if not 0 < conformal.level < 1 or any(
            np.diff(s).min(initial=0) < 0 for s in conformal.scores
        ):
            raise UserError(f"{path}: not a conformal calibration (level or order)")
        return conformal


def p_values(calibration: list[float], scores: np.ndarray) -> np.ndarray:
    """Conformal p-values of `scores` against sorted calibration scores (larger: stranger):
    (#{calibration scores >= the score} + 1) / (n + 1)."""
    ranked = np.asarray(calibration)
    # Scores at or above each: n minus those strictly below it.
    above = len(ranked) - np.searchsorted(ranked, scores, side="left")
    return (above + 1) / (len(ranked) + 1)


def calibrate(proba: np.ndarray, labels: np.ndarray, level: float) -> Conformal:
    """The calibration of rows that trained nothing: (rows, classes) probabilities and
    their class indices."""
    proba, labels = np.asarray(proba, dtype=np.float64), np.asarray(labels)
    scores = [np.sort(1 - proba[labels == c, c]).tolist() for c in range(proba.shape[1])]
    if empty := [c for c, s in enumerate(scores) if not s]:
        raise UserError(f"conformal calibration: no calibration row of class index {empty[0]}")
    return Conformal(level=level, scores=scores)


def describe(sets: np.ndarray, names: list[str]) -> np.ndarray:
    """Each row's set of a two-class model as text, by the classes' names (`Preprocessor.names`):
    "{no heart disease}", "{heart disease}", "{no heart disease, heart disease}" or "{}"."""
    a, b = names
    text = np.array(["{}", "{" + b + "}", "{" + a + "}", "{" + a + ", " + b + "}"], dtype=object)
    sets = np.asarray(sets, dtype=np.int64)
    return text[sets[:, 0] * 2 + sets[:, 1]]
