"""Podman's Docker-compatible API (``podman system service``), found or started for the user.

::

    service_socket() ──> $IPYDOCK_PODMAN_SOCKET, else the user's Podman socket
                         (root: /run/podman/podman.sock; others: $XDG_RUNTIME_DIR/podman/…)
        answers?  yes ──> unix://that
                  no  ──> podman system service --time 600 unix://that   (a session of its own,
                          leaves after 10 idle minutes as Podman's socket activation does)
                          ──> wait until it answers ──> unix://that

The docker backend then talks to it as to dockerd; the differences Podman shows are listed in
the README ("Beyond one machine").
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from ipydock.errors import EngineUnavailable

__all__ = ["service_socket"]

IDLE_SECONDS = 600


def _socket_path() -> str:
    chosen = os.environ.get("IPYDOCK_PODMAN_SOCKET")
    if chosen:
        return chosen
    if os.geteuid() == 0:
        return "/run/podman/podman.sock"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return os.path.join(base, "podman", "podman.sock")


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        try:
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False


def service_socket(timeout: float = 30) -> str:
    """``unix://…`` of a Podman service that answers (see the module docstring)."""
    path = _socket_path()
    url = f"unix://{path}"
    if _answers(path):
        return url
    podman = shutil.which("podman")
    if podman is None:
        raise EngineUnavailable(url, "podman is not installed (apt-get install podman)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log = os.path.join(os.path.dirname(path), "ipydock-podman-service.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen([podman, "system", "service", "--time", str(IDLE_SECONDS), url],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not _answers(path):  # wait for the service to answer (the event), bounded
        if proc.poll() is not None:
            raise EngineUnavailable(url, f"podman system service exited with {proc.returncode} "
                                    f"(see {log})")  # fmt: skip
        if time.monotonic() > deadline:
            proc.terminate()
            raise EngineUnavailable(url, f"podman system service did not answer in {timeout:.0f}"
                                    f" s (see {log})")  # fmt: skip
        time.sleep(0.05)
    return url
