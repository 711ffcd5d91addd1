"""One engine per Jupyter server: the settings, the Backend, and the error-to-HTTP table.

The Backend's calls block (disk, syscalls, Docker API requests), so handlers run them in a small
thread pool; the store's lock is thread-safe, and every read sees whole files (atomic renames).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from traitlets import CaselessStrEnum, Unicode
from traitlets.config import Configurable

from ipydock import errors
from ipydock.api import Backend

__all__ = ["IPyDockServer", "http_status"]

T = TypeVar("T")

# The first class in this list that an error is an instance of decides its HTTP status.
_STATUS: list[tuple[type[errors.IPyDockError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PartialFailure, 409),
    (errors.NotSupported, 501),
    (errors.EngineUnavailable, 503),
    (errors.StoreLocked, 503),
    (errors.EngineError, 502),
    (errors.StoreError, 500),
    (errors.RuntimeFailure, 500),
]


def http_status(exc: errors.IPyDockError) -> int:
    """The HTTP status of an ipydock error: 404 for what does not exist, 409 for a clash with
    the store's state, 503 for an engine that does not answer, 400 for anything the request got
    wrong (bad names, bad flags, a bad Dockerfile)."""
    if isinstance(exc, errors.EngineError) and 400 <= exc.status < 500:
        return int(exc.status)
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


class IPyDockServer(Configurable):
    """Settings of the server extension (``c.IPyDockServer.engine = "docker"``)."""

    engine = CaselessStrEnum(
        ["bundled", "docker"], default_value="bundled", help="the engine the panel shows"
    ).tag(config=True)
    root = Unicode("", help="the bundled engine's store (default: $IPYDOCK_ROOT)").tag(config=True)
    host = Unicode("", help="the Docker Engine API URL for engine 'docker'").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._backend: Backend | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="ipydock-api")
        self.listeners: list[Callable[[], None]] = []  # called after the engine changed

    @property
    def backend(self) -> Backend:
        """The engine, connected on first use (raises ``EngineUnavailable`` for docker)."""
        if self._backend is None:
            from ipydock import backends

            if self.engine == "docker":
                self._backend = backends.connect("docker", host=self.host or None)
            else:  # the server forks no warm helper: containers start as new processes
                self._backend = backends.connect("bundled", root=self.root or None, warm=False)
        return self._backend

    def describe(self) -> dict[str, Any]:
        """The engine in use and where: the store's root, or the Docker engine's URL."""
        try:
            backend = self.backend
        except errors.IPyDockError:  # docker configured but not answering: say what was asked
            return {"engine": self.engine, "where": self.host}
        store = getattr(backend, "store", None)
        where = store.root if store is not None else getattr(backend, "host", self.host)
        return {"engine": self.engine, "where": where or ""}

    def switch(self, engine: str, host: str = "") -> None:
        """Use ``engine`` from now on; on failure (docker not answering) keep the old one."""
        before = (self.engine, self.host, self._backend)
        self.engine, self.host, self._backend = engine, host or self.host, None
        try:
            self.backend  # noqa: B018 - connect now, so that a failure is this request's
        except BaseException:
            self.engine, self.host, self._backend = before
            raise
        for listener in self.listeners:
            listener()

    async def run(self, fn: Callable[[Backend], T]) -> T:
        """``fn(backend)`` in the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self.backend))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
