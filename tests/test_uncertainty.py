"""Topological Uncertainty: spanning trees against scipy's, distances by hand."""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from topoxai.explain.topological_uncertainty import TopologicalUncertainty, spanning_weights
from topoxai.explain.topology import bipartite_spanning_tree


def _scipy_weights(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The maximum spanning tree of one row's bipartite graph, by scipy (a minimum tree of
    top - weight), sorted."""
    n_out, n_in = weight.shape
    w = np.abs(weight * x[None, :])
    top = w.max() + 1.0
    rows = np.repeat(np.arange(n_out), n_in) + n_in
    cols = np.tile(np.arange(n_in), n_out)
    graph = coo_matrix(((top - w).ravel(), (rows, cols)), shape=(n_in + n_out,) * 2).tocsr()
    return np.sort(top - minimum_spanning_tree(graph).data)


def test_spanning_weights_are_scipys_maximum_spanning_tree():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(30, 12))
    x = np.maximum(rng.normal(size=(300, 12)), 0)  # ReLU activations: zeros included
    x[0, :] = rng.random(12) + 0.1  # and one row without any
    ours = spanning_weights(weight, x)
    assert ours.shape == (300, 41)
    for b in (0, 1, 150, 299):
        np.testing.assert_allclose(ours[b], _scipy_weights(weight, x[b]), rtol=1e-12)
        # the one-row spanning tree neural persistence uses, on the row's weighted graph
        one = bipartite_spanning_tree(np.abs(weight) * x[b][None, :])
        np.testing.assert_allclose(ours[b], np.sort(one), rtol=1e-12)


def test_the_score_is_the_distance_to_the_predicted_classs_mean_diagram():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(4, 3))
    train = np.abs(rng.normal(size=(40, 3)))
    predicted = np.repeat([0, 1], 20)
    tu = TopologicalUncertainty.fit([(weight, train)], predicted)
    diagrams = spanning_weights(weight, train)
    np.testing.assert_allclose(tu.means[0][1], diagrams[20:].mean(axis=0))
    new = np.abs(rng.normal(size=(5, 3)))
    labels = np.array([0, 1, 1, 0, 1])
    expected = np.abs(spanning_weights(weight, new) - tu.means[0][labels]).mean(axis=1)
    np.testing.assert_allclose(tu.score([(weight, new)], labels), expected)
    # A row scaled up is further from the training rows' diagrams than the rows themselves.
    assert (
        tu.score([(weight, 10 * train[:1])], predicted[:1])[0]
        > tu.score([(weight, train[:1])], predicted[:1])[0]
    )
