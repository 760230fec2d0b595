"""Topological Uncertainty (Lacombe, Ike, Carriere, Chazal, Glisse & Umeda, IJCAI 2021).

For each dense layer, a row's activation graph is the complete bipartite graph between the
layer's inputs i and outputs j, edge (i, j) weighted |W_ji x_i|. Its 0-dimensional
persistence diagram under the filtration by decreasing weight is the set of weights of its
maximum spanning tree (every vertex is born at the top; each tree edge kills a component).
Diagrams of one layer all have (inputs + outputs - 1) points on one axis, so their
Wasserstein-1 distance is the mean absolute difference of the sorted weights, and their
Frechet mean is the mean of the sorted weights. A row's score is, per layer, its diagram's
distance to the mean diagram of the training rows of its predicted class, averaged over
the layers: large when the network's activations are unlike those of its training rows.
"""

from dataclasses import dataclass

import numpy as np

# Rows per batch of the spanning trees: each step updates a (rows x vertices) array.
BATCH = 256


def spanning_weights(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(rows, inputs + outputs - 1): each row's maximum spanning tree weights, sorted.

    `weight` is the layer's (outputs, inputs) matrix, `x` the (rows, inputs) activations
    entering it. Per row this is `topology.bipartite_spanning_tree(|weight| * |x_b|)`; here
    Prim's algorithm runs on all rows at once and never materialises a row's graph (edge
    (i, j) of row b is |weight[j, i]| * |x[b, i]|): 3x faster than a row at a time.
    """
    w = np.abs(np.asarray(weight, dtype=np.float64))
    out = []
    for start in range(0, len(x), BATCH):
        out.append(_prim(w, np.abs(np.asarray(x[start : start + BATCH], dtype=np.float64))))
    return np.concatenate(out) if out else np.empty((0, sum(w.shape) - 1))


def _prim(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    n_out, n_in = w.shape
    rows = np.arange(len(x))
    # Best edge into the tree so far: inputs [0, n_in), outputs [n_in, n_in + n_out).
    key = np.full((len(x), n_in + n_out), -np.inf)
    done = np.zeros(key.shape, bool)
    picked = np.empty((len(x), n_in + n_out - 1))
    vertex = np.zeros(len(x), np.int64)  # every tree starts at input 0
    for step in range(n_in + n_out - 1):
        done[rows, vertex] = True
        is_input = vertex < n_in
        # An input i reaches every output j with weight |W_ji| x_i; an output j reaches
        # every input i with |W_ji| x_i.
        if is_input.any():
            b = rows[is_input]
            i = vertex[is_input]
            reach = w[:, i].T * x[b, i][:, None]  # (b, n_out)
            key[b, n_in:] = np.maximum(key[b, n_in:], reach)
        if (~is_input).any():
            b = rows[~is_input]
            j = vertex[~is_input] - n_in
            reach = w[j, :] * x[b, :]  # (b, n_in)
            key[b, :n_in] = np.maximum(key[b, :n_in], reach)
        candidates = np.where(done, -np.inf, key)
        vertex = candidates.argmax(axis=1)
        picked[:, step] = candidates[rows, vertex]
    return np.sort(picked, axis=1)


@dataclass(frozen=True)
class TopologicalUncertainty:
    """The mean diagrams of the training rows, per layer and predicted class."""

    means: list[np.ndarray]  # per layer: (classes, points)

    @classmethod
    def fit(
        cls, layers: list[tuple[np.ndarray, np.ndarray]], predicted: np.ndarray
    ) -> "TopologicalUncertainty":
        """`layers`: per dense layer, (weight, the training rows' activations entering it)."""
        means = []
        for weight, x in layers:
            diagrams = spanning_weights(weight, x)
            means.append(np.stack([diagrams[predicted == c].mean(axis=0) for c in (0, 1)]))
        return cls(means)

    def score(
        self, layers: list[tuple[np.ndarray, np.ndarray]], predicted: np.ndarray
    ) -> np.ndarray:
        """Each row's distance to its predicted class's mean diagrams, averaged over layers."""
        total = np.zeros(len(predicted))
        for (weight, x), mean in zip(layers, self.means):
            diagrams = spanning_weights(weight, x)
            total += np.abs(diagrams - mean[predicted]).mean(axis=1)
        return total / len(self.means)
