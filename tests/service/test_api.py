"""The service as an HTTP server: version negotiation, bad input, clients that go away, the
docker SDK, and one store shared with the ipydock CLI."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.parse

import pytest

from tests.service.conftest import Engine

pytestmark = pytest.mark.root


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


Answer = tuple[int, dict[str, str], bytes]


def request(engine: Engine, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
    conn = UnixHTTP(engine.host.removeprefix("unix://"))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def raw(engine: Engine, data: bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(engine.host.removeprefix("unix://"))
    sock.sendall(data)
    return sock


def test_version_negotiation(service: Engine) -> None:
    code, headers, body = request(service, "GET", "/_ping")
    assert (code, body, headers["Api-Version"]) == (200, b"OK", "1.41")
    code, _, body = request(service, "GET", "/v1.41/version")
    assert code == 200 and json.loads(body)["ApiVersion"] == "1.41"
    code, _, body = request(service, "GET", "/version")  # unversioned: the newest
    assert code == 200
    code, _, body = request(service, "GET", "/v1.99/version")
    assert (code, json.loads(body)) == (400, {"message": "client version 1.99 is too new. "
                                              "Maximum supported API version is 1.41"})  # fmt: skip


def test_bad_input_gets_a_docker_error_and_the_service_goes_on(service: Engine) -> None:
    code, _, body = request(service, "GET", "/v1.41/nosuch/endpoint")
    assert (code, json.loads(body)) == (404, {"message": "page not found"})
    code, _, body = request(service, "POST", "/v1.41/containers/create", b"{not json",
                            {"Content-Type": "application/json"})  # fmt: skip
    assert code == 400 and json.loads(body)["message"].startswith("invalid JSON")
    code, _, body = request(service, "POST", "/v1.41/containers/create?name=x", b"[1]")
    assert code == 400
    code, _, body = request(service, "POST", "/v1.41/containers/create",
                            json.dumps({"Image": "nosuch:1"}).encode())  # fmt: skip
    assert (code, json.loads(body)) == (404, {"message": "No such image: nosuch:1"})
    code, _, body = request(service, "GET", "/v1.41/images/json?filters=%7Bbad")
    assert code == 400
    code, _, body = request(service, "GET", "/v1.41/exec/nosuch/json")
    assert (code, json.loads(body)) == (404, {"message": "No such exec instance: nosuch"})
    code, _, body = request(service, "DELETE", "/v1.41/_ping")
    assert code == 405 and "message" in json.loads(body)
    # a body that ends early: an import of half a tarball makes nothing
    before = service.docker("images", "-qa").stdout
    sock = raw(service, b"POST /v1.41/images/create?fromSrc=-&repo=half HTTP/1.1\r\n"
               b"Host: x\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 1000)  # fmt: skip
    sock.close()
    # a client that goes away while a log is followed
    cid = service.docker("run", "-d", "--network", "none", "busybox", "sleep", "300").stdout
    sock = raw(service, f"GET /v1.41/containers/{cid.strip()}/logs?follow=1&stdout=1 HTTP/1.1"
               "\r\nHost: x\r\n\r\n".encode())  # fmt: skip
    assert sock.recv(12) == b"HTTP/1.1 200"
    sock.close()
    assert request(service, "GET", "/_ping")[0] == 200
    assert service.docker("images", "-qa").stdout == before
    assert service.docker("images", "half").stdout.count("\n") == 1  # the header only
    service.docker("rm", "-f", cid.strip())


def test_the_docker_sdk(service: Engine) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=service.host)
    try:
        assert client.version()["ApiVersion"] == "1.41"
        out = client.containers.run("busybox", ["echo", "from the sdk"], remove=True,
                                    network_mode="none")  # fmt: skip
        assert out == b"from the sdk\n"
        box = client.containers.run("busybox", ["sleep", "300"], detach=True,
                                    network_mode="none", name="svc-sdk")  # fmt: skip
        box.reload()
        assert box.status == "running" and box.name == "svc-sdk"
        code, output = box.exec_run(["sh", "-c", "echo $((6 * 7))"])
        assert (code, output) == (0, b"42\n")
        assert [c.name for c in client.containers.list(filters={"name": "svc-sdk"})] == ["svc-sdk"]
        box.remove(force=True)
        tags = [t for image in client.images.list() for t in image.tags]
        assert "busybox:latest" in tags
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("nosuch")
    finally:
        client.close()


def test_one_store_for_the_api_and_the_cli(service: Engine) -> None:
    cli = [sys.executable, "-m", "ipydock", "--root", service.root]
    env = {**os.environ, "IPYDOCK_SERVER": "0"}
    service.docker("create", "--name", "svc-shared", "--network", "none", "busybox", "true")
    listed = subprocess.run([*cli, "ps", "-a", "--format", "json"], capture_output=True,
                            text=True, env=env, check=True).stdout  # fmt: skip
    assert "svc-shared" in [json.loads(line)["name"] for line in listed.splitlines()]
    subprocess.run([*cli, "rm", "svc-shared"], env=env, check=True, capture_output=True)
    assert service.docker("ps", "-aq", "--filter", "name=svc-shared").stdout == ""


def test_events_are_streamed(service: Engine) -> None:
    conn = UnixHTTP(service.host.removeprefix("unix://"))
    filters = urllib.parse.quote(json.dumps({"type": ["container"]}))
    conn.request("GET", f"/v1.41/events?filters={filters}")
    resp = conn.getresponse()  # the headers come once the service listens for changes
    try:
        assert resp.status == 200
        service.docker("run", "--rm", "--name", "svc-ev", "--network", "none", "busybox", "true")
        seen: list[str] = []
        while "destroy" not in seen:
            event = json.loads(resp.readline())
            assert event["Type"] == "container"
            if event["Actor"]["Attributes"]["name"] == "svc-ev":
                seen.append(event["Action"])
        assert seen == ["create", "start", "die", "destroy"]
    finally:
        conn.close()


def test_published_port_and_a_terminal(service: Engine) -> None:
    """``-p`` on the default bridge (the side-by-side dockerd has no bridge of its own: this
    one runs on the service only); ``-t`` gives the command a terminal."""
    import urllib.request

    from ipydock.testing import free_port

    port = free_port()
    service.docker("run", "-d", "--name", "svc-web", "-p", f"127.0.0.1:{port}:80", "busybox",
                   "sh", "-c", "echo served > /index.html && exec httpd -f -p 80 -h /")  # fmt: skip
    try:
        ps = service.docker("ps", "--filter", "name=svc-web", "--format", "{{.Ports}}").stdout
        assert ps == f"127.0.0.1:{port}->80/tcp\n"
        body = b""
        while not body:  # httpd listens a moment after the container started
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
            except (ConnectionError, OSError):
                continue
        assert body == b"served\n"
    finally:
        service.docker("rm", "-f", "svc-web")
    tty = service.docker(
        "run", "-t", "--rm", "busybox", "sh", "-c", "tty; exit 3", input=b"", check=False
    )  # bytes: the terminal's \r\n as it came
    assert (tty.returncode, tty.stdout) == (3, b"/dev/pts/0\r\n")


def test_the_service_leaves_when_idle(busybox_tgz: str, tmp_path) -> None:
    """``--time 1``: gone one second after the last request (a request keeps it)."""
    sock = tmp_path / "idle.sock"
    env = {**os.environ, "IPYDOCK_SERVER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "ipydock", "--root", str(tmp_path / "store"),
                             "system", "service", "--time", "1", f"unix://{sock}"],
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stderr is not None and "serving" in proc.stderr.readline()
        engine = Engine("ipydock", f"unix://{sock}")
        assert engine.docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.41\n"
        assert proc.wait(timeout=60) == 0
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_push_and_pull_through_a_local_registry(service: Engine) -> None:
    from ipydock.testing import REGISTRY_BINARY, LocalRegistry

    if not os.path.exists(REGISTRY_BINARY):
        pytest.skip("docker-registry is not installed")
    registry = LocalRegistry().start()
    ref = f"localhost:{registry.port}/svc-demo:1"
    try:
        service.docker("tag", "busybox", ref)
        pushed = service.docker("push", ref).stdout
        assert f"The push refers to repository [localhost:{registry.port}/svc-demo]" in pushed
        assert pushed.count("1: digest: sha256:") == 1
        service.docker("rmi", ref)
        pulled = service.docker("pull", ref).stdout
        assert pulled.endswith(f"Status: Downloaded newer image for {ref}\n{ref}\n")
        assert pulled.count("Digest: sha256:") == 1
        ran = service.docker("run", "--rm", "--network", "none", ref, "echo", "pulled")
        assert ran.stdout == "pulled\n"
        missing = service.docker("pull", f"localhost:{registry.port}/nosuch:1", check=False)
        assert missing.returncode == 1 and "not found" in missing.stderr
    finally:
        service.docker("rmi", ref, check=False)
        registry.stop()


def test_long_calls_do_not_hold_up_the_others(service: Engine) -> None:
    """Many execs that never end (each a blocked engine call) and still an answer to ``ps``."""
    service.docker("run", "-d", "--name", "svc-busy", "--network", "none", "busybox", "sleep",
                   "1000")  # fmt: skip
    execs = [subprocess.Popen(["/usr/bin/docker", "exec", "svc-busy", "sleep", "1000"],
                              env=service.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(10)]  # fmt: skip
    try:
        # each exec is running once its process shows in the container (no waiting by time)
        while service.docker("top", "svc-busy").stdout.count("sleep 1000") < 11:
            pass
        assert "svc-busy" in service.docker("ps").stdout
    finally:
        service.docker("rm", "-f", "svc-busy")
        for p in execs:
            assert p.wait(timeout=60) != 0  # ended with the container
