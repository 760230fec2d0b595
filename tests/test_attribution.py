"""topoxai.attribution: known attributions, grouped permutation, rank agreement."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from topoxai import attribution
from topoxai.features import fit_preprocessor


def test_feature_groups_keep_one_hot_columns_together():
    frame = pd.DataFrame(
        {"age": [50.0, 60.0], "sex": ["M", "F"], "pain": ["ASY", "NAP"], "t": [0, 1]}
    )
    spec = fit_preprocessor(frame, target="t", categorical=["sex", "pain"], source_sha256="s")
    assert spec.feature_names == ["age", "sex=F", "sex=M", "pain=ASY", "pain=NAP"]
    assert attribution.feature_groups(spec) == {"age": [0], "sex": [1, 2], "pain": [3, 4]}


class _Linear(nn.Module):
    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.w = torch.tensor(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_integrated_gradients_of_a_linear_model_are_input_times_weight():
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    baseline = np.array([[0.5, 1.0, 0.0]])
    weights = [2.0, -1.0, 0.5]
    got = attribution.integrated_gradients(_Linear(weights), x, baseline, steps=5)
    np.testing.assert_allclose(got, (x - baseline) * weights, rtol=1e-6)


def test_integrated_gradients_complete_on_the_mlp_probability():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    model = attribution.positive_probability(net)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    baseline = np.zeros((1, 3), dtype=np.float32)
    got = attribution.integrated_gradients(model, x, baseline, steps=200)
    with torch.no_grad():
        gap = model(torch.as_tensor(x)) - model(torch.as_tensor(baseline))
    np.testing.assert_allclose(got.sum(axis=1), gap.numpy(), atol=1e-3)  # completeness


def test_group_attributions_sum_within_a_row_before_the_absolute_value():
    attributions = np.array([[1.0, -1.0, 2.0], [3.0, 1.0, -2.0]])
    got = attribution.group_attributions(attributions, [[0, 1], [2]])
    np.testing.assert_allclose(got, [(0 + 4) / 2, (2 + 2) / 2])


class _UsesDifference(nn.Module):
    """Logits that depend on x0 only, and on x1 - x2 (zero when the pair moves together)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 3 * x[:, 0] + 5 * (x[:, 1] - x[:, 2])
        return torch.stack([torch.zeros_like(score), score], dim=1)


def test_permutation_importance_shuffles_a_group_as_one_block():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    x[:, 2] = x[:, 1]  # the pair (1, 2) always moves together, so x1 - x2 stays 0
    y = (x[:, 0] > 0).astype(np.int64)
    groups = [[0], [1, 2], [3]]
    got = attribution.permutation_importance(_UsesDifference(), x, y, groups, 5, rng)
    assert got[0] > 0.5  # the feature the model uses
    assert got[1] == pytest.approx(0.0, abs=1e-6)  # shuffled as a block: no change at all
    assert got[2] == pytest.approx(0.0, abs=1e-6)  # unused
    again = attribution.permutation_importance(
        _UsesDifference(), x, y, groups, 5, np.random.default_rng(1)
    )
    assert again[1] == pytest.approx(0.0, abs=1e-6) and again[0] != got[0]


def test_rank_agreement():
    assert attribution.rank_agreement(np.array([1, 2, 3]), np.array([10, 20, 30])) == 1.0
    assert attribution.rank_agreement(np.array([1, 2, 3]), np.array([3, 2, 1])) == -1.0
    assert attribution.rank_agreement(np.array([1, 2, 3]), np.array([0, 0, 0])) is None
