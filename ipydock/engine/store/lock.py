"""The store's lock: one ``flock`` on ``ROOT/lock`` serialises every change to the store.

Readers take no lock: every file they read is replaced by an atomic rename, so they see a whole
old or a whole new version. Writers (load, import, tag, rm, prune, check --repair) hold the lock
exclusively for the whole operation; a second kernel doing the same simply waits. The lock is
re-entrant within one :class:`StoreLock` object, so a high-level operation can call others.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType

__all__ = ["StoreLock"]


class StoreLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()

    def __enter__(self) -> StoreLock:
        self._thread_lock.acquire()
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                self._thread_lock.release()
                raise
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(
        self, tp: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        self._thread_lock.release()
