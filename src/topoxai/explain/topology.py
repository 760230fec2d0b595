"""Persistent homology of point clouds (Naitzat et al. 2020) and of weights (Rieck et al. 2019).

Arrays in, diagrams, numbers and figures out: which points and which network they come
from is `topoxai.explain`'s business.
"""

from typing import TYPE_CHECKING

import numpy as np
from ripser import ripser
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from sklearn.neighbors import NearestNeighbors

from topoxai.explain import seeds

if TYPE_CHECKING:  # the explain stage's workers import this module and never plot
    from matplotlib.figure import Figure


def knn_hops(points: np.ndarray, k: int) -> np.ndarray:
    """Hop counts between the distinct rows of `points` in their symmetric k-NN graph.

    The measurement of Naitzat, Zhitnikov & Lim (JMLR 2020; the authors' betti_calc.py):
    duplicate rows removed, each row joined to its k nearest others, edges unweighted, and
    the distance between two rows the fewest edges between them (inf between components).
    Hop counts do not see how far a layer stretches one region and crushes another, which
    Euclidean edge lengths do: a trained ReLU network's deep layers spread a class's graph
    over thousands of median edges, and a length-based filtration then reads one connected
    class as a hundred pieces. A class collapsed to fewer than k + 1 distinct rows is joined
    to all of them.

    The result is dense, n² float64 over the distinct rows, because Rips persistence needs
    every pair within its range; so n must be bounded (the explain stage passes at most
    `explain.max_points` rows per class: 400 rows, 1.3 MB).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")
    distinct = np.unique(points, axis=0)
    n = len(distinct)
    k = min(k, n - 1)
    if k == 0:  # a single distinct row
        return np.zeros((1, 1))
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(distinct).kneighbors(distinct)[1]
    # Column 0 is each row itself (rows are distinct); drop self-loops wherever they are.
    rows, cols = np.repeat(np.arange(n), k + 1), neighbours.ravel()
    keep = rows != cols
    graph = coo_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    return shortest_path(graph, directed=False, unweighted=True)


def persistence(distances: np.ndarray, max_scale: float, maxdim: int = 1) -> list[np.ndarray]:
    """Vietoris-Rips persistence diagrams in dimensions 0 to `maxdim`, up to `max_scale`.

    Bars still alive at `max_scale` (and between points at distance inf) end at inf.
    Dimension 2 is left out by default: at 3 hops with k = 14 it costs 7 to 20 times as much
    (300 points of a sphere: 0.8 s against 0.04 s; D-III's 4,050: 11.5 s against 1.6 s).
    """
    result = ripser(distances, maxdim=maxdim, distance_matrix=True, thresh=max_scale)
    return [np.asarray(d, dtype=np.float64) for d in result["dgms"]]


def knn_persistence(
    points: np.ndarray, k: int, max_scale: float, maxdim: int = 1
) -> list[np.ndarray]:
    """`persistence(knn_hops(points, k), max_scale, maxdim)`: one job of the explain stage's
    pool."""
    return persistence(knn_hops(points, k), max_scale, maxdim)


def betti_numbers(diagrams: list[np.ndarray], scale: float) -> list[int]:
    """Betti numbers at `scale`: the bars of each dimension alive there (birth <= s < death).

    With hop distances, the Rips complex at `explain.hops`: tests/test_topology_shapes.py
    states the k, scale and numbers of points at which this recovers known shapes.
    """
    return [int(betti_curve(d, np.array([scale]))[0]) for d in diagrams]


def betti_curve(diagram: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Number of bars alive (birth <= s < death) at each scale s."""
    births, deaths = diagram[:, 0], diagram[:, 1]
    alive = (births[None, :] <= scales[:, None]) & (scales[:, None] < deaths[None, :])
    return alive.sum(axis=1)


def neural_persistence(weights: list[np.ndarray]) -> list[float]:
    """Normalised neural persistence of each weight matrix (Rieck et al., ICLR 2019).

    Each layer is a complete bipartite graph (inputs x outputs) whose edges enter a
    superlevel filtration in order of |w| / max|w|, the maximum taken over the whole
    network as in the paper. Every vertex is born at 1; the 0-dimensional bars end at the
    edges of a maximum spanning tree, so persistence = 1 - weight for each tree edge.
    Returned: the 2-norm of those persistences over its upper bound sqrt(|V| - 1), in [0, 1].
    """
    largest = max(float(np.abs(w).max()) for w in weights)
    if largest == 0:
        return [0.0 for _ in weights]
    return [_layer_persistence(np.abs(w) / largest) for w in weights]


def _layer_persistence(normalised: np.ndarray) -> float:
    persistences = 1.0 - bipartite_spanning_tree(normalised)
    n_out, n_in = normalised.shape
    return float(np.linalg.norm(np.sort(persistences)) / np.sqrt(n_out + n_in - 1))


def bipartite_spanning_tree(weights: np.ndarray) -> np.ndarray:
    """Edge weights of a maximum spanning tree of the complete bipartite graph `weights`.

    Prim's algorithm on the dense matrix (outputs x inputs), started at output 0: O(V²)
    vectorised steps, 5x faster than scipy's sparse Kruskal on a 1000 x 1000 layer. Every
    maximum spanning tree has the same multiset of edge weights, so neural persistence does
    not depend on which one is found.
    """
    rows, cols = weights.astype(np.float64), weights.T.astype(np.float64)  # both contiguous
    best_out = np.full(rows.shape[0], -np.inf)  # the heaviest edge from each vertex to the tree
    best_in = rows[0].copy()
    best_out[0], cols[:, 0] = -np.inf, -np.inf  # output 0 is in the tree: never chosen again
    tree = np.empty(sum(rows.shape) - 1)
    for step in range(len(tree)):
        i, j = int(best_out.argmax()), int(best_in.argmax())
        if best_out[i] >= best_in[j]:
            tree[step] = best_out[i]
            best_out[i], cols[:, i] = -np.inf, -np.inf
            np.maximum(best_in, rows[i], out=best_in)
        else:
            tree[step] = best_in[j]
            best_in[j], rows[:, j] = -np.inf, -np.inf
            np.maximum(best_out, cols[j], out=best_out)
    return tree


def shuffled_persistence(weights: list[np.ndarray], seed: int, draws: range) -> list[list[float]]:
    """Neural persistence of the network with each layer's weights shuffled, per draw.

    Girrbach et al. (TMLR 2023) show neural persistence mostly tracks the weights' variance,
    so it means something only beside a control with the same variance and no structure:
    the same values in random places keep the variance and the largest |w| (the
    normaliser). Gaussian draws with the layer's variance would not: their network-wide
    largest |w| differs, and so does every normalised weight (the default model's first
    layer, still near its uniform initialisation, scores 0.07, and 0.49 as a Gaussian).
    Draw i uses the generator [seed, seeds.SHUFFLES, i], so a draw is the same whichever
    process computes it (one job of the explain stage's pool).
    """
    result = []
    for i in draws:
        rng = np.random.default_rng([seed, seeds.SHUFFLES, i])
        shuffled = [rng.permutation(w.ravel()).reshape(w.shape) for w in weights]
        result.append(neural_persistence(shuffled))
    return result


def plot_diagrams(grid: dict[str, dict[str, list[np.ndarray]]], max_scale: float) -> "Figure":
    """Persistence diagrams (H0, H1), one panel per row key x column key; inf drawn on top."""
    from matplotlib.figure import Figure

    rows, columns = list(grid), list(next(iter(grid.values())))
    width, height = 2.6 * len(columns), 2.5 * len(rows)
    fig = Figure(figsize=(width, height))
    # Fixed margins (inches) rather than a layout engine: constrained layout took 2 of the
    # stage's seconds on this grid, and the panels are all alike.
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.1 / width, bottom=0.45 / height,
                        top=1 - 0.3 / height, wspace=0.08, hspace=0.3)  # fmt: skip
    axes = fig.subplots(len(rows), len(columns), sharex=True, sharey=True, squeeze=False)
    top = 1.08 * max_scale  # where bars that never die are drawn
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = axes[i, j]
            ax.plot([0, top], [0, top], color="0.6", lw=0.8)
            ax.axhline(top, color="0.6", lw=0.8, ls="--")
            for dim, diagram in enumerate(grid[row][column]):
                deaths = np.where(np.isinf(diagram[:, 1]), top, diagram[:, 1])
                ax.scatter(diagram[:, 0], deaths, s=6, alpha=0.6, label=f"H{dim}")
            ax.set_title(f"{row}: {column}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("birth")
    for ax in axes[:, 0]:
        ax.set_ylabel("death (dashed: never)")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    return fig


def plot_neural_persistence(
    layers: list[str], persistence: dict[str, list[float]], weight_std: dict[str, list[float]]
) -> "Figure":
    """Normalised neural persistence and weight standard deviation per layer, side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.arange(len(layers))
    width = 0.8 / len(persistence)
    for ax, values, title in (
        (axes[0], persistence, "normalised neural persistence"),
        (axes[1], weight_std, "weight standard deviation"),
    ):
        for i, (network, series) in enumerate(values.items()):
            ax.bar(x + (i - (len(values) - 1) / 2) * width, series, width, label=network)
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer (the weights that produce it)")
        ax.set_title(title)
    axes[0].legend()
    return fig
