"""The explain stage's read-out of Betti numbers, on shapes whose Betti numbers are known.

The read-out (Naitzat, Zhitnikov & Lim 2020): hop counts in the unweighted k-NN graph, the
Vietoris-Rips complex at `explain.hops` hops, with params.yaml's own k and hops, so that a
change of the defaults must pass here. Each shape is drawn uniformly, in the plane (or 3-D)
and embedded in 10-D (a random rotation plus noise of 0.01 in every coordinate), with 3
seeds. Betti numbers up to b1, and b2 where a shape has one (ripser at maxdim = 2).

How many points: with the defaults (k = 14, 3 hops), every draw tried recovered a loop
from 300 points, the annulus from 750, the disk from 450 and the nine small holes (radius
0.12) from 3,000, up to at least 4x those numbers (2x for the holes); at 2,500 points 2
draws of 8 found only 8 holes: they fill in. The tests use twice the smallest (300 points
of a loop is `explain.max_points`' default). At 2 hops, as in the paper, loops of noise
grow with the number of points (a disk of 900 points showed 2), so the default is 3.

In 3-D: two linked unit circles, each through the other's centre, read (2, 2) from 100
points each in 8 draws of 8 (75: 5 of 8), tested at 600 each as the two circles are; a
sphere reads b2 = 1 from 150 points in 8 draws of 8 (100: b2 = 0 in all 8), tested at 300.
At maxdim = 2 a read costs about 20 times one at maxdim = 1 (300 points of a sphere: 0.8 s
against 0.04 s), so the sphere is with the slow tests.

The paper's own data sets (`topoxai.explain.naitzat`), at the sizes benchmarks/naitzat.py
measures: each class of D-II is nine solid tori (9, 9), recovered from 75 points a circle
(1,350 a class) in 3 draws of 3 (at 50, some class read wrong in each of 3 draws), tested
at 150 (2,700 a class). At the generator code's default spacing of 3 instead of its
published data's 5, neighbouring rings overlap and the read-out gives (2, 10) and (3, 9) or
(4, 9): it reads that sample right, the sample is not nine rings a class. D-III's classes
are (9, 0, 9) and (18, 0, 18), recovered with 75 points on each of class 0's 18 spheres
and 150 on each of class 1's 27 (1,350 and 4,050) in 3 draws of 3, the sizes tested (not
twice: 17 s a draw); with 100 on each of class 1's outer spheres they join its inner ones
or each other (b0 of 3 to 16 in 3 draws of 3).
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ortho_group

from topoxai.explain import naitzat
from topoxai.explain.topology import betti_numbers, knn_persistence
from topoxai.params import load_params
from topoxai.stats import half_sample_interval, half_samples

DEFAULTS = load_params(Path(__file__).resolve().parents[1] / "params.yaml").explain
HOLES = [(x, y) for x in (-0.5, 0.0, 0.5) for y in (-0.5, 0.0, 0.5)]


def circle(n: int, rng: np.random.Generator, centre: tuple[float, float] = (0, 0)) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([centre[0] + np.cos(angle), centre[1] + np.sin(angle)])


def disk(n: int, rng: np.random.Generator, inner: float = 0.0, holes: float = 0.0) -> np.ndarray:
    """Uniform in the unit disk, outside radius `inner` and outside nine holes of radius
    `holes` on a 3 x 3 grid of spacing 0.5."""
    found = np.empty((0, 2))
    while len(found) < n:
        p = rng.uniform(-1, 1, (4 * n, 2))
        radius = np.linalg.norm(p, axis=1)
        near = np.linalg.norm(p[:, None, :] - np.array(HOLES)[None], axis=2).min(axis=1)
        found = np.concatenate([found, p[(radius <= 1) & (radius > inner) & (near > holes)]])
    return found[:n]


def linked_circles(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two unit circles, in the xy- and the xz-plane, each through the other's centre."""
    a, b = rng.uniform(0, 2 * np.pi, (2, n))
    first = np.column_stack([np.cos(a), np.sin(a), np.zeros(n)])
    second = np.column_stack([1 + np.cos(b), np.zeros(n), np.sin(b)])
    return np.vstack([first, second])


