"""Mapper graphs of a layer's activations (Kepler Mapper), and where the errors sit in them.

The lens is the predicted probability and a principal component of the activations
(Saul & Arendt 2018; Rathore et al., TopoAct 2021). Misclassified rows that gather in
nodes mixing both labels point at the regions the model finds hard (Liu, Dey & Gleich,
Nature Machine Intelligence 2023).
"""

from dataclasses import dataclass
from typing import Any

import kmapper
import numpy as np
from matplotlib.figure import Figure
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist
from sklearn.cluster import DBSCAN
from sklearn.decomposition import PCA


@dataclass(frozen=True)
class MapperGraph:
    nodes: list[np.ndarray]  # the row indices in each node
    edges: list[tuple[int, int]]  # pairs of node indices that share rows
    kepler: dict[str, Any]  # Kepler Mapper's own graph, for its HTML view


def lens(activations: np.ndarray, probability: np.ndarray, random_state: int) -> np.ndarray:
    """The predicted probability, and the first principal component of what it leaves out.

    In a trained network's last layer the plain first component mostly restates the
    probability (correlation -0.975 on the default model), which would squeeze the 2-D
    cover onto its diagonal; removing the activations' linear trend in the probability
    first gives the second lens axis something new to show.
    """
    centred = probability - probability.mean()
    residual = activations - activations.mean(axis=0)
    if centred.any():
        trend = residual.T @ centred / (centred @ centred)  # least squares, per activation
        residual = residual - np.outer(centred, trend)
    component = PCA(n_components=1, random_state=random_state).fit_transform(residual)
    return np.column_stack([probability, component[:, 0]])


def build(
    activations: np.ndarray,
    lens: np.ndarray,
    *,
    cubes: int,
    overlap: float,
    eps_quantile: float,
    min_samples: int,
) -> MapperGraph:
    """Cover the lens with `cubes` overlapping intervals per axis; DBSCAN inside each cube.

    DBSCAN's radius is a quantile of all pairwise distances, so that it follows the
    layer's scale (which changes with width and with training).
    """
    eps = float(np.quantile(pdist(activations), eps_quantile))
    graph = kmapper.KeplerMapper(verbose=0).map(
        lens,
        activations,
        cover=kmapper.Cover(n_cubes=cubes, perc_overlap=overlap),
        clusterer=DBSCAN(eps=max(eps, 1e-12), min_samples=min_samples),
    )
    names = list(graph["nodes"])
    index = {name: i for i, name in enumerate(names)}
    nodes = [np.asarray(sorted(graph["nodes"][name]), dtype=np.int64) for name in names]
    edges = [(index[a], index[b]) for a, targets in graph["links"].items() for b in targets]
    return MapperGraph(nodes, sorted(edges), graph)


def summary(graph: MapperGraph, labels: np.ndarray, errors: np.ndarray) -> dict[str, float | int]:
    """Size, components, label purity, and how much more often errors sit in impure nodes."""
    purity = [_purity(labels[members]) for members in graph.nodes]
    impure = _rows_in(graph, [p < 1.0 for p in purity], len(labels))
    return {
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "components": components(graph),
        "purity": float(np.mean(purity)) if purity else 0.0,
        "errors": int(errors.sum()),
        # Compared with the share of all rows in impure nodes: errors "localise" when the
        # first is well above the second.
        "error_share_impure": float(impure[errors].mean()) if errors.any() else 0.0,
        "row_share_impure": float(impure.mean()),
    }


def components(graph: MapperGraph) -> int:
    n = len(graph.nodes)
    if n == 0:
        return 0
    pairs = np.array(graph.edges, dtype=np.int64).reshape(-1, 2)
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return int(connected_components(adjacency, directed=False)[0])


def error_rows(graph: MapperGraph, errors: np.ndarray) -> np.ndarray:
    """Rows that belong to a node whose error rate is above the overall error rate."""
    rate = errors.mean()
    return _rows_in(graph, [errors[m].mean() > rate for m in graph.nodes], len(errors))


def over_representation(
    features: np.ndarray, inside: np.ndarray, groups: list[list[int]]
) -> np.ndarray:
    """Per group of columns: the largest |standardized mean difference| inside vs all rows.

    For a one-hot column that is the shift in a category's share, in units of its
    standard deviation, so numeric and categorical features share one scale.
    """
    if not inside.any():
        return np.zeros(len(groups))
    std = features.std(axis=0)
    shift = features[inside].mean(axis=0) - features.mean(axis=0)
    smd = np.divide(shift, std, out=np.zeros_like(shift), where=std > 0)
    return np.array([np.abs(smd[columns]).max() for columns in groups])


def html(
    graph: MapperGraph,
    *,
    probability: np.ndarray,
    errors: np.ndarray,
    features: np.ndarray,
    feature_names: list[str],
    lens: np.ndarray,
    tooltips: list[str],
    title: str,
) -> str:
    """Kepler Mapper's interactive page (it loads d3 from a CDN), nodes coloured two ways.

    The page holds node statistics at full float precision; the model-derived values go in
    rounded to 6 decimals, so float noise from another CPU cannot change the page's bytes.
    """
    probability, lens = np.round(probability, 6), np.round(lens, 6)
    # A column constant over the rows (a "was missing" indicator that no test row has) has
    # no spread: kmapper divides by it and warns once per node; its page shows nan there.
    with np.errstate(divide="ignore", invalid="ignore"):
        page = kmapper.KeplerMapper(verbose=0).visualize(
            graph.kepler,
            color_values=np.column_stack([probability, errors.astype(float)]),
            color_function_name=["predicted probability", "misclassified"],
            X=features,
            X_names=feature_names,
            lens=lens,
            lens_names=["probability", "residual PC1"],
            custom_tooltips=np.array(tooltips),
            title=title,
            save_file=False,
        )
    return str(page)


def plot(
    graph: MapperGraph, lens: np.ndarray, probability: np.ndarray, errors: np.ndarray
) -> Figure:
    """The graph twice, nodes at their mean lens value: coloured by probability, by error rate."""
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    xy = np.array([lens[m].mean(axis=0) for m in graph.nodes]).reshape(-1, 2)
    size = np.array([20 + 12 * len(m) for m in graph.nodes])
    colours = [
        ("mean predicted probability", [probability[m].mean() for m in graph.nodes], "coolwarm"),
        ("error rate", [errors[m].mean() for m in graph.nodes], "Reds"),
    ]
    for ax, (name, values, cmap) in zip(axes, colours):
        for a, b in graph.edges:
            ax.plot(*xy[[a, b]].T, color="0.7", lw=0.8, zorder=1)
        dots = ax.scatter(*xy.T, s=size, c=values, cmap=cmap, vmin=0, vmax=1,
                          edgecolors="0.2", linewidths=0.5, zorder=2)  # fmt: skip
        fig.colorbar(dots, ax=ax, label=name)
        ax.set_xlabel("lens 1: predicted probability (node mean)")
        ax.set_title(f"Mapper nodes coloured by {name}")
    axes[0].set_ylabel("lens 2: PC1 of the rest of the activations (node mean)")
    return fig


def _purity(labels: np.ndarray) -> float:
    return float(np.unique(labels, return_counts=True)[1].max() / len(labels))


def _rows_in(graph: MapperGraph, chosen: list[bool], n_rows: int) -> np.ndarray:
    rows = np.zeros(n_rows, dtype=bool)
    for members, take in zip(graph.nodes, chosen):
        if take:
            rows[members] = True
    return rows
