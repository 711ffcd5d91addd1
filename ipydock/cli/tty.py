"""The CLI's side of a terminal (``run -it``, ``start -ai``, ``attach``, ``exec -it``) and of
docker's sig-proxy (``run`` without ``-t``).

::

    user's terminal (raw mode while attached)          TerminalSession (engine)
      stdin ──read── DetachKeys (ctrl-p,ctrl-q) ──────> terminal.write()   ^C is a byte here
      stdout <─write─────────────────────────────────── terminal.read()    b"": it ended
      SIGWINCH ──> (rows, cols) of our terminal ──────> terminal.resize()
      SIGTERM/SIGHUP: leave (the container goes on); the terminal is restored on every way out
    then: session.wait() -> the exit code, or detached -> 0 and the container keeps running

Through the command server (``ipydock.launcher``) this runs in the server's worker on the
caller's own fds: raw mode and the window size are properties of the terminal device, not of
the process, so they work from there; the kernel signals the launcher (the terminal's
foreground process), which passes SIGWINCH, SIGINT, SIGTERM, SIGHUP and SIGQUIT on to the
worker. If the worker is killed outright, the launcher restores the terminal itself.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import termios
import tty
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from ipydock.errors import NotATerminal

if TYPE_CHECKING:  # the engine's parts load when a terminal is used (every run imports us)
    from ipydock.api import TerminalSession

__all__ = [
    "ForceExit",
    "SigProxy",
    "console_size",
    "interact",
    "no_sig_proxy",
    "require_terminal",
]

#: What ``run`` without ``-t`` passes on to the container (docker: all but CHLD, PIPE, URG,
#: WINCH); SIGKILL and SIGSTOP cannot be caught.
PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")


def require_terminal(fd: int = 0) -> None:
    """docker's refusal of ``-it`` when stdin is a pipe or a file."""
    if not os.isatty(fd):
        raise NotATerminal()


def console_size(*fds: int) -> tuple[int, int]:
    """(rows, cols) of the first of ``fds`` that is a terminal (docker: the output's)."""
    from ipydock.engine.runtime.console import get_size

    for fd in fds:
        if os.isatty(fd):
            return get_size(fd)
    return 0, 0


class _Leave(Exception):
    """SIGTERM or SIGHUP while attached: restore the terminal, detach, exit."""


def interact(
    session: TerminalSession, *, stdin: bool = True, detach_keys: str | None = None,
    in_fd: int = 0, out_fd: int = 1,
) -> int | None:  # fmt: skip
    """Copy between our terminal and ``session`` until it ends (its exit code) or the user
    types the detach keys (None; the container goes on)."""
    from ipydock.engine.containers.terminal import DetachKeys

    keys = DetachKeys(detach_keys if detach_keys is not None else "ctrl-p,ctrl-q")
    term = session.terminal
    with _raw(in_fd if stdin else -1), _signals() as wake:
        reading = stdin
        try:
            while True:
                fds = [term.fileno(), wake] + ([in_fd] if reading else [])
                ready = select.select(fds, [], [])[0]
                if wake in ready:
                    _drain(wake)
                    rows, cols = console_size(out_fd, in_fd)
                    with contextlib.suppress(OSError):
                        term.resize(rows, cols)
                if term.fileno() in ready:
                    data = term.read()
                    if not data:
                        break
                    _write_all(out_fd, data)
                if reading and in_fd in ready:
                    data = os.read(in_fd, 4096)
                    if not data:  # our stdin ended: the container's input stays open
                        reading = False
                        continue
                    passed, detached = keys.feed(data)
                    if passed:
                        term.write(passed)
                    if detached:
                        session.release()
                        return None
        except _Leave:
            session.release()
            return None
    return session.wait()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode (as docker's client), restored on every way out."""
    if fd < 0 or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _signals() -> Iterator[int]:
    """A wake-up fd readable on SIGWINCH; SIGTERM and SIGHUP raise :class:`_Leave`."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def winch(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(w, b"w")

    def leave(_signum: int, _frame: FrameType | None) -> None:
        raise _Leave()

    saved = {
        signal.SIGWINCH: signal.signal(signal.SIGWINCH, winch),
        signal.SIGTERM: signal.signal(signal.SIGTERM, leave),
        signal.SIGHUP: signal.signal(signal.SIGHUP, leave),
    }
    try:
        yield r
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        os.close(r)
        os.close(w)


@contextlib.contextmanager
def no_sig_proxy() -> Iterator[None]:
    """``--sig-proxy=false``: as docker's client, SIGINT and SIGTERM are ignored while
    attached; it leaves when the container exits."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class ForceExit(Exception):
    """A third SIGINT/SIGTERM while proxying: the CLI gives up waiting (docker's words)."""

    def __str__(self) -> str:
        return "got 3 SIGTERM/SIGINTs, forcefully exiting"


class SigProxy:
    """docker's ``--sig-proxy``: while the attached container runs, the signals this
    process receives go to it (``kill(id, SIG)``); those before it started go once it has.
    As docker's client, the third SIGINT/SIGTERM (a container that ignores them) raises
    :class:`ForceExit`: the CLI leaves, the container goes on."""

    def __init__(self, kill: Callable[[str, str], Any]) -> None:
        self.kill = kill
        self.container: str | None = None
        self.pending: list[str] = []
        self.saved: dict[int, Any] = {}
        self.stops = 0

    def __enter__(self) -> SigProxy:
        for name in PROXIED:
            self.saved[getattr(signal, name)] = signal.signal(getattr(signal, name), self._got)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)

    def started(self, container: str) -> None:
        self.container = container
        for name in self.pending:
            self._send(name)
        self.pending.clear()

    def _got(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if name in ("SIGINT", "SIGTERM"):
            self.stops += 1
            if self.stops >= 3:
                raise ForceExit()
        if self.container is None:
            self.pending.append(name)
        else:
            self._send(name)

    def _send(self, name: str) -> None:
        assert self.container is not None
        with contextlib.suppress(Exception):  # it may have just exited: nothing to signal
            self.kill(self.container, name)
