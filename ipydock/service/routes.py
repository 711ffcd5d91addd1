"""The route table (as moby's ``api/server/router/``): method, path, handler function.

Paths come versioned (``/v1.41/containers/json``) or not; the version is checked once, in
:class:`App`, and cut off before routing. A version above ours gets dockerd's answer (400,
``client version 1.43 is too new…``); an unknown path gets dockerd's 404 ``page not found``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tornado import httputil, web

from ipydock.service import containers, execs, images, system, volumes
from ipydock.service.base import Handler
from ipydock.service.system import API_VERSION, MIN_API_VERSION

__all__ = ["ROUTES", "App"]

ID = r"(?P<name>[^/]+)"
IMAGE = r"(?P<name>.+?)"  # image names have slashes: library/busybox, host:5000/a/b

ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    # system
    ("GET", "/_ping", system.ping),
    ("HEAD", "/_ping", system.ping),
    ("GET", "/version", system.version),
    ("GET", "/info", system.info),
    ("GET", "/events", system.events),
    ("GET", "/system/df", system.disk_usage),
    # images
    ("GET", "/images/json", images.list_),
    ("POST", "/build", images.build),
    ("POST", "/images/create", images.create),
    ("POST", "/images/load", images.load),
    ("GET", "/images/get", images.get),
    ("POST", "/images/prune", images.prune),
    ("POST", "/commit", images.commit),
    ("GET", f"/images/{IMAGE}/json", images.inspect),
    ("GET", f"/images/{IMAGE}/history", images.history),
    ("GET", f"/images/{IMAGE}/get", images.get),
    ("POST", f"/images/{IMAGE}/tag", images.tag),
    ("POST", f"/images/{IMAGE}/push", images.push),
    ("DELETE", f"/images/{IMAGE}", images.remove),
    # containers
    ("GET", "/containers/json", containers.list_),
    ("POST", "/containers/create", containers.create),
    ("POST", "/containers/prune", containers.prune),
    ("GET", f"/containers/{ID}/json", containers.inspect),
    ("GET", f"/containers/{ID}/top", containers.top),
    ("GET", f"/containers/{ID}/logs", containers.logs),
    ("GET", f"/containers/{ID}/changes", containers.changes),
    ("GET", f"/containers/{ID}/export", containers.export),
    ("GET", f"/containers/{ID}/stats", containers.stats),
    ("HEAD", f"/containers/{ID}/archive", containers.archive_head),
    ("GET", f"/containers/{ID}/archive", containers.archive_get),
    ("PUT", f"/containers/{ID}/archive", containers.archive_put),
    ("POST", f"/containers/{ID}/start", containers.start),
    ("POST", f"/containers/{ID}/stop", containers.stop),
    ("POST", f"/containers/{ID}/kill", containers.kill),
    ("POST", f"/containers/{ID}/restart", containers.restart),
    ("POST", f"/containers/{ID}/rename", containers.rename),
    ("POST", f"/containers/{ID}/wait", containers.wait),
    ("POST", f"/containers/{ID}/attach", containers.attach),
    ("POST", f"/containers/{ID}/resize", containers.resize),
    ("POST", f"/containers/{ID}/exec", execs.create),
    ("DELETE", f"/containers/{ID}", containers.remove),
    ("POST", f"/exec/{ID}/start", execs.start),
    ("POST", f"/exec/{ID}/resize", execs.resize),
    ("GET", f"/exec/{ID}/json", execs.inspect),
    # volumes and networks
    ("GET", "/volumes", volumes.volume_list),
    ("POST", "/volumes/create", volumes.volume_create),
    ("POST", "/volumes/prune", volumes.volume_prune),
    ("GET", f"/volumes/{ID}", volumes.volume_inspect),
    ("DELETE", f"/volumes/{ID}", volumes.volume_remove),
    ("GET", "/networks", volumes.network_list),
    ("POST", "/networks/create", volumes.network_create),
    ("POST", "/networks/prune", volumes.network_prune),
    ("GET", f"/networks/{ID}", volumes.network_inspect),
    ("DELETE", f"/networks/{ID}", volumes.network_remove),
    ("POST", f"/networks/{ID}/connect", volumes.network_connect),
    ("POST", f"/networks/{ID}/disconnect", volumes.network_disconnect),
]

_VERSION = re.compile(r"^/v([0-9]+(?:\.[0-9]+)*)(?=/)")


def _handler_class(pattern: str, methods: dict[str, Callable[..., Any]]) -> type[Handler]:
    """One tornado handler class per path, its HTTP methods the table's functions."""
    attrs: dict[str, Any] = {"SUPPORTED_METHODS": tuple(methods)}
    for method, fn in methods.items():

        async def call(self: Handler, *args: str, _fn: Callable[..., Any] = fn,
                       **kw: str) -> None:  # fmt: skip
            await _fn(self, **{k: v for k, v in kw.items() if v is not None})

        attrs[method.lower()] = call
    name = "Route_" + re.sub(r"\W+", "_", pattern).strip("_")
    return web.stream_request_body(type(name, (Handler,), attrs))


@web.stream_request_body
class _Refuse(Handler):
    """Answers every method with one docker-shaped error (unknown path, wrong version)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, code: int = 404, message: str = "page not found") -> None:
        self.code, self.message = code, message

    async def _refuse(self, *args: Any, **kw: Any) -> None:
        self.send_json({"message": self.message}, self.code)

    get = head = post = put = delete = patch = options = _refuse


def _version_error(version: str) -> str | None:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    if key(version) > key(API_VERSION):
        return (f"client version {version} is too new. Maximum supported API version is "
                f"{API_VERSION}")  # fmt: skip
    if key(version) < key(MIN_API_VERSION):
        return (f"client version {version} is too old. Minimum supported API version is "
                f"{MIN_API_VERSION}, please upgrade your client to a newer version")  # fmt: skip
    return None


class App(web.Application):
    """The service's tornado application: the table, and the version prefix handled once."""

    def __init__(self, settings: dict[str, Any]) -> None:
        by_path: dict[str, dict[str, Callable[..., Any]]] = {}
        for method, pattern, fn in ROUTES:
            by_path.setdefault(pattern, {})[method] = fn
        rules = [(pattern + "/?$", _handler_class(pattern, methods))
                 for pattern, methods in by_path.items()]  # fmt: skip
        super().__init__(rules, default_handler_class=_Refuse, compress_response=False,
                         **settings)  # fmt: skip

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> web._HandlerDelegate:
        found = _VERSION.match(request.path)
        if found:
            request.path = request.path[found.end() :]
            problem = _version_error(found.group(1))
            if problem:
                return self.get_handler_delegate(request, _Refuse,
                                                 {"code": 400, "message": problem})  # fmt: skip
        return super().find_handler(request, **kwargs)
