"""Container routes: create, start, stop, kill, restart, remove, wait, logs, attach, inspect,
list, top, changes, archive (``docker cp``), export, prune, stats.

``docker run`` through the API is four requests: ``create``; ``attach`` (a hijacked
connection, before the start so no output is lost); ``wait?condition=next-exit``; ``start``.
The attach leaves an attach point (:mod:`ipydock.service.state`); the start finds it, starts the
container with the point's stdin pipe, and one thread follows the run: its output to the
attached client, then its exit code to every ``wait``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tarfile
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from ipydock.errors import ContainerNotFound, UsageError
from ipydock.service import convert, terminals
from ipydock.service.base import frame
from ipydock.service.events import container_attrs
from ipydock.service.hijack import hijack
from ipydock.service.state import AttachPoint

if TYPE_CHECKING:
    from ipydock.service.base import Handler

_STREAMS = {"stdout": 1, "stderr": 2}
_PS_FILTERS = ("id", "name", "status", "label", "ancestor", "exited")


async def create(h: Handler) -> None:
    opts = convert.run_options(h.json_body(), h.query("name"))
    cid = await h.call(h.backend.create_container, opts)
    if h.service.events.active:
        detail = await h.call(h.backend.inspect_container, cid)
        h.service.events.note(cid, "created", container_attrs(detail))
    h.send_json({"Id": cid, "Warnings": []}, 201)


async def list_(h: Handler) -> None:
    filters = convert.filter_list(h.filters(), _PS_FILTERS)
    rows = await h.call(h.backend.containers, all=h.flag("all"), filters=filters)
    limit = h.number("limit", -1) or -1
    if limit > 0:
        rows = rows[:limit]
    h.send_json([convert.container_summary(r) for r in rows])


async def inspect(h: Handler, name: str) -> None:
    detail = await h.call(h.backend.inspect_container, name)
    networks = await h.call(h.backend.networks) if detail.state.get("Running") else []
    h.send_json(convert.container_inspect(detail, networks))


# -- lifecycle ---------------------------------------------------------------------------------


async def start(h: Handler, name: str) -> None:
    detail = await h.call(h.backend.inspect_container, name)
    cid = detail.id
    point = h.service.attach_points.pop(cid, None)
    if detail.config.get("Tty"):
        await _start_terminal(h, detail, point)
        return
    stdin = point.stdin if point else None
    try:
        run = await h.call(h.backend.start_following, cid, stdin=stdin)
    except BaseException as exc:
        if point is not None:
            point.started.set_exception(exc)
        raise
    finally:
        if stdin is not None:
            os.close(stdin)  # the container holds its own copy now
    if run is None:
        if point is not None:
            point.started.set_result(None)
        h.no_content(304)
        return
    exit_code = h.service.exit_of(cid)
    loop = asyncio.get_running_loop()
    events, attrs = h.service.events, container_attrs(detail)
    events.note(cid, "running", attrs)
    auto_remove = bool(detail.host_config.get("AutoRemove"))
    output: asyncio.Queue[tuple[str, str] | None] | None = None
    if point is not None:
        output = asyncio.Queue()
        point.started.set_result(output)

    def follow() -> None:
        try:
            if output is not None:
                for stream, text, _time in run.output():
                    loop.call_soon_threadsafe(output.put_nowait, (stream, text))
            code = run.wait()
        except Exception:  # noqa: BLE001 - the record has the state; 137 as a lost container
            code = 137
        if output is not None:
            loop.call_soon_threadsafe(output.put_nowait, None)

        def settle() -> None:
            events.note(cid, "exited", attrs, code)
            if auto_remove:
                events.note(cid, "removed")
            if not exit_code.done():
                exit_code.set_result(code)

        loop.call_soon_threadsafe(settle)

    threading.Thread(target=follow, daemon=True, name=f"ipydock-run-{cid[:12]}").start()
    h.no_content()


async def _start_terminal(h: Handler, detail: Any, point: AttachPoint | None) -> None:
    """A terminal container: started with its terminal connected first; an attached client
    (``docker run -it``) gets the session, otherwise the supervisor keeps the terminal."""
    if detail.state.get("Running"):
        if point is not None:
            point.started.set_result(None)
        h.no_content(304)
        return
    cid = detail.id
    try:
        session = await h.call(h.backend.start_terminal, cid)
    except BaseException as exc:
        if point is not None:
            point.started.set_exception(exc)
        raise
    exit_code = h.service.exit_of(cid)
    loop = asyncio.get_running_loop()
    events, attrs = h.service.events, container_attrs(detail)
    events.note(cid, "running", attrs)
    auto_remove = bool(detail.host_config.get("AutoRemove"))

    def settle(code: int) -> None:
        events.note(cid, "exited", attrs, code)
        if auto_remove:
            events.note(cid, "removed")
        if not exit_code.done():
            exit_code.set_result(code)

    if point is not None:
        point.started.set_result(session)
        terminals.wait_in_thread(loop, session, settle)
    else:
        session.release()  # the supervisor keeps the terminal; `attach` finds it

        def wait() -> None:
            try:
                code = h.backend.wait_container(cid)
            except Exception:  # noqa: BLE001 - gone (--rm): the record had the state
                code = 0
            loop.call_soon_threadsafe(settle, code)

        threading.Thread(target=wait, daemon=True, name=f"ipydock-run-{cid[:12]}").start()
    h.no_content()


async def stop(h: Handler, name: str) -> None:
    detail = await h.call(h.backend.inspect_container, name)
    if not detail.state.get("Running"):
        h.no_content(304)
        return
    t = h.number("t")
    await h.call(h.backend.stop_container, detail.id, t)
    h.no_content()


async def kill(h: Handler, name: str) -> None:
    await h.call(h.backend.kill_container, name, h.query("signal") or "KILL")
    h.no_content()


async def restart(h: Handler, name: str) -> None:
    detail = await h.call(h.backend.inspect_container, name)
    if detail.state.get("Running"):
        await h.call(h.backend.stop_container, detail.id, h.number("t"))
    await start(h, detail.id)


async def remove(h: Handler, name: str) -> None:
    cid = await h.call(h.backend.remove_container, name, force=h.flag("force"),
                       volumes=h.flag("v"))  # fmt: skip
    h.service.events.note(cid, "removed")
    h.no_content()


async def rename(h: Handler, name: str) -> None:
    from ipydock.errors import NotSupported

    raise NotSupported("rename", "bundled", "the API service cannot rename yet; create the "
                       "container again with --name")  # fmt: skip


async def wait(h: Handler, name: str) -> None:
    """``POST /containers/{id}/wait``: ``not-running`` (default), ``next-exit``, ``removed``."""
    condition = h.query("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise UsageError(f"invalid condition: {condition!r}")
    detail = await h.call(h.backend.inspect_container, name)
    running = bool(detail.state.get("Running"))
    known = h.service.exits.get(detail.id)
    h.set_header("Content-Type", "application/json")
    h.set_status(200)
    await h.flush()  # dockerd answers the headers at once; the body when it is over
    if not running and condition == "not-running":
        code = int(detail.state.get("ExitCode", 0))
    elif known is not None and not known.done() or not running:
        code = await asyncio.shield(h.service.exit_of(detail.id))
    else:
        code = await h.call(h.backend.wait_container, detail.id)
    if not h.gone:
        h.finish(json.dumps({"StatusCode": code, "Error": None}) + "\n")


# -- output: logs and attach -------------------------------------------------------------------


async def logs(h: Handler, name: str) -> None:
    want = {s for s in ("stdout", "stderr") if h.flag(s)}
    if not want:
        raise UsageError("Bad parameters: you must choose at least one stream")
    tail_text = h.query("tail") or "all"
    if tail_text != "all" and not tail_text.lstrip("-").isdigit():
        raise UsageError(f"invalid tail {tail_text!r}: a number or all")
    tail = None if tail_text == "all" or int(tail_text) < 0 else int(tail_text)
    since, until = _time_param(h, "since"), _time_param(h, "until")
    stamps = h.flag("timestamps")
    entries = await h.call(lambda: h.backend.logs(name, follow=h.flag("follow"), tail=tail))
    h.set_header("Content-Type", "application/vnd.docker.raw-stream")
    h.set_status(200)
    await h.flush()

    def render(e: Any) -> bytes | None:
        if e.stream not in want or not _within(e.time, since, until):
            return None
        text = f"{e.time} {e.text}" if stamps else e.text
        return frame(_STREAMS.get(e.stream, 1), text.encode())

    await h.stream(entries, render)
    if not h.gone:
        h.finish()


def _time_param(h: Handler, name: str) -> float | None:
    text = h.query(name)
    if not text or text == "0":
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise UsageError(f"invalid {name}: {text!r} (a Unix time)") from exc


def _within(stamp: str, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    from datetime import datetime

    when = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    return (since is None or when >= since) and (until is None or when <= until)


async def attach(h: Handler, name: str) -> None:
    """``POST /containers/{id}/attach``: before the start (``docker run``), the run's output
    and the client's stdin; on a running container, its output from now on."""
    detail = await h.call(h.backend.inspect_container, name)
    if detail.config.get("Tty"):
        await _attach_terminal(h, detail)
        return
    want = {s for s in ("stdout", "stderr") if h.flag(s)}
    use_stdin = h.flag("stdin") and bool(detail.config.get("OpenStdin"))
    running = bool(detail.state.get("Running"))
    logs = h.flag("logs")
    conn = await hijack(h)
    h.service.busy(+1)
    try:
        if running:
            await _follow(h, conn, detail.id, want, follow=True, tail=None if logs else 0)
            return
        if logs:  # what an earlier run printed, then this one's (``docker start -a``)
            await _follow(h, conn, detail.id, want, follow=False, tail=None)
        r, w = os.pipe2(os.O_CLOEXEC) if use_stdin else (None, None)
        point = AttachPoint(r, asyncio.get_running_loop().create_future())
        h.service.attach_points[detail.id] = point
        pump = asyncio.ensure_future(conn.pump_stdin(w)) if use_stdin else None
        try:
            output = await point.started
        except Exception:  # the start failed: the client hears it from the start request
            output = None
        if output is not None:
            while (item := await output.get()) is not None:
                stream, text = item
                if stream in want:
                    await conn.send(_STREAMS.get(stream, 1), text.encode())
        if pump is not None:
            pump.cancel()
    finally:
        h.service.attach_points.pop(detail.id, None)
        h.service.busy(-1)
        await conn.close()


