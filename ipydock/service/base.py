"""What every route of the Docker Engine API service shares: the request's parameters as
docker's client sends them, the body, the one error -> status mapping, streamed answers.

::

    tornado HTTP/1.1 --prepare: spool the body (a build context, a tarball) to a temp file
                    --handler: query()/flag()/filters()/json_body() -> one Backend call in a
                       thread (call()) -> send_json() | stream_json() | frames()
    IPyDockError ---> status()/docker_message(): 404 / 409 / 400 / 501 / 500 and
                      {"message": "…"} as dockerd words it

A body that ends early never reaches a handler (tornado drops the request), so nothing is done
with half a tarball; a client that goes away mid-stream ends its stream, not the service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, TypeVar

from tornado import iostream, web

from ipydock import errors
from ipydock.errors import IPyDockError, UsageError

if TYPE_CHECKING:
    from ipydock.service.state import Service

__all__ = ["Handler", "docker_message", "frame", "status"]

log = logging.getLogger("ipydock.service")
T = TypeVar("T")

#: A body above this size goes to a temp file instead of memory.
_SPOOL = 1 << 20
_MAX_BODY = 1 << 40


def status(exc: BaseException) -> int:
    """dockerd's status code for an error: the class decides, never the text."""
    if isinstance(exc, errors.NotFound):
        return 404
    if isinstance(exc, errors.Conflict):
        return 409
    if isinstance(exc, errors.NotSupported):
        return 501
    if isinstance(
        exc,
        (
            UsageError,
            errors.InvalidReference,
            errors.InvalidMountSpec,
            errors.InvalidNetworkConfig,
            errors.InvalidSpec,
            errors.BuildError,
            errors.ArchiveError,
        ),
    ):
        return 400
    return 500


