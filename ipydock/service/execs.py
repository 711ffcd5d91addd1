"""Exec routes: ``POST /containers/{id}/exec`` makes an exec instance, ``POST /exec/{id}/start``
runs it (hijacked: stdin in, framed stdout/stderr out), ``GET /exec/{id}/json`` tells its exit
code; ``/exec/{id}/resize`` waits for terminals.

::

    client stdin --Hijacked.pump_stdin--> pipe --> process (Backend.exec, in a thread)
    process stdout/stderr --> two pipes --reader threads--> frame(1|2) --> client
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

from ipydock.errors import ContainerNotRunning, ExecNotFound
from ipydock.service import terminals
from ipydock.service.hijack import hijack

if TYPE_CHECKING:
    from ipydock.service.base import Handler
    from ipydock.service.state import ExecInstance


async def create(h: Handler, name: str) -> None:
    body = h.json_body()
    command = list(body.get("Cmd") or [])
    if not command:
        from ipydock.errors import UsageError

        raise UsageError("No exec command specified")
    detail = await h.call(h.backend.inspect_container, name)
    if not detail.state.get("Running"):
        raise ContainerNotRunning(detail.id)
    inst = h.service.new_exec(
        container=detail.id, command=command, env=list(body.get("Env") or []),
        workdir=body.get("WorkingDir") or None, user=body.get("User") or None,
        attach_stdin=bool(body.get("AttachStdin")), attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
    )  # fmt: skip
    inst.tty = bool(body.get("Tty"))
    h.send_json({"Id": inst.id}, 201)


def _find(h: Handler, exec_id: str) -> ExecInstance:
    inst = h.service.execs.get(exec_id)
    if inst is None:
        raise ExecNotFound(exec_id)
    return inst


async def inspect(h: Handler, name: str) -> None:
    inst = _find(h, name)
    h.send_json({
        "ID": inst.id, "Running": inst.running, "ExitCode": inst.exit_code,
        "ProcessConfig": {"tty": False, "entrypoint": inst.command[0],
                          "arguments": inst.command[1:], "privileged": False,
                          "user": inst.user or ""},
        "OpenStdin": inst.attach_stdin, "OpenStderr": inst.attach_stderr,
        "OpenStdout": inst.attach_stdout, "CanRemove": False, "ContainerID": inst.container,
        "DetachKeys": "", "Pid": inst.pid,
    })  # fmt: skip


def _run(h: Handler, inst: ExecInstance, stdin: Any, stdout: Any, stderr: Any) -> int:
    code = h.backend.exec(inst.container, inst.command, env=inst.env, workdir=inst.workdir,
                          user=inst.user, stdin=stdin, stdout=stdout, stderr=stderr)  # fmt: skip
    return int(code)


async def start(h: Handler, name: str) -> None:
    inst = _find(h, name)
    body = h.json_body()
    if inst.running or inst.exit_code is not None:
        from ipydock.errors import Conflict

        raise Conflict(f"Error: Exec command {inst.id} has already run")
    inst.running = True
    loop = asyncio.get_running_loop()
    if body.get("Detach"):
        import subprocess

        async def background() -> None:
            try:
                inst.exit_code = await h.call(_run, h, inst, subprocess.DEVNULL,
                                              subprocess.DEVNULL, subprocess.DEVNULL)  # fmt: skip
            finally:
                inst.running = False
                inst.done.set()

        asyncio.ensure_future(background())
        h.no_content(200)
        return
    if inst.tty or body.get("Tty"):
        await _start_terminal(h, inst)
        return
    conn = await hijack(h)
    h.service.busy(+1)
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if inst.attach_stdin else (None, None)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
    readers = [_reader(loop, queue, out_r, 1), _reader(loop, queue, err_r, 2)]
    import subprocess

    def run() -> int:
        try:
            return _run(h, inst, in_r if in_r is not None else subprocess.DEVNULL, out_w, err_w)
        finally:
            for fd in (in_r, out_w, err_w):
                if fd is not None:
                    os.close(fd)

    pump = asyncio.ensure_future(conn.pump_stdin(in_w))
    job = asyncio.ensure_future(h.call(run))
    try:
        ended = 0
        while ended < 2:
            item = await queue.get()
            if item is None:
                ended += 1
                continue
            stream, data = item
            if (stream == 1 and inst.attach_stdout) or (stream == 2 and inst.attach_stderr):
                await conn.send(stream, data)
        inst.exit_code = await job
    except Exception:  # noqa: BLE001 - the exec failed to run: 126 as docker's
        inst.exit_code = 126
    finally:
        inst.running = False
        inst.done.set()
        pump.cancel()
        for t in readers:
            t.join(timeout=0)
        h.service.busy(-1)
        await conn.close()


def _reader(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[int, bytes] | None], fd: int,
    stream: int,
) -> threading.Thread:  # fmt: skip
    def read() -> None:
        try:
            while data := os.read(fd, 65536):
                loop.call_soon_threadsafe(queue.put_nowait, (stream, data))
        finally:
            os.close(fd)
            loop.call_soon_threadsafe(queue.put_nowait, None)

    t = threading.Thread(target=read, daemon=True, name="ipydock-exec-output")
    t.start()
    return t


async def _start_terminal(h: Handler, inst: ExecInstance) -> None:
    """``exec -it``: the command on a terminal of its own, spliced to the client; a client
    that leaves detaches (the command goes on, as with docker's daemon)."""
    conn = await hijack(h, tty=True)
    h.service.busy(+1)
    try:
        inst.session = await h.call(h.backend.exec_terminal, inst.container, inst.command,
                                    env=inst.env, workdir=inst.workdir, user=inst.user)  # fmt: skip
        if await terminals.splice(conn, inst.session):
            inst.exit_code = await h.call(inst.session.wait)
        else:
            inst.session.release()
    except Exception:  # noqa: BLE001 - the exec failed to run: 126 as docker's
        inst.exit_code = 126
    finally:
        inst.running = False
        inst.session = None
        inst.done.set()
        h.service.busy(-1)
        await conn.close()


async def resize(h: Handler, name: str) -> None:
    from ipydock.errors import UsageError

    inst = _find(h, name)
    if inst.session is None:
        raise UsageError(f"exec {inst.id} has no terminal to resize")
    inst.session.terminal.resize(h.number("h", 0) or 0, h.number("w", 0) or 0)
    h.no_content(200)
