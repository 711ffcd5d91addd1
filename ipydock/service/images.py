"""Image routes: list, inspect, history, tag, delete, prune, build, create (import, pull),
push, get (save) and load. Each turns docker's parameters into the CLI's call and the model
back into docker's JSON; builds, pulls, pushes and loads answer with docker's JSON progress
stream (``{"stream": …}``, ``{"status": …}``, and ``{"error": …}`` when it fails midway)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from ipydock.display.text import build_line
from ipydock.errors import IPyDockError, UsageError
from ipydock.service import convert
from ipydock.service.base import docker_message

if TYPE_CHECKING:
    from ipydock.models import BuildEvent, TransferEvent
    from ipydock.service.base import Handler

_IMAGE_FILTERS = ("dangling", "reference", "label", "before", "since")


async def list_(h: Handler) -> None:
    filters = convert.filter_list(h.filters(), _IMAGE_FILTERS)
    rows = await h.call(h.backend.images, all=h.flag("all"), filters=filters)
    h.send_json(convert.image_summaries(rows))


async def inspect(h: Handler, name: str) -> None:
    h.send_json(convert.image_inspect(await h.call(h.backend.inspect_image, name)))


async def history(h: Handler, name: str) -> None:
    h.send_json(convert.history(await h.call(h.backend.history, name)))


async def tag(h: Handler, name: str) -> None:
    repo, tag_ = h.query("repo"), h.query("tag") or "latest"
    if not repo:
        raise UsageError("repository name must have at least one component")
    await h.call(h.backend.tag, name, f"{repo}:{tag_}")
    h.no_content(201)


def _removed(events: list[Any]) -> list[dict[str, str]]:
    return [{e.action.capitalize(): e.target} for e in events]


async def remove(h: Handler, name: str) -> None:
    events = await h.call(h.backend.remove_image, name, force=h.flag("force"))
    h.send_json(_removed(events))


async def prune(h: Handler) -> None:
    filters = h.filters()
    dangling = filters.pop("dangling", ["true"])
    every = dangling[-1].lower() in ("false", "0")
    result = await h.call(h.backend.prune_images, all=every,
                          filters=convert.filter_list(filters, ("label", "until")))  # fmt: skip
    h.send_json({"ImagesDeleted": _removed(result.deleted) or None,
                 "SpaceReclaimed": result.space_reclaimed})  # fmt: skip


async def commit(h: Handler) -> None:
    """``POST /commit?container=…&repo=…&tag=…``: the container's changes as a new image."""
    container, repo = h.query("container"), h.query("repo")
    target = f"{repo}:{h.query('tag') or 'latest'}" if repo else None
    body = h.json_body()
    if body:
        raise UsageError("commit with a config body is not supported yet; use changes=")
    image_id = await h.call(h.backend.commit, container, target, message=h.query("comment"),
                            author=h.query("author"), changes=h.queries("changes"))  # fmt: skip
    h.send_json({"Id": image_id}, 201)


# -- build -------------------------------------------------------------------------------------


def _build_message(e: BuildEvent) -> bytes | None:
    if e.kind == "context":
        return None  # the client printed its own "Sending build context" line
    line = build_line(e)
    out = b""
    if e.kind == "built":
        out += json.dumps({"aux": {"ID": e.image_id}}).encode() + b"\n"
    if line is None:
        return out or None
    return out + json.dumps({"stream": line + "\n"}).encode() + b"\n"


def _error_message(exc: BaseException) -> bytes:
    text = docker_message(exc)
    return json.dumps({"errorDetail": {"message": text}, "error": text}).encode() + b"\n"


async def build(h: Handler) -> None:
    """``POST /build``: the body is the context as a tar (gzip allowed)."""
    build_args = _json_param(h, "buildargs")
    labels = _json_param(h, "labels")
    if labels:
        raise UsageError("build --label is not supported by the bundled engine yet")
    quiet = h.flag("q")
    path = _spool_to_file(h)
    events: list[Any] = []

    def run(progress: Any) -> Any:
        try:
            return h.backend.build(
                path, dockerfile=h.query("dockerfile") or None, tags=h.queries("t"),
                build_args=build_args, target=h.query("target"), no_cache=h.flag("nocache"),
                progress=progress,
            )  # fmt: skip
        finally:
            os.unlink(path)

    h.set_header("Content-Type", "application/json")
    await _progress_stream(h, run, (lambda e: None) if quiet else _build_message, events)
    if quiet and events and not isinstance(events[-1], BaseException):
        h.write(json.dumps({"stream": events[-1].image_id + "\n"}) + "\n")
    h.finish()


