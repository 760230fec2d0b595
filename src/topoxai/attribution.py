"""Non-topological baselines: integrated gradients and grouped permutation importance.

Both are reported per raw feature (the one-hot columns of a categorical count as one),
so that they can be ranked against the Mapper error-region features.
"""

import numpy as np
import torch
from captum.attr import IntegratedGradients
from scipy.stats import spearmanr
from torch import nn

from topoxai.features import Preprocessor


def feature_groups(spec: Preprocessor) -> dict[str, list[int]]:
    """Raw feature -> its column indices in the network's input (one-hot columns together)."""
    groups = {name: [i] for i, name in enumerate(spec.numeric)}
    start = len(spec.numeric)
    for name, categories in zip(spec.categorical, spec.categories):
        groups[name] = list(range(start, start + len(categories)))
        start += len(categories)
    return groups


def positive_probability(net: nn.Module) -> nn.Module:
    """The network's probability of the last class, as one output per row."""
    return nn.Sequential(net, nn.Softmax(dim=1), _Last())


def integrated_gradients(
    model: nn.Module, x: np.ndarray, baseline: np.ndarray, steps: int
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) of a one-output model, per row and column."""
    dtype = _dtype(model)  # the network's: float64 in the explain stage
    inputs = torch.as_tensor(x, dtype=dtype)
    base = torch.as_tensor(baseline, dtype=dtype).expand_as(inputs)
    attributions = IntegratedGradients(model).attribute(inputs, base, n_steps=steps)
    return attributions.detach().numpy().astype(np.float64)


def group_attributions(attributions: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Mean over rows of |sum of a group's attributions| (a one-hot group acts as one input)."""
    return np.array([np.abs(attributions[:, g].sum(axis=1)).mean() for g in groups])


@torch.no_grad()
def permutation_importance(
    net: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    groups: list[list[int]],
    repeats: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean rise in cross-entropy when a group's columns are shuffled across rows together.

    Shuffling a one-hot group as a block keeps every row a valid category; shuffling its
    columns one by one would make rows with two categories or none.
    """
    dtype = _dtype(net)
    inputs = torch.as_tensor(x, dtype=dtype)
    target = torch.as_tensor(y, dtype=torch.int64)
    base = nn.functional.cross_entropy(net(inputs), target).item()
    rises = []
    for columns in groups:
        # A group's shuffled copies go through the network as one batch.
        copies = np.repeat(x[None], repeats, axis=0)
        for copy in copies:
            copy[:, columns] = x[rng.permutation(len(x))][:, columns]
        logits = net(torch.as_tensor(copies.reshape(-1, x.shape[1]), dtype=dtype))
        loss = nn.functional.cross_entropy(logits, target.repeat(repeats)).item()
        rises.append(loss - base)
    return np.array(rises)


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of two importance vectors; None where a ranking is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _dtype(net: nn.Module) -> torch.dtype:
    weight = next(net.parameters(), None)
    return torch.get_default_dtype() if weight is None else weight.dtype


class _Last(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]
