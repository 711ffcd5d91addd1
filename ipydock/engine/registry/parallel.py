"""Bounded parallel transfers: a few layers at a time, the first failure stops the rest.

::

    with Jobs([job, job, job, …], workers=3, abort) as jobs:   jobs check ``abort`` per chunk
        jobs.result(0)   waits for job 0, or raises the first failure of any job
        …                (the caller can unpack layer 0 while layers 1, 2 still download)
    a failure (or ^C) ──> abort.set(), queued jobs cancelled, running ones stop at their next
                          chunk; the cause is raised, not the Aborted of the others
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from ipydock.models import TransferEvent

__all__ = ["Aborted", "Jobs", "Pipe", "run_all", "serialised"]

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


class Pipe:
    """Bytes from one thread to a reader in another (a bounded queue of chunks, no copies):
    the download writes the layer's tar, an extractor reads it as a file. A reader that
    stopped (:meth:`broken`) makes further writes no-ops, so the writer never blocks on it."""

    def __init__(self, chunks: int = 8) -> None:
        self._q: queue.Queue[bytes] = queue.Queue(chunks)
        self._buf = memoryview(b"")
        self._eof = False
        self._broken = threading.Event()
        self._eof_now = False  # cancelled: nothing more is read

    def write(self, data: bytes) -> None:
        while data and not self._broken.is_set():
            try:
                self._q.put(data, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """End of data (the reader sees EOF after what was written)."""
        while not self._broken.is_set():
            try:
                self._q.put(b"", timeout=0.5)
                return
            except queue.Full:
                continue

    def broken(self) -> None:
        """Called by the reader when it stops: writes from now on are dropped."""
        self._broken.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._q.get_nowait()

    def cancel(self) -> None:
        """Called by the writer to give up: the reader sees the end of the data at once."""
        self._eof_now = True
        while True:
            try:
                self._q.put_nowait(b"")
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._q.get_nowait()

    def chunk(self) -> bytes:
        """The next piece as it was written (b"" at the end); not mixed with :meth:`read`."""
        if self._eof_now or self._eof:
            return b""
        chunk = self._q.get()
        if not chunk or self._eof_now:
            self._eof = True
            return b""
        return chunk

    def read(self, n: int = -1) -> bytes:
        if self._eof_now:
            return b""
        out = []
        while not self._eof and (n < 0 or len(self._buf) < n):
            if self._buf:
                out.append(bytes(self._buf))
                n -= len(self._buf) if n >= 0 else 0
                self._buf = memoryview(b"")
            chunk = self._q.get()
            if not chunk or self._eof_now:
                self._eof = True
                break
            self._buf = memoryview(chunk)
        if n < 0:
            out.append(bytes(self._buf))
            self._buf = memoryview(b"")
        else:
            out.append(bytes(self._buf[:n]))
            self._buf = self._buf[n:]
        return b"".join(out)