def sphere(n: int, rng: np.random.Generator) -> np.ndarray:
    points = rng.normal(size=(n, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


SHAPES = {  # name: (points, expected (b0, b1) or (b0, b1, b2))
    "circle": (lambda rng: circle(600, rng), [1, 1]),
    "two circles": (lambda rng: np.vstack([circle(600, rng), circle(600, rng, (3, 0))]), [2, 2]),
    "figure eight": (lambda rng: np.vstack([circle(600, rng), circle(600, rng, (2, 0))]), [1, 2]),
    "annulus": (lambda rng: disk(1500, rng, inner=0.5), [1, 1]),
    "disk": (lambda rng: disk(900, rng), [1, 0]),
    # 16 s a draw: with the slow tests
    "disk with 9 holes": (lambda rng: disk(6000, rng, holes=0.12), [1, 9]),
    "two linked circles": (lambda rng: linked_circles(600, rng), [2, 2]),
    "sphere": (lambda rng: sphere(300, rng), [1, 0, 1]),  # 1.6 s a draw: slow
}
CASES = [
    pytest.param(name, marks=pytest.mark.slow) if name in ("disk with 9 holes", "sphere") else name
    for name in SHAPES
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", CASES)
def test_default_read_out_recovers_known_betti_numbers(name, seed):
    draw, expected = SHAPES[name]
    rng = np.random.default_rng(seed)
    plane = draw(rng)
    rotation = ortho_group.rvs(10, random_state=seed)[:, : plane.shape[1]]
    embedded = plane @ rotation.T + rng.normal(0, 0.01, (len(plane), 10))
    k, hops, maxdim = DEFAULTS.k, DEFAULTS.hops, len(expected) - 1
    for points in (plane, embedded):
        # Bars alive at `hops` are the same whatever range beyond it is computed.
        assert betti_numbers(knn_persistence(points, k, hops, maxdim), hops) == expected


def test_loops_of_one_hop_are_noise_a_filled_disk_has_them_too():
    """Why the metrics are Betti numbers at `hops`, not a total over all bars: most bars of
    a filled disk are loops of 1 hop, there to be counted by any total."""
    points = disk(900, np.random.default_rng(0))
    diagrams = knn_persistence(points, DEFAULTS.k, DEFAULTS.filtration_max)
    assert betti_numbers(diagrams, 1)[1] >= 5
    assert betti_numbers(diagrams, DEFAULTS.hops) == [1, 0]


def test_half_samples_of_a_circle_agree_so_its_interval_is_exact():
    """The explain stage's intervals on Betti numbers: half-samples of a circle of 600 points
    (300 each, what a loop needs) all read (1, 1), so the interval is [1, 1] for both."""
    points = circle(600, np.random.default_rng(0))
    (halves,) = zip(*half_samples([np.arange(600)], resamples=10, seed=0))
    k, hops = DEFAULTS.k, DEFAULTS.hops
    readings = [betti_numbers(knn_persistence(points[h], k, hops), hops) for h in halves]
    assert readings == [[1, 1]] * 10
    for dim in (0, 1):
        values = [reading[dim] for reading in readings]
        assert half_sample_interval(1, values, level=0.95) == (1.0, 1.0)


def read_out(clouds: list[np.ndarray], scale: np.ndarray, maxdim: int) -> list[tuple[int, ...]]:
    """Each class's Betti numbers with the defaults, in the coordinates the networks see."""
    k, hops = DEFAULTS.k, DEFAULTS.hops
    return [tuple(betti_numbers(knn_persistence(c / scale, k, hops, maxdim), hops)) for c in clouds]


@pytest.mark.slow  # 1.5 s a draw
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_read_out_recovers_d2_nine_rings_a_class(seed):
    clouds = naitzat.rings(150, np.random.default_rng(seed))
    assert [len(c) for c in clouds] == [2700, 2700]
    assert read_out(clouds, naitzat.SCALE["D-II"], 1) == [b[:2] for b in naitzat.BETTI["D-II"]]


@pytest.mark.slow  # 1.3 s
def test_at_the_codes_default_spacing_d2_rings_touch_and_read_so():
    """The generator's default spacing (3) puts neighbouring rings on each other, so the
    sample is not nine rings a class: what an earlier reading of (2, 10) and (3, 9) saw."""
    clouds = naitzat.rings(100, np.random.default_rng(0), spacing=3)
    assert read_out(clouds, naitzat.SCALE["D-II"], 1) == [(2, 10), (3, 9)]


@pytest.mark.slow  # 17 s a draw: b2 needs ripser at maxdim = 2
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_read_out_recovers_d3_spheres_and_their_voids(seed):
    clouds = naitzat.spheres(((75, 75), (150, 150, 150)), np.random.default_rng(seed))
    assert [len(c) for c in clouds] == [1350, 4050]
    assert read_out(clouds, naitzat.SCALE["D-III"], 2) == list(naitzat.BETTI["D-III"])
