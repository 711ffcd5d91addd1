"""``ssh://[user@]host[:port]`` engines through the system's ``ssh``, as the docker CLI reaches
them: each connection is one ``ssh … docker system dial-stdio`` on the remote host.

::

    docker.APIClient ──unix://TMP/engine.sock──> SshTunnel (a thread accepting)
        each connection ──> ssh [-l USER] [-p PORT] -- HOST docker system dial-stdio
                            two threads copy bytes both ways; end of input is passed on
                            (the remote's dial-stdio half-closes toward the engine), so an
                            exec's or attach's stdin ends as it should

The SDK's own ``ssh://`` support needs paramiko even to run the ssh binary, keeps no handle on
ssh's error output and leaves a zombie per request; a unix socket in front of ``ssh`` gives the
SDK a transport it knows (hijacked connections included), ssh's last error line for the one
line a user sees, and processes that are waited for. Keys, ``known_hosts`` and options are the
user's ssh configuration, as for ``docker -H ssh://…``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import IO
from urllib.parse import urlsplit

from ipydock.errors import UsageError

__all__ = ["SshTunnel"]

COMMAND = "docker system dial-stdio"


def ssh_argv(url: str) -> list[str]:
    """The ssh command line for ``url`` (docker's: ``-l USER``, ``-p PORT``, ``--``)."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        raise UsageError(f"{url}: an ssh engine is ssh://[USER@]HOST[:PORT] (no path)")
    ssh = shutil.which("ssh")
    if ssh is None:
        raise UsageError(f"{url}: no ssh client here (apt-get install openssh-client)")
    argv = ["ssh"]  # by name, as docker runs it: a wrapper first on PATH is honoured
    if parts.username:
        argv += ["-l", parts.username]
    if parts.port:
        argv += ["-p", str(parts.port)]
    return [*argv, "--", parts.hostname, COMMAND]


class SshTunnel:
    """A private unix socket (:attr:`url`) whose connections are ``ssh`` sessions running
    ``docker system dial-stdio`` on the remote host. :meth:`close` ends them all."""

    def __init__(self, url: str) -> None:
        self.remote = url
        self.argv = ssh_argv(url)
        self.dir = tempfile.mkdtemp(prefix="ipydock-ssh-")
        self.path = os.path.join(self.dir, "engine.sock")
        self.url = f"unix://{self.path}"
        self.last_error = ""  # ssh's (or the remote docker's) last stderr line
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(self.path)
        self._server.listen(16)
        self._closed = False
        threading.Thread(target=self._accept, name="ipydock-ssh-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """One connection: an ssh process, bytes both ways, then it is waited for."""
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        except OSError as exc:
            self.last_error = f"ssh: {exc}"
            conn.close()
            return
        with self._lock:
            self._procs.add(proc)
        assert proc.stdin and proc.stdout and proc.stderr
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        threads = [
            threading.Thread(target=_copy, args=(conn.recv, stdin, stdin.close), daemon=True),
            threading.Thread(target=self._errors, args=(stderr,), daemon=True),
        ]  # fmt: skip
        for t in threads:
            t.start()
        # the remote's answer back to the client; its end ends the connection
        _copy(lambda n: os.read(stdout.fileno(), n), conn, lambda: _shut(conn))
        proc.wait()
        with contextlib.suppress(OSError):  # wakes the reader of a client that stays
            conn.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=5)
        conn.close()
        stdout.close()
        with self._lock:
            self._procs.discard(proc)

    def _errors(self, stream: IO[bytes]) -> None:
        for line in stream:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.last_error = text
        stream.close()

    def close(self) -> None:
        """Stop accepting, end every session (their ssh processes), remove the socket."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _copy(read: Callable[[int], bytes], out: socket.socket | IO[bytes],
          done: Callable[[], None]) -> None:  # fmt: skip
    """Bytes from ``read`` to ``out`` until end of input (or an error: the other side went
    away), then ``done`` (pass the end on)."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := read(1 << 16):
            if isinstance(out, socket.socket):
                out.sendall(chunk)
            else:
                out.write(chunk)
                out.flush()
    with contextlib.suppress(OSError, ValueError):
        done()


def _shut(conn: socket.socket) -> None:
    conn.shutdown(socket.SHUT_WR)
