"""The ``ipydock`` command: hand the command line to a warm command server, or run it here.

A fresh CPython spends most of a short command starting up and importing (about 100 ms on a
small machine before any work); docker's client is a thin binary talking to a daemon. So, as
Mercurial's ``chg`` does, the command line is handed to a warm single-threaded process
(:mod:`ipydock.cli.server`) that forks a worker for each command; the worker takes this
process's stdin/stdout/stderr, environment, working directory and umask, runs exactly what
``ipydock.cli.main`` would run here, and its exit code comes back::

    ipydock ARGS ──connect──> <runtime dir>/cmd-<key>.sock ──fork──> worker: cli.main(ARGS)
      │ fds 0,1,2 + argv, cwd, umask, environment (SCM_RIGHTS)        │
      │ <── "pid N" ; signals (INT, TERM, HUP, QUIT, WINCH, USR1/2)    │
      │     are passed to N (a terminal's raw mode is restored here if │
      │     the worker was killed in it)                               │
      └ <── "exit CODE" ──────────────────────────────────────────────┘

The server holds no state of its own (everything is on disk under the store root), so using
it or not changes nothing but time. It is started in the background the first time it is
missing (this command then runs here), exits after ``IPYDOCK_SERVER_IDLE`` seconds without
work (default 600) or when ipydock's sources change, and ``IPYDOCK_SERVER=0`` turns it off.
``ipydock system server status|stop`` shows or stops it.

This module is the client; it imports only built-in modules (``socket``, ``signal`` and
``json`` would each cost several milliseconds here). ``launcher.c`` is the same client in C,
without the Python start (``native_launcher`` builds it and installs it as ``ipydock``); where
this one runs the command here, it execs this one: a change to the protocol or to
:func:`socket_key` is made in both.
"""

from __future__ import annotations

import _signal
import _socket
import os
import struct
import sys

TYPE_CHECKING = False  # typing would cost an import
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main", "runtime_dir", "socket_key", "socket_path"]

#: Passed on to the worker: the terminal signals us (its foreground process), not it; SIGWINCH
#: resizes an attached container's terminal, the others are docker's sig-proxy (cli/tty.py).
_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGWINCH", "SIGUSR1", "SIGUSR2")
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def runtime_dir() -> str:
    """Where the server's socket lives: private to this user (mode 0700)."""
    chosen = os.environ.get("IPYDOCK_RUNTIME_DIR")
    if chosen:
        return chosen
    if os.geteuid() == 0:
        return "/run/ipydock"
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, f"ipydock-{os.geteuid()}")


def socket_key() -> str:
    """One server per environment, Python version and installed package (a venv's server is
    not another's). Not the interpreter's path: ``.venv/bin/python`` and ``python3`` (pip's
    scripts name one, the native client another) are one interpreter. The native client
    (``launcher.c``) has this key baked in by ``native_launcher``."""
    key = 0
    for ch in f"{sys.prefix}\0{sys.implementation.cache_tag}\0{PACKAGE_DIR}":  # FNV-1a
        key = ((key ^ ord(ch)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF  # (hashlib: an import)
    return f"{key:016x}"


def socket_path() -> str:
    return os.path.join(runtime_dir(), f"cmd-{socket_key()}.sock")


def encode_request(argv: list[str]) -> bytes:
    """cwd, umask, argv and the environment as NUL-separated fields."""
    umask = os.umask(0)
    os.umask(umask)
    env = [f"{k}={v}" for k, v in os.environ.items()]
    fields = ["ipydock-1", os.getcwd(), str(umask), str(len(argv)), *argv, *env]
    return "\0".join(fields).encode("utf-8", "surrogateescape")


def decode_request(data: bytes) -> tuple[str, int, list[str], dict[str, str]]:
    fields = data.decode("utf-8", "surrogateescape").split("\0")
    if fields[0] != "ipydock-1":
        raise ValueError(f"unknown request version {fields[0]!r}")
    cwd, umask, count = fields[1], int(fields[2]), int(fields[3])
    argv = fields[4 : 4 + count]
    env = dict(item.split("=", 1) for item in fields[4 + count :] if "=" in item)
    return cwd, umask, argv, env


def _connect() -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(socket_path())
    except OSError:
        sock.close()
        return None
    return sock


def run_remote(argv: list[str]) -> int | None:
    """The command's exit code from the server, or None if it cannot take it (run it here)."""
    sock = _connect()
    if sock is None:
        return None
    pid = 0  # once the server has named its worker, the command runs there, never again here
    reply = b""
    terminal = _terminal_state()
    # The worker may write to our stdout before it has told us its pid: a Ctrl-C meanwhile
    # waits (blocked) and then goes to it, instead of killing us under a running command.
    forwarded = {getattr(_signal, name) for name in _SIGNALS}
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, forwarded)
    try:
        fds = struct.pack("3i", 0, 1, 2)
        sock.sendmsg([encode_request(argv)], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        reply = sock.recv(256)
        if not reply.startswith(b"pid "):  # "stale" (the sources changed) or gone
            return None
        pid = int(reply[4:])

        def forward(signum: int, _frame: object) -> None:
            try:  # noqa: SIM105 - contextlib would cost an import
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

        for signum in forwarded:
            _signal.signal(signum, forward)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        while True:
            try:
                reply = sock.recv(256)
                break
            except InterruptedError:  # a forwarded signal; PEP 475 retries, older code not
                continue
    except OSError:
        if not pid:
            return None
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        sock.close()
    if reply.startswith(b"exit "):
        code = int(reply[5:])
        if code > 128:  # killed: maybe in raw mode (run -it)
            _restore_terminal(terminal)
        return code
    _restore_terminal(terminal)
    # The server (or the connection) died under the worker: the command's effect is unknown,
    # so do not repeat it.
    os.write(2, b"Error: the ipydock command server went away; see `ipydock system server "
                b"status`, or set IPYDOCK_SERVER=0\n")  # fmt: skip
    return 1


def _terminal_state() -> list[Any] | None:
    """Our terminal's settings (stdin a terminal only: termios costs an import)."""
    if not os.isatty(0):
        return None
    import termios

    try:
        return termios.tcgetattr(0)
    except termios.error:
        return None


def _restore_terminal(saved: list[Any] | None) -> None:
    if saved is not None:
        import termios

        try:  # noqa: SIM105 - contextlib would cost an import
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        except termios.error:
            pass


def start_server() -> None:
    """Start a server in the background (its own session, nobody's child here)."""
    from ipydock.engine.runtime.detach import detach

    def serve() -> None:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(sys.executable, [sys.executable, "-m", "ipydock.cli.server", "serve"])

    detach(serve)


def enabled() -> bool:
    return os.environ.get("IPYDOCK_SERVER", "1") not in ("0", "no", "false", "off")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if enabled() and argv[:2] != ["system", "server"]:
        code = run_remote(argv)
        if code is not None:
            return code
        start_server()
    from ipydock.cli import main as run_here

    return run_here(argv)


if __name__ == "__main__":
    sys.exit(main())
