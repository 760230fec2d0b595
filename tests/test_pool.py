"""topoxai.pool: results in order, the same with worker processes as without."""

import numpy as np

from topoxai.pool import Pool
from topoxai.topology import knn_persistence


def test_worker_processes_give_the_results_of_this_process_in_order():
    rng = np.random.default_rng(0)
    jobs = [(rng.normal(size=(30 + i, 3)), 4, 6.0) for i in range(7)]
    with Pool(1, 1) as serial, Pool(2, 1) as parallel:
        here, there = (
            list(serial.map(knn_persistence, jobs)),
            list(parallel.map(knn_persistence, jobs)),
        )
    assert len(there) == 7
    for a, b in zip(here, there):
        for dim in (0, 1):
            np.testing.assert_array_equal(a[dim], b[dim])
    assert [len(r[0]) for r in there] == [30 + i for i in range(7)]  # one H0 bar per point
