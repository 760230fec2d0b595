"""topoxai.explain.mapper: components of a known shape, summary numbers, error-region features."""

import numpy as np
import pytest

from topoxai.explain import mapper
from topoxai.explain.mapper import MapperGraph


def test_two_well_separated_clusters_give_two_components():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (40, 5)), rng.normal(5, 0.1, (40, 5))])
    # Just under half of all pairs lie within a blob: the 0.4 quantile is a within-blob radius.
    graph = mapper.build(points, points[:, :2], cubes=4, overlap=0.3, eps_quantile=0.4,
                         min_samples=1)  # fmt: skip
    assert mapper.components(graph) == 2
    assert set(np.concatenate(graph.nodes).tolist()) == set(range(80))  # min_samples=1: no noise


def test_html_is_the_same_on_every_run():
    rng = np.random.default_rng(0)
    points = rng.normal(0, 1, (30, 4))
    probability = rng.uniform(0, 1, 30)
    lens = mapper.lens(points, probability, random_state=0)
    graph = mapper.build(points, lens, cubes=3, overlap=0.3, eps_quantile=0.5, min_samples=1)

    def page() -> str:
        return mapper.html(
            graph,
            probability=probability,
            errors=probability > 0.8,
            features=points,
            feature_names=list("abcd"),
            lens=lens,
            tooltips=[f"row {i}" for i in range(30)],
            title="a test graph",
        )

    pages = [page(), page()]
    assert pages[0] == pages[1]
    assert "a test graph" in pages[0]


def test_lens_second_axis_is_what_the_probability_leaves_out():
    rng = np.random.default_rng(1)
    probability = rng.uniform(0, 1, 50)
    other = rng.normal(0, 1, 50)
    # The activations' largest variation follows the probability; the rest is `other`.
    activations = np.column_stack([10 * probability, 10 * probability, other])
    lens = mapper.lens(activations, probability, random_state=0)
    np.testing.assert_array_equal(lens[:, 0], probability)
    assert abs(np.corrcoef(lens[:, 1], other)[0, 1]) > 0.999


def test_summary_known_answer():
    graph = MapperGraph(
        nodes=[np.array([0, 1]), np.array([1, 2]), np.array([3])], edges=[(0, 1)], kepler={}
    )
    labels = np.array([0, 0, 1, 1])
    errors = np.array([False, False, True, False])
    assert mapper.summary(graph, labels, errors) == {
        "nodes": 3,
        "edges": 1,
        "components": 2,
        "purity": pytest.approx((1 + 0.5 + 1) / 3),
        "errors": 1,
        "error_share_impure": 1.0,  # row 2 sits in node {1, 2}, labels 0 and 1
        "row_share_impure": 0.5,  # rows 1 and 2 of 4
    }


def test_error_rows_are_the_nodes_above_the_overall_error_rate():
    graph = MapperGraph(
        nodes=[np.array([0, 1, 2, 3]), np.array([3, 4]), np.array([5])], edges=[], kepler={}
    )
    errors = np.array([0, 0, 0, 0, 1, 0], dtype=bool)  # overall rate 1/6; node rates 0, 1/2, 0
    np.testing.assert_array_equal(mapper.error_rows(graph, errors), [0, 0, 0, 1, 1, 0])


def test_over_representation_is_the_largest_standardized_mean_shift_per_group():
    features = np.array(
        [[0.0, 1, 0], [2.0, 1, 0], [4.0, 0, 1], [6.0, 0, 1]]
    )  # one numeric column, one two-column one-hot group
    inside = np.array([False, False, True, True])
    # numeric: mean 5 vs 3, std sqrt(5) -> 2/sqrt(5); one-hot: share 0 vs .5, std .5 -> 1
    scores = mapper.over_representation(features, inside, [[0], [1, 2]])
    np.testing.assert_allclose(scores, [2 / np.sqrt(5), 1.0])
    assert mapper.over_representation(features, ~inside & inside, [[0]]).tolist() == [0.0]
