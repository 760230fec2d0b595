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


def test_grouped_attributions_of_a_linear_network_are_weight_times_difference():
    """A network whose output is linear in its inputs, w . x + c, attributed as it is (no
    softmax): each raw feature gets the sum over its columns of w * (x - baseline), and the
    features sum to f(x) - f(baseline), from the baseline predict measures from."""
    frame = pd.DataFrame(
        {"age": [50.0, 60.0, 70.0], "sex": ["M", "F", "M"], "pain": ["ASY", "NAP", "TA"]}
    )
    spec = fit_preprocessor(
        frame.assign(t=[0, 1, 0]), target="t", categorical=["sex", "pain"], source_sha256="s"
    )
    net = nn.Linear(6, 1).double()
    weights = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 0.25])
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(weights[None]))
        net.bias.fill_(0.7)
    model = nn.Sequential(net, nn.Flatten(0))  # one output per row
    x = spec.transform(frame.iloc[[0, 1, 2]])
    baseline = attribution.even_reference(spec)
    groups = attribution.feature_groups(spec)
    got = attribution.grouped(
        attribution.integrated_gradients(model, x, baseline, steps=4), list(groups.values())
    )
    each = weights * (x - baseline)
    expected = np.stack([each[:, g].sum(axis=1) for g in groups.values()], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Row 1 by hand: age 60 is the mean (0); sex F against (1/2, 1/2); pain NAP against 1/3 each.
    sex = -1.0 * (1 - 1 / 2) + 0.5 * (0 - 1 / 2)
    pain = 3.0 * (0 - 1 / 3) - 2.0 * (1 - 1 / 3) + 0.25 * (0 - 1 / 3)
    np.testing.assert_allclose(got[1], [0.0, sex, pain], rtol=1e-6)
    with torch.no_grad():
        gap = model(torch.as_tensor(x)) - model(torch.as_tensor(baseline))
    np.testing.assert_allclose(got.sum(axis=1), gap.numpy(), rtol=1e-6)  # completeness


def test_even_reference_is_the_training_mean_and_an_even_mix_of_categories():
    frame = pd.DataFrame({"age": [50.0, 60.0, 76.0], "pain": ["ASY", "NAP", "TA"], "t": [0, 1, 0]})
    spec = fit_preprocessor(frame, target="t", categorical=["pain"], source_sha256="s")
    np.testing.assert_allclose(attribution.even_reference(spec), [[0.0, 1 / 3, 1 / 3, 1 / 3]])
    # The numeric part is the standardized training mean: 62 years in raw units.
    mean = spec.transform(pd.DataFrame({"age": [62.0], "pain": ["ASY"]}))
    assert mean[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_integrated_gradients_in_chunks_are_the_rows_of_one_batch(monkeypatch):
    torch.manual_seed(0)
    model = attribution.positive_probability(
        nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    )
    x = np.random.default_rng(0).normal(size=(7, 3))
    baseline = np.zeros((1, 3))
    whole = attribution.integrated_gradients(model, x, baseline, steps=5)
    monkeypatch.setattr(attribution, "PATH_POINTS", 11)  # 2 rows per call, the last 1 alone
    np.testing.assert_allclose(
        attribution.integrated_gradients(model, x, baseline, steps=5), whole, rtol=1e-12
    )


def test_grouped_keeps_the_sign_and_the_row():
    attributions = np.array([[1.0, -3.0, 2.0], [3.0, 1.0, -2.0]])
    got = attribution.grouped(attributions, [[0, 1], [2]])
    np.testing.assert_array_equal(got, [[-2.0, 2.0], [4.0, -2.0]])


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
