"""Bounded parallel transfers: a few layers at a time, the first failure stops the rest.

::

    run_all([job, job, job, …], workers=3, abort)   each job checks ``abort`` between chunks
        a job fails (or ^C) ──> abort.set(), queued jobs cancelled ──> the error, once the
                                running jobs have noticed and stopped
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from ipydock.models import TransferEvent

__all__ = ["Aborted", "run_all", "serialised"]

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


def run_all(jobs: Sequence[Callable[[], T]], workers: int, abort: threading.Event) -> list[T]:
    if not jobs:
        return []
    with ThreadPoolExecutor(min(workers, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)  # the first failure, whichever job
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
            failed.sort(key=lambda f: isinstance(f.exception(), Aborted))  # the cause first
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]
        except BaseException:  # that failure, or ^C while waiting
            abort.set()
            for f in futures:
                f.cancel()
            raise
