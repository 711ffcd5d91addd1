"""The REST routes under ``/ipydock/api``: each handler turns the request into the call the CLI
makes for the same words, and the model back into JSON (``to_record``).

=======  ===========================================  ======================================
method   route                                         the same as
=======  ===========================================  ======================================
GET      engine                                        ``%ipydock engine``
PUT      engine  {"engine": "docker", "host": URL}     ``%ipydock engine docker --host URL``
GET      events  (text/event-stream)                   -- "changed" after any change
GET      images?all=1&dangling=1                       ``image ls -a -f dangling=true``
DELETE   images/REF?force=1                            ``image rm -f REF``
GET      images/REF/history                            ``image history REF``
GET      images/REF/layers                             ``image files REF``
POST     images/REF/tag  {"target": T}                 ``image tag REF T``
POST     prune/images  {"all": false}                  ``image prune -f``
GET      containers?all=1                              ``container ls -a``
DELETE   containers/ID?force=1                         ``container rm -f ID``
POST     containers/ID/(start|stop|restart)?t=S        ``container stop -t S ID``
GET      containers/ID/logs?tail=N&follow=1            ``container logs -n N [-f] ID``
GET      volumes ; volumes/NAME/files?path=P           ``volume ls`` ; ``volume files NAME P``
GET      networks ; networks/graph  ({"svg": ...})   ``network ls`` ; ``network ls --graph``
GET      system/df                                     ``system df``
=======  ===========================================  ======================================

REF and ID are URL-encoded path segments (``library%2Fbusybox%3A1``). Errors: the status of
:func:`~ipydock.server.session.http_status` and ``{"message": one line, "error": class name}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.iostream import StreamClosedError

from ipydock.api import Backend
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import to_record
from ipydock.server.session import IPyDockServer, http_status
from ipydock.server.watch import DockerWatch, StoreWatch

__all__ = ["ROUTES", "setup_handlers", "teardown_handlers"]

KEEPALIVE = 15.0  # seconds between comments on an idle event stream


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return to_record(value)
    return value


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class Base(APIHandler):
    @property
    def session(self) -> IPyDockServer:
        return self.settings["ipydock"]  # type: ignore[no-any-return]

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise UsageError(f"the request body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError("the request body must be a JSON object")
        return data

    async def answer(self, fn: Callable[[Backend], Any]) -> None:
        """Run ``fn(backend)`` in the pool; its model as JSON, or the error as status + line."""
        try:
            result = await self.session.run(fn)
        except IPyDockError as exc:
            self.fail(exc)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(_json(result)))

    def fail(self, exc: IPyDockError) -> None:
        self.set_status(http_status(exc))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": str(exc), "error": type(exc).__name__}))


class EngineHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.finish(self.session.describe())

    @tornado.web.authenticated
    async def put(self) -> None:
        try:
            body = self.body()
            engine = str(body.get("engine", ""))
            if engine not in ("bundled", "docker"):
                raise UsageError(f"unknown engine {engine!r}: use 'bundled' or 'docker'")
            await asyncio.get_running_loop().run_in_executor(
                None, self.session.switch, engine, str(body.get("host") or "")
            )
        except IPyDockError as exc:
            self.fail(exc)
            return
        self.finish(self.session.describe())


class ImagesHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        all_, dangling = _flag(self.get_argument("all", "")), self.get_argument("dangling", "")
        filters = [f"dangling={dangling.lower()}"] if dangling else []
        await self.answer(lambda b: _marked(b, b.images(all=all_, filters=filters)))


def _marked(backend: Backend, rows: list[Any]) -> list[dict[str, Any]]:
    """``image ls`` rows, each with ``dangling``: true for what ``image prune`` would remove."""
    dangling = {r.id for r in backend.images(filters=["dangling=true"])}
    return [{**to_record(r), "dangling": r.id in dangling} for r in rows]


class ImageHandler(Base):
    @tornado.web.authenticated
    async def delete(self, ref: str) -> None:
        force = _flag(self.get_argument("force", ""))
        await self.answer(lambda b: b.remove_image(ref, force=force))


class HistoryHandler(Base):
    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        await self.answer(lambda b: b.history(ref))


class LayersHandler(Base):
    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        await self.answer(lambda b: b.image_layers(ref))


class TagHandler(Base):
    @tornado.web.authenticated
    async def post(self, ref: str) -> None:
        try:
            target = str(self.body().get("target") or "")
        except IPyDockError as exc:
            self.fail(exc)
            return
        await self.answer(lambda b: {"tag": b.tag(ref, target)})


class PruneImagesHandler(Base):
    @tornado.web.authenticated
    async def post(self) -> None:
        try:
            all_ = bool(self.body().get("all", False))
        except IPyDockError as exc:
            self.fail(exc)
            return
        await self.answer(lambda b: b.prune_images(all=all_))


class ContainersHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        all_ = _flag(self.get_argument("all", ""))
        await self.answer(lambda b: b.containers(all=all_))


class ContainerHandler(Base):
    @tornado.web.authenticated
    async def delete(self, ref: str) -> None:
        force = _flag(self.get_argument("force", ""))
        await self.answer(lambda b: {"removed": b.remove_container(ref, force=force)})


ACTIONS: dict[str, Callable[[Backend, str, float | None], object]] = {
    "start": lambda b, ref, t: b.start_container(ref),
    "stop": lambda b, ref, t: b.stop_container(ref, t),
    "restart": lambda b, ref, t: b.restart_container(ref, t),
}


def _act(backend: Backend, action: str, ref: str, t: float | None) -> dict[str, str]:
    ACTIONS[action](backend, ref, t)
    return {action: ref}


class ContainerActionHandler(Base):
    @tornado.web.authenticated
    async def post(self, ref: str, action: str) -> None:
        t = self.get_argument("t", "")  # stop/restart -t: seconds before the kill
        if t and not t.isdigit():
            self.fail(UsageError(f"invalid t {t!r}: a number of seconds"))
            return
        await self.answer(lambda b: _act(b, action, ref, int(t) if t else None))


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
        if not _flag(self.get_argument("follow", "")):
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


class VolumesHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.answer(lambda b: b.volumes())


class VolumeFilesHandler(Base):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        path = self.get_argument("path", "/")
        await self.answer(lambda b: b.volume_files(name, path))


class NetworksHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.answer(lambda b: b.networks())


class NetworkGraphHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        from ipydock.display.network import network_graph

        await self.answer(lambda b: {"svg": network_graph(b.networks(), b.containers()).svg})


class DiskUsageHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.answer(lambda b: b.disk_usage())


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


ROUTES: list[tuple[str, type[Base]]] = [
    (r"engine", EngineHandler),
    (r"events", EventsHandler),
    (r"images", ImagesHandler),
    (r"prune/images", PruneImagesHandler),
    (r"images/([^/]+)", ImageHandler),
    (r"images/([^/]+)/history", HistoryHandler),
    (r"images/([^/]+)/layers", LayersHandler),
    (r"images/([^/]+)/tag", TagHandler),
    (r"containers", ContainersHandler),
    (r"containers/([^/]+)", ContainerHandler),
    (r"containers/([^/]+)/(start|stop|restart)", ContainerActionHandler),
    (r"containers/([^/]+)/logs", LogsHandler),
    (r"volumes", VolumesHandler),
    (r"volumes/([^/]+)/files", VolumeFilesHandler),
    (r"networks", NetworksHandler),
    (r"networks/graph", NetworkGraphHandler),
    (r"system/df", DiskUsageHandler),
]


def setup_handlers(serverapp: Any) -> None:
    web_app = serverapp.web_app
    session = IPyDockServer(config=serverapp.config)
    hub = Hub(session, serverapp.log)
    web_app.settings["ipydock"] = session
    web_app.settings["ipydock_hub"] = hub
    base = url_path_join(web_app.settings["base_url"], "ipydock", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, path), h) for path, h in ROUTES])


def teardown_handlers(serverapp: Any) -> None:
    settings = serverapp.web_app.settings
    if "ipydock_hub" in settings:
        settings["ipydock_hub"].close()
        settings["ipydock"].close()
