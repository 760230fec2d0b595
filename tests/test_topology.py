"""topoxai.explain.topology: hop counts, known diagrams, Betti numbers, neural persistence."""

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree

from topoxai.explain.topology import (
    betti_curve,
    betti_numbers,
    bipartite_spanning_tree,
    knn_hops,
    knn_persistence,
    neural_persistence,
    persistence,
    shuffled_persistence,
)
from topoxai.params import load_params
from topoxai.stats import empirical_p

DEFAULTS = load_params(Path(__file__).resolve().parents[1] / "params.yaml").explain


def lifetimes(diagram: np.ndarray) -> np.ndarray:
    return diagram[:, 1] - diagram[:, 0]


def test_hops_on_a_line_count_edges_whatever_the_spacing():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])  # each row's nearest other is a neighbour
    expected = np.abs(np.arange(4)[:, None] - np.arange(4)[None, :])
    np.testing.assert_array_equal(knn_hops(points, 1), expected)
    np.testing.assert_array_equal(knn_hops(np.exp(points), 1), expected)  # any stretching


def test_hops_drop_duplicate_rows_and_join_a_collapsed_cloud_completely():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    # 3 distinct rows, fewer than k + 1: every pair is one hop apart.
    np.testing.assert_array_equal(knn_hops(points, 10), 1 - np.eye(3))
    np.testing.assert_array_equal(knn_hops(np.zeros((4, 3)), 10), [[0.0]])
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_hops(points, 0)


def test_circle_has_exactly_one_long_betti1_bar():
    angle = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    circle = np.column_stack([np.cos(angle), np.sin(angle)])
    h0, h1 = persistence(knn_hops(circle, 4), max_scale=30.0)
    assert (lifetimes(h1) > 2).sum() == 1
    assert (lifetimes(h0) > 2).sum() == 1  # one component


def test_two_separated_blobs_have_two_long_betti0_bars():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (30, 3)), rng.normal(10, 0.1, (30, 3))])
    h0, _ = persistence(knn_hops(blobs, 5), max_scale=4.0)
    long = lifetimes(h0) > 2
    assert long.sum() == 2
    assert np.isinf(h0[long, 1]).all()  # the k-NN graph has two components: never joined


def test_betti_curve_and_numbers_known_answer():
    diagram = np.array([[0.0, 1.0], [0.0, 2.0], [0.5, np.inf]])
    scales = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    np.testing.assert_array_equal(betti_curve(diagram, scales), [2, 3, 2, 2, 1, 1])
    assert betti_numbers([diagram, diagram[:1]], 1.0) == [2, 0]  # alive: birth <= s < death


def test_neural_persistence_of_a_hand_made_layer():
    # |w| / max|w| = [[1, .5], [.25, .75]]; the maximum spanning tree takes 1, .75, .5,
    # so the persistences are 0, .25, .5 and NP = sqrt(.25² + .5²) / sqrt(4 - 1).
    weights = np.array([[0.8, -0.4], [0.2, 0.6]])
    assert neural_persistence([weights]) == pytest.approx([np.sqrt(0.3125) / np.sqrt(3)])
    # The maximum is over the whole network: with 1.6 in another layer this one is halved
    # to [[.5, .25], [.125, .375]]; its tree keeps .5, .375, .25.
    both = neural_persistence([weights, np.array([[1.6]])])
    assert both[0] == pytest.approx(np.sqrt(0.5**2 + 0.625**2 + 0.75**2) / np.sqrt(3))
    assert both[1] == 0.0  # one edge of weight 1: persistence 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 5), (7, 2), (40, 30)])
def test_bipartite_spanning_tree_matches_scipys_kruskal(shape):
    rng = np.random.default_rng(sum(shape))
    for weights in (rng.random(shape), rng.integers(0, 3, shape) / 2):  # the second with ties
        n_out, n_in = shape
        cost = np.zeros((n_out + n_in,) * 2)
        cost[:n_out, n_out:] = 2.0 - weights
        expected = np.sort(2.0 - minimum_spanning_tree(cost).tocoo().data)
        np.testing.assert_allclose(np.sort(bipartite_spanning_tree(weights)), expected)


def test_shuffled_weights_keep_each_layers_values_and_are_seeded():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(6, 4)), rng.normal(size=(2, 6))]
    first = shuffled_persistence(weights, 7, range(3))
    assert shuffled_persistence(weights, 7, range(1, 3)) == first[1:]  # per draw, not per call
    assert len({tuple(row) for row in first}) == 3


def _b1(points: np.ndarray) -> int:
    """Betti-1 by the explain stage's default read-out (params.yaml's k and hops)."""
    return betti_numbers(knn_persistence(points, DEFAULTS.k, DEFAULTS.hops), DEFAULTS.hops)[1]


def _circle(n: int, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([np.cos(angle), np.sin(angle)]) + rng.normal(0, 0.05, (n, 2))


def test_a_circle_differs_significantly_from_blobs_and_a_blob_does_not():
    """Betti-1 against 39 Gaussian blobs (all 0), 300 points each (what a loop needs in
    tests/test_topology_shapes.py): a noisy circle's 1 falls outside them all (two-sided
    p = 2/40, the smallest 39 draws allow), another blob among them."""
    rng = np.random.default_rng(0)
    blobs = [_b1(rng.normal(size=(300, 2))) for _ in range(39)]
    p_circle, _ = empirical_p(_b1(_circle(300, rng)), blobs, alternative="two-sided")
    assert p_circle <= 0.05
    p_blob, _ = empirical_p(_b1(rng.normal(size=(300, 2))), blobs, alternative="two-sided")
    assert p_blob > 0.05