async def _attach_terminal(h: Handler, detail: Any) -> None:
    """``attach`` of a terminal container: its terminal, raw, both ways; before the start
    (``docker run -it``) it waits for the start to hand over the session."""
    conn = await hijack(h, tty=True)
    h.service.busy(+1)
    try:
        if detail.state.get("Running"):
            session = await h.call(h.backend.attach_terminal, detail.id)
            await terminals.splice(conn, session)
            session.release()  # a detach: the container keeps its terminal
            return
        point = AttachPoint(None, asyncio.get_running_loop().create_future())
        h.service.attach_points[detail.id] = point
        try:
            session = await point.started
        except Exception:  # the start failed: the client hears it from the start request
            session = None
        if session is not None and not await terminals.splice(conn, session):
            session.release()  # the client went: the container goes on
        elif session is not None:
            session.terminal.close()  # it ended, all of it relayed
    finally:
        h.service.attach_points.pop(detail.id, None)
        h.service.busy(-1)
        await conn.close()


async def _follow(h: Handler, conn: Any, cid: str, want: set[str], *, follow: bool,
                  tail: int | None) -> None:  # fmt: skip
    """The container's log onto the hijacked connection (``follow``: until it stops)."""
    entries = await h.call(lambda: h.backend.logs(cid, follow=follow, tail=tail))
    queue: asyncio.Queue[Any] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for e in entries:
                loop.call_soon_threadsafe(queue.put_nowait, e)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, daemon=True, name="ipydock-attach-log").start()
    drain = asyncio.ensure_future(conn.pump_stdin(None)) if follow else None
    while (e := await queue.get()) is not None:
        if e.stream in want and not await conn.send(_STREAMS.get(e.stream, 1), e.text.encode()):
            break
    if drain is not None:
        drain.cancel()


