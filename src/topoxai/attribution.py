"""Non-topological baselines: integrated gradients and grouped permutation importance.

Both are reported per raw feature (the one-hot columns of a categorical count as one),
so that they can be ranked against the Mapper error-region features. Integrated gradients
also explain single rows in `topoxai predict --explain`, so this module needs only torch
and numpy: the core install has nothing more.
"""

import numpy as np
import torch
from torch import nn

from topoxai.features import Preprocessor
from topoxai.progress import bar

# Points on the integration paths per forward and backward call: with a 1000-wide hidden layer
# one call's activations stay near 100 MB (steps x rows x width), however many rows there are.
PATH_POINTS = 8192


def feature_groups(spec: Preprocessor) -> dict[str, list[int]]:
    """Raw feature -> its column indices in the network's input (one-hot columns together,
    and its "was missing" indicator, if it has one)."""
    groups = {name: [i] for i, name in enumerate(spec.numeric)}
    start = len(spec.numeric)
    for name, categories in zip(spec.categorical, spec.categories):
        groups[name] = list(range(start, start + len(categories)))
        start += len(categories)
    for j, name in enumerate(spec.indicators):
        groups[name].append(start + j)
    return groups


def even_reference(spec: Preprocessor) -> np.ndarray:
    """The reference of per-row explanations, as one network input row: every numeric at its
    training mean (0 once standardized), every categorical an even mix of its categories
    (1/k in each of its k one-hot columns), every value measured.

    The explain stage measures from the mean training row instead, whose one-hot part is the
    categories' training frequencies; a model folder does not record those, so a row scored
    from the folder alone is measured from this one.
    """
    numeric = np.zeros(len(spec.numeric))
    onehot = [np.full(len(categories), 1 / len(categories)) for categories in spec.categories]
    measured = np.zeros(len(spec.indicators))  # the reference patient's values were measured
    return np.concatenate([numeric, *onehot, measured])[None]


def positive_probability(net: nn.Module) -> nn.Module:
    """The network's probability of the last class, as one output per row."""
    return nn.Sequential(net, nn.Softmax(dim=1), _Last())


def integrated_gradients(
    model: nn.Module, x: np.ndarray, reference: np.ndarray, steps: int, *, progress: bool = False
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) of a one-output model, per row and column.

    The path integral from `reference` (the paper's "baseline"; one row, or one per row) to
    each row, by `steps`-point Gauss-Legendre quadrature: captum's default rule, which this
    replaced so that predicting needs no extra package. A ReLU network's gradient jumps along
    the path, so the rule converges slowly; the error shows as the gap between the
    attributions' sum and model(x) - model(reference). Rows go PATH_POINTS / steps at a
    time; `progress` shows them on a terminal (`topoxai.progress`).
    """
    dtype = _dtype(model)  # the network's: float64 in the explain stage
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]: map to [0, 1]
    alphas = torch.as_tensor(0.5 * (1 + nodes), dtype=dtype)[:, None, None]
    # float32 weights, as captum had them: the explain stage's outputs kept their bytes.
    step_weights = torch.as_tensor(0.5 * weights, dtype=torch.float32)[:, None, None]
    inputs = torch.as_tensor(x, dtype=dtype)
    base = torch.as_tensor(reference, dtype=dtype).expand_as(inputs)
    rows = max(1, PATH_POINTS // steps)
    # Allocated once: small results kept between the large, freed activations fragmented
    # the heap (10,000 rows took 2 GB, growing with the rows).
    out = torch.empty_like(inputs)
    shown = bar(len(inputs), "explaining", "rows", show=progress)
    for first in range(0, len(inputs), rows):
        end, start = inputs[first : first + rows], base[first : first + rows]
        path = (start + alphas * (end - start)).reshape(-1, inputs.shape[1]).requires_grad_()
        # Each output depends on its own path point only: the gradient of the sum is each one's.
        (grads,) = torch.autograd.grad(model(path).sum(), path)
        total = (grads.view(steps, len(end), -1) * step_weights).sum(dim=0)
        out[first : first + rows] = total * (end - start)
        shown.update(len(end))
    shown.close()
    return out.numpy().astype(np.float64)


def grouped(attributions: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Per row, each group's attributions summed (a one-hot group acts as one input): rows x groups."""
    return np.stack([attributions[:, g].sum(axis=1) for g in groups], axis=1)


def group_attributions(attributions: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Mean over rows of |sum of a group's attributions| (a one-hot group acts as one input)."""
    return np.array([np.abs(column).mean() for column in grouped(attributions, groups).T])


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
    from scipy.stats import spearmanr  # the pipeline's: this module also serves the core install

    return float(spearmanr(a, b).statistic)


def _dtype(net: nn.Module) -> torch.dtype:
    weight = next(net.parameters(), None)
    return torch.get_default_dtype() if weight is None else weight.dtype


class _Last(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]
