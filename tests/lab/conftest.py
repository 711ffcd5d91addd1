"""A real Jupyter server (or JupyterLab) on 127.0.0.1 with a token and the ipydock server
extension, on a store of the test's own; helpers to call its REST routes and read its events."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.runtime import cgroups
from ipydock.engine.store import Store
from tests.conftest import require

PREFIX = "ipdl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    root: str  # the store both the server and the test's backend use
    work: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON or text) of ``METHOD /ipydock/api/PATH``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/ipydock/api/{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, ctype, raw = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
        return status, json.loads(raw) if "json" in ctype else raw.decode()

    def get(self, path: str) -> Any:
        status, data = self.call("GET", path)
        assert status == 200, (path, status, data)
        return data

    def events(self, path: str = "events") -> Events:
        return Events(self, path)


class Events:
    """An open ``GET events`` stream; :meth:`next` returns the next event's name."""

    def __init__(self, server: Server, path: str = "events") -> None:
        host, port = server.url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.data: Any = None  # the data of the last event, decoded
        self.conn.request("GET", f"/ipydock/api/{path}",
                          headers={"Authorization": f"token {server.token}"})  # fmt: skip
        self.response = self.conn.getresponse()
        assert self.response.status == 200

    def next(self, timeout: float) -> str:
        """The next event (keep-alive comments skipped); raises TimeoutError after ``timeout``."""
        assert self.conn.sock is not None
        self.conn.sock.settimeout(timeout)
        name = ""
        deadline = time.monotonic() + timeout
        while True:
            self.conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                line = self.response.readline().decode()
            except OSError as exc:  # socket.timeout is an OSError
                raise TimeoutError(f"no event within {timeout}s") from exc
            if line.startswith("event: "):
                name = line[len("event: ") :].strip()
            elif line.startswith("data: "):
                self.data = json.loads(line[len("data: ") :])
            elif line == "\n" and name:
                return name

    def close(self) -> None:
        self.conn.close()


def start_server(
    root: str, *, lab: bool = False, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Server]:
    work = tempfile.mkdtemp(prefix=f"{PREFIX}-lab-")
    cfg = os.path.join(work, ".cfg")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "jupyter_server_config.json"), "w") as f:
        json.dump({"ServerApp": {"jpserver_extensions": {"ipydock.server": True}}}, f)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "IPYDOCK_ROOT": root, "JUPYTER_CONFIG_DIR": cfg,
           "JUPYTER_RUNTIME_DIR": os.path.join(work, ".run"), **(extra_env or {})}  # fmt: skip
    app = "jupyterlab" if lab else "jupyter_server"
    log = os.path.join(work, "server.log")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", app, "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", token, root, work)
    wait_until_answering(proc, server.url, token, log)
    return proc, server


def wait_until_answering(
    proc: subprocess.Popen[bytes], url: str, token: str, log: str | None = None
) -> None:
    """Until the Jupyter server at ``url`` answers (the event), not a fixed wait; fails with
    the tail of ``log`` if it exits first."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            tail = ""
            if log:
                with open(log) as f:
                    tail = f.read()[-3000:]
            raise AssertionError("the server exited: " + tail)
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, "the server did not answer in 60s"
            time.sleep(0.2)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_server(proc: subprocess.Popen[bytes], server: Server) -> None:
    stop_process(proc)
    shutil.rmtree(server.work, ignore_errors=True)


@pytest.fixture(scope="module")
def cgroup_parent() -> Iterator[str]:
    parent = f"{PREFIX}-{os.getpid()}"
    old = os.environ.get("IPYDOCK_CGROUP_PARENT")
    os.environ["IPYDOCK_CGROUP_PARENT"] = parent  # the server inherits it
    try:
        yield parent
    finally:
        if old is None:
            del os.environ["IPYDOCK_CGROUP_PARENT"]
        else:
            os.environ["IPYDOCK_CGROUP_PARENT"] = old
        cgroups.remove_parent(parent)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cgroup_parent: str) -> Iterator[Server]:
    require(shutil.which("jupyter", path=os.path.dirname(sys.executable)) is not None,
            "jupyter_server is not installed (pip install -e .[test])")  # fmt: skip
    root = str(tmp_path_factory.mktemp(f"{PREFIX}-store") / "store")
    Store(root)  # made before the server starts, as a kernel would have
    proc, srv = start_server(root)
    try:
        yield srv
    finally:
        stop_server(proc, srv)
        backend = BundledBackend(Store(root), warm=False)
        for row in backend.containers(all=True):
            backend.remove_container(row.id, force=True, volumes=True)


@pytest.fixture(scope="module")
def backend(server: Server) -> BundledBackend:
    """The test's own engine on the server's store: changes made "elsewhere"."""
    return BundledBackend(Store(server.root), warm=False)
