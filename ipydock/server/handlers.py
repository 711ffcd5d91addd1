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
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.utils import url_path_join

from ipydock.api import Backend
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import to_record
from ipydock.server.base import Base, flag
from ipydock.server.session import IPyDockServer
from ipydock.server.streams import EventsHandler, Hub, LogsHandler

__all__ = ["ROUTES", "setup_handlers", "teardown_handlers"]


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
        all_, dangling = flag(self.get_argument("all", "")), self.get_argument("dangling", "")
        filters = [f"dangling={dangling.lower()}"] if dangling else []
        await self.answer(lambda b: _marked(b, b.images(all=all_, filters=filters)))


def _marked(backend: Backend, rows: list[Any]) -> list[dict[str, Any]]:
    """``image ls`` rows, each with ``dangling``: true for what ``image prune`` would remove."""
    dangling = {r.id for r in backend.images(filters=["dangling=true"])}
    return [{**to_record(r), "dangling": r.id in dangling} for r in rows]


class ImageHandler(Base):
    @tornado.web.authenticated
    async def delete(self, ref: str) -> None:
        force = flag(self.get_argument("force", ""))
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
        await self.answer(lambda b: {"tag": b.tag(ref, str(self.body().get("target") or ""))})


class PruneImagesHandler(Base):
    @tornado.web.authenticated
    async def post(self) -> None:
        await self.answer(lambda b: b.prune_images(all=bool(self.body().get("all", False))))


class ContainersHandler(Base):
    @tornado.web.authenticated
    async def get(self) -> None:
        all_ = flag(self.get_argument("all", ""))
        await self.answer(lambda b: b.containers(all=all_))


class ContainerHandler(Base):
    @tornado.web.authenticated
    async def delete(self, ref: str) -> None:
        force = flag(self.get_argument("force", ""))
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
