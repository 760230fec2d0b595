"""predict's out-of-distribution score: how unlike the training patients a row is.

The Mahalanobis distance in the standardized input space, with the training rows'
Ledoit-Wolf covariance (the one-hot columns make the plain one singular), turned into a
conformal p-value against held-out in-distribution rows (the validation split): the share
of them at least as far out, counting the row. Chosen by measurement (benchmarks/ood.py,
docs/results.md): on the default data it separated the not-measured-cholesterol cohort
best of four scores (AUROC 0.63, which is weak), and catches gross errors (noise of 2 SD:
0.91; cholesterol in mmol/L: 0.93).

A row with a p-value below ALPHA is flagged: about 1 in 20 rows like the validation rows
is flagged too, by construction, so a flag asks for a second look, not a refusal.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topoxai import conformal
from topoxai.errors import UserError

OOD_FILE = "ood.json"  # in the model folder, hashed in the card
ALPHA = 0.05


@dataclass(frozen=True)
class Distance:
    location: list[float]
    precision: list[list[float]]
    calibration: list[float]  # the held-out rows' distances, sorted

    def score(self, x: np.ndarray) -> np.ndarray:
        """Each row's Mahalanobis distance from the training rows' centre."""
        d = np.asarray(x, dtype=np.float64) - np.asarray(self.location)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, np.asarray(self.precision), d), 0))

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-values: (#{held-out distances >= the row's} + 1) / (n + 1)."""
        return conformal.p_values(self.calibration, scores)

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "location": self.location,
                    "precision": self.precision,
                    "calibration": self.calibration,
                }
            )
            + "\n"
        )

    @classmethod
    def load(cls, path: Path) -> "Distance":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            distance = cls(
                location=[float(v) for v in raw["location"]],
                precision=[[float(v) for v in row] for row in raw["precision"]],
                calibration=[float(v) for v in raw["calibration"]],
            )
            n = len(distance.location)
            if np.asarray(distance.precision).shape != (n, n) or not distance.calibration:
                raise ValueError("shapes")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}: not an ood calibration ({err})") from None
        return distance


def fit(train: np.ndarray, held_out: np.ndarray) -> Distance:
    """The distance of the training rows' features, calibrated on held-out rows' features."""
    from sklearn.covariance import LedoitWolf

    cov = LedoitWolf().fit(np.asarray(train, dtype=np.float64))
    distance = Distance(cov.location_.tolist(), cov.precision_.tolist(), [])
    return Distance(
        distance.location, distance.precision, np.sort(distance.score(held_out)).tolist()
    )