def docker_message(exc: BaseException) -> str:
    """The message dockerd sends for this error, so that the docker CLI prints the line it
    prints against dockerd (``Error response from daemon: No such container: x``); ipydock's
    own hint (``see `ipydock ps -a```) is for ipydock's CLI, not for docker's."""
    if isinstance(exc, errors.ImageNotFound):
        return f"No such image: {exc.ref}"
    if isinstance(exc, errors.ContainerNotFound):
        return f"No such container: {exc.ref}"
    if isinstance(exc, errors.VolumeNotFound):
        return f"get {exc.name}: no such volume"
    if isinstance(exc, errors.NetworkNotFound):
        return f"network {exc.name} not found"
    if isinstance(exc, errors.ContainerNotRunning):
        return f"Container {exc.container_id} is not running"
    if isinstance(exc, errors.InvalidReference):
        return "invalid reference format"
    if isinstance(exc, errors.BuildStepFailed):  # the classic builder's line
        return f"The command '{_run_command(exc.instruction)}' returned a non-zero code: " + str(
            exc.exit_code
        )
    if isinstance(exc, errors.NetworkExists):
        return f"network with name {exc.name} already exists"
    if isinstance(exc, IPyDockError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _run_command(instruction: str) -> str:
    """``RUN exit 7`` as the classic builder names it: ``/bin/sh -c exit 7`` (exec form: the
    words joined)."""
    body = instruction.split(None, 1)[1] if " " in instruction.strip() else ""
    if body.lstrip().startswith("["):
        try:
            return " ".join(json.loads(body))
        except ValueError:
            pass
    return f"/bin/sh -c {body}"


def frame(stream: int, data: bytes) -> bytes:
    """One frame of docker's multiplexed stream: stream (0 stdin, 1 stdout, 2 stderr), three
    zero bytes, the payload's length (big-endian), the payload."""
    return struct.pack(">BxxxL", stream, len(data)) + data


class Handler(web.RequestHandler):
    """A route: its method (``get``/``post``/…) is one function of the route table."""

    _body: IO[bytes] | None = None

    @property
    def service(self) -> Service:
        return self.settings["service"]  # type: ignore[no-any-return]

    @property
    def backend(self) -> Any:
        return self.service.backend

    def prepare(self) -> None:
        self.service.busy(+1)
        self.request.connection.set_max_body_size(_MAX_BODY)  # type: ignore[union-attr]
        self._body = tempfile.SpooledTemporaryFile(_SPOOL, dir=self.service.tmp_dir)  # noqa: SIM115 - closed in _release

    def data_received(self, chunk: bytes) -> None:
        assert self._body is not None
        self._body.write(chunk)

    def on_finish(self) -> None:
        self._release()

    def on_connection_close(self) -> None:
        self.gone = True
        self._release()

    gone = False
    _released = False

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self.service.busy(-1)
            if self._body is not None:
                self._body.close()

    # -- the request ---------------------------------------------------------------------------

    def body(self) -> IO[bytes]:
        """The body as sent (a file at its start)."""
        assert self._body is not None
        self._body.seek(0)
        return self._body

    def json_body(self) -> dict[str, Any]:
        """The JSON object sent; ``{}`` for no body. Malformed: a 400 that says so."""
        data = self.body().read()
        if not data.strip():
            return {}
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise UsageError(f"invalid JSON in the request body: {exc}") from exc
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UsageError("invalid JSON in the request body: expected an object")
        return value

    def query(self, name: str, default: str = "") -> str:
        return self.get_query_argument(name, default) or default

    def queries(self, name: str) -> list[str]:
        return [v for v in self.get_query_arguments(name) if v]

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        return value.lower() not in ("", "0", "false", "no")

    def number(self, name: str, default: int | None = None) -> int | None:
        value = self.get_query_argument(name, "")
        if value in ("", None):
            return default
        try:
            return int(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UsageError(f"invalid value for {name}: {value!r} (a number)") from exc

    def filters(self) -> dict[str, list[str]]:
        """docker's ``filters``: ``{"key": ["v"]}``, or the old ``{"key": {"v": true}}``."""
        text = self.query("filters")
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"invalid filter: {exc}") from exc
        out: dict[str, list[str]] = {}
        for key, values in (raw or {}).items():
            if isinstance(values, dict):
                values = [v for v, on in values.items() if on]
            out[key] = [str(v) for v in values]
        return out

    # -- the answer ----------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(*args, **kw)`` in a worker thread (the engine blocks); the loop serves on."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args, **kw))

    def send_json(self, value: Any, code: int = 200) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value) + "\n")

    def no_content(self, code: int = 204) -> None:
        self.set_status(code)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
        elif exc is not None:
            message = docker_message(exc)
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}) + "\n")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, (IPyDockError, web.HTTPError)):
            return
        log.error("internal error in %s %s", self.request.method, self.request.uri,
                  exc_info=(typ, value, tb))  # fmt: skip

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is not None and not isinstance(exc, web.HTTPError):
            status_code = status(exc)
        if self._headers_written:  # a stream already under way: end it, say it in-band
            self.finish()
            return
        super().send_error(status_code, **kwargs)

    async def stream(self, items: Iterable[T], render: Callable[[T], bytes | None]) -> None:
        """Send what ``items`` (a blocking iterator, run in a thread of its own) yields, each
        rendered, flushed as it comes; ends quietly when the client goes away."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=256)
        stop = threading.Event()

        def pump() -> None:
            try:
                for item in items:
                    if stop.is_set():
                        break
                    asyncio.run_coroutine_threadsafe(queue.put(("item", item)), loop).result()
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
                return
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

        threading.Thread(target=pump, daemon=True, name="ipydock-service-stream").start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                data = render(value)
                if data and not self.gone:
                    self.write(data)
                    await self.flush()
        except iostream.StreamClosedError:
            return
        finally:
            stop.set()
            while not queue.empty():  # let a pump blocked on a full queue see ``stop``
                queue.get_nowait()
