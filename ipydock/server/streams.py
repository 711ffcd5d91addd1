"""The two streaming routes (server-sent events): ``events`` ("changed" after each change of
the engine's state, from :mod:`ipydock.server.watch`) and ``containers/ID/logs?follow=1``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

from ipydock.errors import IPyDockError, UsageError
from ipydock.models import to_record
from ipydock.server.base import Base, flag
from ipydock.server.session import IPyDockServer
from ipydock.server.watch import DockerWatch, StoreWatch

__all__ = ["KEEPALIVE", "EventsHandler", "Hub", "LogsHandler"]

KEEPALIVE = 15.0  # seconds between comments on an idle event stream


class LogsHandler(Base):
    """The log lines as JSON; with ``follow=1`` server-sent ``line`` events as they come, until
    the container stops (``end``) or the client goes."""

    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        tail = self.get_argument("tail", "")
        if tail and not tail.isdigit():
            self.fail(UsageError(f"invalid tail {tail!r}: a number"))
            return
        n = int(tail) if tail else None
        if not flag(self.get_argument("follow", "")):
            await self.answer(lambda b: list(b.logs(ref, tail=n)))
            return
        try:  # the container must exist: a 404 before the stream starts
            await self.session.run(lambda b: b.inspect_container(ref))
        except IPyDockError as exc:
            self.fail(exc)
            return
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        await self.flush()
        await self._follow(lambda: self.session.backend.logs(ref, follow=True, tail=n))

    async def _follow(self, lines: Callable[[], Any]) -> None:
        """A thread of its own reads the blocking iterator (a follow can last for hours: it
        must not hold a worker of the pool); lines reach the loop through a queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = threading.Event()

        def pump() -> None:
            try:
                for entry in lines():
                    if gone.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, to_record(entry))
            except IPyDockError as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name="ipydock-logs", daemon=True).start()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                else:
                    if item is None:
                        self.write("event: end\ndata: {}\n\n")
                        self.finish()
                        return
                    if isinstance(item, IPyDockError):
                        message = {"message": str(item), "error": type(item).__name__}
                        self.write(f"event: error\ndata: {json.dumps(message)}\n\n")
                    else:
                        self.write(f"event: line\ndata: {json.dumps(item)}\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            gone.set()


class EventsHandler(Base):
    """Server-sent events: ``hello`` first (the engine), then ``changed`` after each change."""

    @tornado.web.authenticated
    async def get(self) -> None:
        hub: Hub = self.settings["ipydock_hub"]
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        queue = hub.subscribe()
        try:
            self.write(f"event: hello\ndata: {json.dumps(self.session.describe())}\n\n")
            await self.flush()
            while True:
                try:
                    what = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                else:
                    self.write(f"event: {what}\ndata: {{}}\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            hub.unsubscribe(queue)


class Hub:
    """The open event streams and the one watcher they share (started with the first)."""

    def __init__(self, session: IPyDockServer, log: Any) -> None:
        self.session = session
        self.log = log
        self.queues: set[asyncio.Queue[str]] = set()
        self.watch: StoreWatch | DockerWatch | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        session.listeners.append(self.engine_changed)

    def subscribe(self) -> asyncio.Queue[str]:
        self.loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.queues.add(queue)
        if self.watch is None:
            self._start()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self.queues.discard(queue)

    def _start(self) -> None:
        try:
            backend = self.session.backend
            store = getattr(backend, "store", None)
            if store is not None:
                self.watch = StoreWatch(store.root, self.changed)
            else:
                self.watch = DockerWatch(backend.api, self.changed)  # type: ignore[attr-defined]
        except (IPyDockError, OSError) as exc:  # the panel still works, it refreshes by hand
            self.log.warning("ipydock: no live updates: %s", exc)

    def changed(self, what: str = "changed") -> None:
        for queue in self.queues:
            if queue.empty():  # one pending "changed" is as good as many
                queue.put_nowait(what)

    def engine_changed(self) -> None:
        """From a pool thread after ``PUT engine``: watch the new engine, tell the panels."""

        def restart() -> None:
            if self.watch is not None:
                self.watch.close()
                self.watch = None
            if self.queues:
                self._start()
            self.changed("engine")

        if self.loop is not None:  # else no stream was ever opened: nothing to restart
            self.loop.call_soon_threadsafe(restart)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
