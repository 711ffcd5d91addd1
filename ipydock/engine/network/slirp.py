"""Rootless containers' network: ``slirp4netns`` (Debian's package), as Podman does.

::

    supervisor's runner (in the user's namespace), pid 1 paused in a new netns:
      slirp4netns --configure --mtu=65520 --disable-host-loopback
                  [--api-socket DIR/api.sock] --ready-fd W --exit-fd R  PID tap0
        tap0 10.0.2.100/24, default route via 10.0.2.2, DNS forwarder 10.0.2.3;
        outbound TCP/UDP leave from the host as the user (a userland NAT: no privilege)
      -p HOST:PORT  --> {"execute": "add_hostfwd", ...} on the API socket: slirp4netns
                        listens on the host's HOST (above 1024: an ordinary user's ports)
                        and forwards to 10.0.2.100:PORT
    pid 1 exits, or the runner dies --> the exit pipe closes --> slirp4netns exits

The container cannot reach the host's own 127.0.0.1 (``--disable-host-loopback``, Podman's
default). User-defined networks (bridges) need root: an unprivileged user is told so in one
line (:func:`refusal`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass

from ipydock.commands.runflags import Binding
from ipydock.errors import InvalidNetworkConfig, NotSupported

__all__ = ["GUEST", "Slirp", "available", "refusal", "start"]

GUEST = "10.0.2.100"  # the container's address with --configure


def available() -> bool:
    return shutil.which("slirp4netns") is not None


def refusal(mode: str) -> NotSupported:
    from ipydock.engine.network.bridge import rootless_refusal

    return rootless_refusal(f"run --network {mode}")


@dataclass
class Slirp:
    """A running slirp4netns for one container."""

    proc: subprocess.Popen[bytes]
    exit_w: int
    api_dir: str

    def publish(self, bindings: list[Binding]) -> list[Binding]:
        """Forward every binding's host port to the container; the bindings with real ports."""
        bound = []
        for b in bindings:
            port = b.host_port or _free_port(b.protocol)
            reply = self._call({"execute": "add_hostfwd", "arguments": {
                "proto": b.protocol, "host_addr": b.host_ip or "0.0.0.0", "host_port": port,
                "guest_port": b.container_port}})  # fmt: skip
            if "error" in reply:
                where = f"{b.host_ip or '0.0.0.0'}:{port}"
                why = (f"Bind for {where} failed: port is already allocated (choose another)"
                       if port >= 1024 else f"Bind for {where} failed: ports below 1024 "
                       "need root (choose one above 1024)")  # fmt: skip
                raise InvalidNetworkConfig("-p", why)
            bound.append(Binding(b.container_port, b.protocol, b.host_ip, port))
        return bound

    def _call(self, request: dict[str, object]) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.path.join(self.api_dir, "api.sock"))
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return dict(json.loads(data or b"{}"))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.exit_w)  # slirp4netns leaves when its exit fd closes
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.api_dir, ignore_errors=True)


def _free_port(protocol: str) -> int:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def start(pid: int, netns_path: str = "", userns_path: str = "") -> Slirp:
    """slirp4netns for the netns of ``pid`` (paused pid 1), once its tap is configured;
    ``netns_path``/``userns_path`` name the namespaces where ``/proc/PID`` is not ours to
    open (pid 1 runs as another id of the user's range)."""
    target = ["--netns-type=path", f"--userns-path={userns_path}", netns_path] if netns_path \
        else [str(pid)]  # fmt: skip
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
    api_dir = tempfile.mkdtemp(prefix="ipydock-slirp-")
    log = os.path.join(api_dir, "log")
    try:
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
                 "--api-socket", os.path.join(api_dir, "api.sock"), "--ready-fd", str(ready_w),
                 "--exit-fd", str(exit_r), *target, "tap0"],
                pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            )  # fmt: skip
    except BaseException:
        for fd in (ready_r, ready_w, exit_r, exit_w):
            os.close(fd)
        shutil.rmtree(api_dir, ignore_errors=True)
        raise
    os.close(ready_w)
    os.close(exit_r)
    slirp = Slirp(proc, exit_w, api_dir)
    with os.fdopen(ready_r, "rb") as ready:
        ok = ready.read(1) == b"1"
    if not ok:
        with open(log, errors="replace") as f:
            said = f.read().strip()
        slirp.stop()
        why = "; ".join(said.splitlines()) or "no reason given"
        raise NotSupported("the default network", "bundled", f"slirp4netns failed: {why} "
                           "(run with --network none, or as root)")  # fmt: skip
    return slirp
