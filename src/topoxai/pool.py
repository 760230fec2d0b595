"""A process pool for the explain stage's many independent computations, results in order.

ripser and the spanning trees of neural persistence hold the GIL, so threads would not help.
Every job's result depends only on its arguments (each worker's BLAS is held to the stage's
`threads`, as in the stage itself), never on how many workers there are.
"""

import importlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any

from threadpoolctl import threadpool_limits


class Pool:
    """`workers` processes (none for one worker: jobs then run in this process).

    The workers start at once and import `preload` (the modules their jobs need): a stage
    that opens its pool before its own heavy imports has both done in the time of one.
    """

    def __init__(self, workers: int, threads: int, preload: tuple[str, ...] = ()) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        if workers > 1:
            self._executor = ProcessPoolExecutor(
                workers,
                # spawn, not fork: a forked child of a process that ran torch's or BLAS's
                # OpenMP threads can deadlock. (So a script that runs the stage needs the
                # usual `if __name__ == "__main__":` guard.)
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(threads, preload),
            )
            for _ in range(workers):  # the executor starts a worker per job it cannot place
                self._executor.submit(int)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

    def start(self, job: Callable[..., Any], arguments: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """job(*args) for each tuple, all submitted now, so that the workers run them while
        this process does something else; results in order, as they are read. Every
        argument is held until its job has run: keep them small (`map` bounds them)."""
        if self._executor is None:
            return (job(*args) for args in arguments)
        futures = [self._executor.submit(job, *args) for args in arguments]
        return (future.result() for future in futures)

    def map(self, job: Callable[..., Any], arguments: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """job(*args) for each tuple, in order; at most 2 per worker in flight, so memory does
        not grow with the number of jobs (the arguments are produced as they are needed)."""
        if self._executor is None:
            yield from (job(*args) for args in arguments)
            return
        pending: deque[Future[Any]] = deque()
        for args in arguments:
            pending.append(self._executor.submit(job, *args))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _start_worker(threads: int, preload: tuple[str, ...]) -> None:
    for name in preload:
        importlib.import_module(name)
    # After the imports: threadpoolctl limits the BLAS and OpenMP libraries loaded so far, and
    # a library loaded later would start with one thread per core (2 workers x 2 threads
    # on 2 cores, spinning: a fifth of the explain stage's time).
    threadpool_limits(threads)