async def resize(h: Handler, name: str) -> None:
    """``/resize?h=&w=``: the container's terminal gets the size (its processes SIGWINCH); a
    container without a terminal has nothing to resize (dockerd: an error)."""
    detail = await h.call(h.backend.inspect_container, name)
    if not detail.config.get("Tty"):
        raise UsageError(f"Container {detail.id} has no terminal to resize")
    rows, cols = h.number("h", 0) or 0, h.number("w", 0) or 0
    await h.call(h.backend.resize_container, detail.id, rows, cols)
    h.no_content(200)


# -- processes and files -----------------------------------------------------------------------


async def top(h: Handler, name: str) -> None:
    titles, rows = await h.call(h.backend.top, name)
    h.send_json({"Titles": titles, "Processes": rows})


async def changes(h: Handler, name: str) -> None:
    kinds = {"C": 0, "A": 1, "D": 2}
    found = await h.call(h.backend.diff, name)
    h.send_json([{"Path": c.path, "Kind": kinds[c.kind]} for c in found] or None)


def _stat_header(tar_path: str, path: str) -> str:
    """``X-Docker-Container-Path-Stat``: the first entry of the tar, as Go's ``os.FileMode``."""
    with tarfile.open(tar_path) as tar:
        first = tar.next()
    if first is None:
        raise ContainerNotFound(path)
    mode = first.mode & 0o7777
    if first.isdir():
        mode |= 1 << 31
    elif first.issym():
        mode |= 1 << 27
    stat = {"name": os.path.basename(path.rstrip("/")) or "/", "size": first.size,
            "mode": mode, "mtime": _go_time(first.mtime), "linkTarget": first.linkname}  # fmt: skip
    return base64.b64encode(json.dumps(stat).encode()).decode()


