"""topoxai.pool: results in order, the same with worker processes as without."""

import numpy as np

from topoxai.explain.topology import knn_persistence
from topoxai.pool import Pool


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


def _threads() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {info["internal_api"]: info["num_threads"] for info in threadpool_info()}


def test_workers_start_at_once_with_their_modules_loaded_and_their_threads_held():
    """The BLAS and OpenMP libraries that preloading loads are held to `threads` too (a
    library loaded after threadpool_limits would run one thread per core)."""
    with Pool(2, 1, preload=("topoxai.explain.controls",)) as pool:
        assert pool._executor is not None
        assert len(pool._executor._processes) == 2  # started before any job
        seen = list(pool.map(_threads, [(), ()]))
    for threads in seen:
        assert threads.get("openblas") == 1, threads


def test_started_jobs_give_their_results_in_order_like_map():
    rng = np.random.default_rng(1)
    jobs = [(rng.normal(size=(20 + i, 2)), 3, 5.0) for i in range(5)]
    with Pool(2, 1) as parallel, Pool(1, 1) as serial:
        started = parallel.start(knn_persistence, jobs)
        mapped = list(serial.map(knn_persistence, jobs))
        for a, b in zip(started, mapped, strict=True):
            for dim in (0, 1):
                np.testing.assert_array_equal(a[dim], b[dim])
