"""What the service keeps between two requests: nothing the store does not also have.

Containers, images, volumes and networks live in the store (a container made here is the same
container ``%container`` and ``ipydock ps`` see). The service only remembers, for as long as it
runs, what docker's API itself keeps in the daemon's memory:

* attach points: a client attached to a created container before ``start`` (``docker run``
  does so), waiting for the start to hand it the container's output and stdin;
* exits: the exit code of a container this service started, for ``wait`` (a ``--rm``
  container is gone from the store when it exits);
* exec instances: ``POST /containers/{id}/exec`` makes one, ``/exec/{id}/start`` runs it.

Plus the idle timer of ``--time``: the service leaves after that many seconds without a request.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AttachPoint", "ExecInstance", "Service"]


@dataclass
class AttachPoint:
    """A client attached to a created container: ``stdin`` is the read end of its pipe (or
    None), ``started`` gets the engine's ``Attached`` when the container starts."""

    stdin: int | None
    started: asyncio.Future[Any]


@dataclass
class ExecInstance:
    """One ``exec`` as docker's API has it: made, then started once."""

    id: str
    container: str
    command: list[str]
    env: list[str]
    workdir: str | None
    user: str | None
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    tty: bool = False
    session: Any = None  # a terminal exec's TerminalSession while it runs (``/resize``)


class Service:
    """The service's memory (see the module docstring) and its idle timer."""

    def __init__(self, backend: Any, tmp_dir: str, idle: float, on_idle: Callable[[], None]):
        self.backend = backend
        self.tmp_dir = tmp_dir
        self.attach_points: dict[str, AttachPoint] = {}
        self.exits: dict[str, asyncio.Future[int]] = {}
        self.execs: dict[str, ExecInstance] = {}
        self.events: Any = None  # system.Events, made by serve()
        self._idle = idle
        self._on_idle = on_idle
        self._active = 0
        self._timer: asyncio.TimerHandle | None = None

    # -- idle timer ----------------------------------------------------------------------------

    def arm(self) -> None:
        """Start counting idle time (called once the server listens)."""
        self.busy(0)

    def busy(self, delta: int) -> None:
        """A request began (+1) or ended (-1); with none left, the idle timer runs."""
        self._active += delta
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._active == 0 and self._idle > 0:
            self._timer = asyncio.get_running_loop().call_later(self._idle, self._on_idle)

    # -- exits and execs -----------------------------------------------------------------------

    def exit_of(self, cid: str) -> asyncio.Future[int]:
        """The future exit code of the next run of ``cid`` (made on first ask)."""
        fut = self.exits.get(cid)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self.exits[cid] = fut
        return fut

    def new_exec(self, **kw: Any) -> ExecInstance:
        done = [i for i, e in self.execs.items() if e.exit_code is not None]
        for old in done[: max(0, len(done) - 100)]:  # dockerd forgets them too, later
            del self.execs[old]
        inst = ExecInstance(id=secrets.token_hex(32), **kw)
        self.execs[inst.id] = inst
        return inst
