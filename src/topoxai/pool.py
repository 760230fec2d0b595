"""A process pool for the explain stage's many independent computations, results in order.

ripser and the spanning trees of neural persistence hold the GIL, so threads would not help.
Every job's result depends only on its arguments (each worker's BLAS is held to the stage's
`threads`, as in the stage itself), never on how many workers there are.
"""

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any

from threadpoolctl import threadpool_limits


class Pool:
    """`workers` processes (none for one worker: jobs then run in this process)."""

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        if workers > 1:
            self._executor = ProcessPoolExecutor(
                workers,
                # spawn, not fork: a forked child of a process that ran torch's or BLAS's
                # OpenMP threads can deadlock. (So a script that runs the stage needs the
                # usual `if __name__ == "__main__":` guard.)
                mp_context=multiprocessing.get_context("spawn"),
                initializer=threadpool_limits,
                initargs=(threads,),
            )

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