def _json_param(h: Handler, name: str) -> dict[str, Any]:
    text = h.query(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"invalid {name}: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"invalid {name}: expected a JSON object")
    return value


def _spool_to_file(h: Handler) -> str:
    """The body in a named temp file (the builder and the archive code read paths)."""
    fd, path = tempfile.mkstemp(dir=h.service.tmp_dir, prefix="body-")
    with os.fdopen(fd, "wb") as out:
        body = h.body()
        while chunk := body.read(1 << 20):
            out.write(chunk)
    return path


async def _progress_stream(h: Handler, run: Any, render: Any, results: list[Any]) -> None:
    """Run ``run(progress)`` in a thread; each progress event rendered onto the response as it
    comes; the result (or the error) appended to ``results``. An error after the stream began
    is told in-band, as dockerd does."""

    def items() -> Any:
        import queue
        import threading

        q: queue.Queue[tuple[str, Any]] = queue.Queue()

        def worker() -> None:
            try:
                q.put(("result", run(lambda e: q.put(("event", e)))))
            except BaseException as exc:  # noqa: BLE001 - told in the stream
                q.put(("error", exc))

        threading.Thread(target=worker, daemon=True, name="ipydock-service-job").start()
        while True:
            kind, value = q.get()
            yield kind, value
            if kind != "event":
                return

    def render_item(item: tuple[str, Any]) -> bytes | None:
        kind, value = item
        if kind == "event":
            return render(value)  # type: ignore[no-any-return]
        results.append(value)
        if kind == "error":
            if not isinstance(value, IPyDockError):
                from ipydock.service.base import log

                log.error("internal error", exc_info=value)
            return _error_message(value)
        return None

    await h.stream(items(), render_item)


# -- create (import, pull), push, save, load ------------------------------------------------------


def _transfer(e: TransferEvent) -> bytes:
    msg: dict[str, Any] = {"status": e.status or e.text}
    if e.id:
        msg["id"] = e.id
    if e.total:
        msg["progressDetail"] = {"current": e.current, "total": e.total}
    if not e.id and e.text:
        msg["status"] = e.text
    return json.dumps(msg).encode() + b"\n"


async def create(h: Handler) -> None:
    """``POST /images/create``: ``fromSrc`` imports a tarball (``-``: the body), ``fromImage``
    pulls."""
    source, image = h.query("fromSrc"), h.query("fromImage")
    repo, tag_ = h.query("repo"), h.query("tag")
    h.set_header("Content-Type", "application/json")
    results: list[Any] = []
    if source:
        if source != "-":
            raise UsageError("import from a URL is not supported by the service yet; send the "
                             "tarball in the body (docker import FILE)")  # fmt: skip
        path = _spool_to_file(h)
        name = (f"{repo}:{tag_}" if tag_ else repo) or None  # the CLI sends repo=NAME:TAG

        def do_import(progress: Any) -> Any:
            try:
                return h.backend.import_image(path, name, message=h.query("message"),
                                              changes=h.queries("changes"))  # fmt: skip
            finally:
                os.unlink(path)

        await _progress_stream(h, do_import, lambda e: None, results)
        if results and isinstance(results[-1], str):
            h.write(json.dumps({"status": results[-1]}) + "\n")
    elif image:
        if "@" in image or ":" in image.rsplit("/", 1)[-1]:
            ref = image
        else:
            ref = f"{image}:{tag_ or 'latest'}" if not (tag_ or "").startswith("sha256:") \
                else f"{image}@{tag_}"  # fmt: skip

        def do_pull(progress: Any) -> Any:
            return h.backend.pull(ref, platform=h.query("platform") or None, progress=progress)

        await _progress_stream(h, do_pull, _transfer, results)  # with Digest: and Status:
    else:
        raise UsageError("images/create needs fromSrc or fromImage")
    h.finish()


async def push(h: Handler, name: str) -> None:
    tag_ = h.query("tag")
    ref = f"{name}:{tag_}" if tag_ else name
    results: list[Any] = []
    h.set_header("Content-Type", "application/json")

    def do_push(progress: Any) -> Any:
        return h.backend.push(ref, progress=progress)

    await _progress_stream(h, do_push, _transfer, results)  # with "TAG: digest: …"
    if results and not isinstance(results[-1], BaseException):
        r = results[-1]
        h.write(json.dumps({"progressDetail": {}, "aux": {"Tag": r.tag, "Digest": r.digest,
                                                          "Size": r.size}}) + "\n")  # fmt: skip
    h.finish()


async def get(h: Handler, name: str | None = None) -> None:
    """``GET /images/{name}/get`` and ``GET /images/get?names=…``: a docker-archive tarball."""
    names = [name] if name else h.queries("names")
    if not names:
        raise UsageError("no image names given")
    with tempfile.TemporaryFile(dir=h.service.tmp_dir) as out:
        await h.call(h.backend.save, names, out)
        out.seek(0)
        h.set_header("Content-Type", "application/x-tar")
        while chunk := out.read(1 << 20):
            h.write(chunk)
            await h.flush()
    h.finish()


async def load(h: Handler) -> None:
    path = _spool_to_file(h)
    try:
        loaded = await h.call(h.backend.load, path)
    finally:
        os.unlink(path)
    h.set_header("Content-Type", "application/json")
    for image in loaded:
        for old_name, old_id in image.replaced:
            h.write(
                json.dumps(
                    {
                        "stream": f"The image {old_name} already exists, renaming the "
                        f"old one with ID {old_id} to empty string\n"
                    }
                )
                + "\n"
            )
        names = image.tags or [image.id]
        for n in names:
            word = "Loaded image" if image.tags else "Loaded image ID"
            h.write(json.dumps({"stream": f"{word}: {n}\n"}) + "\n")
    h.finish()
