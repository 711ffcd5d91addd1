"""Bounded parallel transfers: a few layers at a time, the first failure stops the rest.

::

    with Jobs([job, job, job, …], workers=3, abort) as jobs:   jobs check ``abort`` per chunk
        jobs.result(0)   waits for job 0, or raises the first failure of any job
        …                (the caller can unpack layer 0 while layers 1, 2 still download)
    a failure (or ^C) ──> abort.set(), queued jobs cancelled, running ones stop at their next
                          chunk; the cause is raised, not the Aborted of the others
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from ipydock.models import TransferEvent

__all__ = ["Aborted", "Jobs", "run_all", "serialised"]

T = TypeVar("T")
Progress = Callable[[TransferEvent], None]


class Aborted(Exception):
    """Raised inside a job when another job failed: not an error of its own."""


def serialised(progress: Progress | None) -> Progress:
    """The caller's progress callback, called by one thread at a time (or a no-op)."""
    if progress is None:
        return lambda event: None
    lock = threading.Lock()

    def emit(event: TransferEvent) -> None:
        with lock:
            progress(event)

    return emit


class Jobs(Generic[T]):
    def __init__(self, jobs: Sequence[Callable[[], T]], workers: int, abort: threading.Event):
        self.abort = abort
        self.pool = ThreadPoolExecutor(max(1, min(workers, len(jobs))))
        self.futures: list[Future[T]] = [self.pool.submit(job) for job in jobs]

    def result(self, i: int) -> T:
        """Job ``i``'s result once it is done; the first failure of any job as soon as it
        happens (so a bad layer 3 does not wait for a slow layer 1)."""
        while True:
            if self.futures[i].done():
                return self.futures[i].result()
            failed = [f for f in self.futures if f.done() and not f.cancelled() and f.exception()]
            failed.sort(key=lambda f: isinstance(f.exception(), Aborted))  # the cause first
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            wait([f for f in self.futures if not f.done()], return_when=FIRST_COMPLETED)

    def __enter__(self) -> Jobs[T]:
        return self

    def __exit__(self, tp: type[BaseException] | None, *exc: object) -> None:
        if tp is not None:
            self.abort.set()
            for f in self.futures:
                f.cancel()
        self.pool.shutdown(wait=True)


def run_all(jobs: Sequence[Callable[[], T]], workers: int, abort: threading.Event) -> list[T]:
    """Every job's result, in order; the first failure (in time) is raised."""
    if not jobs:
        return []
    with Jobs(jobs, workers, abort) as running:
        return [running.result(i) for i in range(len(jobs))]