def _go_time(mtime: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(mtime, timezone.utc).isoformat().replace("+00:00", "Z")


async def _copy_out(h: Handler, name: str, path: str) -> str:
    """``path`` of the container as a tar in a temp file; a missing path is a 404."""
    fd, tmp = tempfile.mkstemp(dir=h.service.tmp_dir, prefix="cp-")
    try:
        with os.fdopen(fd, "wb") as out:
            await h.call(h.backend.copy_from, name, path, out)
    except UsageError as exc:  # copy_from's only UsageError: no such path in the container
        os.unlink(tmp)
        h.set_status(404)
        h.send_json({"message": f"Could not find the file {path} in container {name}"}, 404)
        raise _Answered from exc
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


class _Answered(Exception):
    """The answer is sent already."""


async def archive_head(h: Handler, name: str) -> None:
    await _archive(h, name, body=False)


async def archive_get(h: Handler, name: str) -> None:
    await _archive(h, name, body=True)


async def _archive(h: Handler, name: str, *, body: bool) -> None:
    """``HEAD``/``GET …/archive?path=``: the path's stat header, and with ``body`` its tar."""
    path = h.query("path")
    try:
        tmp = await _copy_out(h, name, path)
    except _Answered:
        return
    try:
        h.set_header("X-Docker-Container-Path-Stat", _stat_header(tmp, path))
        if body:
            h.set_header("Content-Type", "application/x-tar")
            with open(tmp, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.write(chunk)
                    await h.flush()
    finally:
        os.unlink(tmp)
    if body:
        h.finish()
    else:
        h.no_content(200)


async def archive_put(h: Handler, name: str) -> None:
    path = h.query("path")
    if not path:
        raise UsageError("path is required")
    await h.call(h.backend.copy_to, name, path, h.body())
    h.no_content(200)


async def export(h: Handler, name: str) -> None:
    """``GET /containers/{id}/export``: the container's whole filesystem as a tar."""
    fd, tmp = tempfile.mkstemp(dir=h.service.tmp_dir, prefix="export-")
    try:
        with os.fdopen(fd, "wb") as out:
            await h.call(h.backend.export_container, name, out)
        h.set_header("Content-Type", "application/x-tar")
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.write(chunk)
                await h.flush()
    finally:
        os.unlink(tmp)
    h.finish()


async def prune(h: Handler) -> None:
    if h.filters():
        raise UsageError("container prune filters are not supported by the bundled engine yet")
    result = await h.call(h.backend.prune_containers)
    h.send_json({"ContainersDeleted": result.deleted or None,
                 "SpaceReclaimed": result.space_reclaimed})  # fmt: skip


async def stats(h: Handler, name: str) -> None:
    """``GET /containers/{id}/stats?stream=false``: one sample from the container's cgroup."""
    if h.flag("stream", True) and not h.flag("one-shot"):
        raise UsageError("only one-shot stats are available (stream=false)")
    detail = await h.call(h.backend.inspect_container, name)
    procs = await h.call(h.backend.top, name) if detail.state.get("Running") else ([], [])
    h.send_json({
        "id": detail.id, "name": detail.name, "read": convert.rfc3339(None),
        "pids_stats": {"current": len(procs[1])},
        "memory_stats": {}, "cpu_stats": {}, "precpu_stats": {}, "blkio_stats": {},
        "networks": {},
    })  # fmt: skip
