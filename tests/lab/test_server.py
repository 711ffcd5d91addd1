"""The server extension's REST routes and event stream, over HTTP against a real Jupyter server
(127.0.0.1, a token) whose store the test also changes from its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from ipydock.backends import BundledBackend
from ipydock.models import RunOptions
from tests.conftest import require
from tests.lab.conftest import Server

q = urllib.parse.quote


@pytest.fixture(scope="module")
def busybox(backend: BundledBackend, busybox_tgz: str) -> str:
    return backend.import_image(busybox_tgz, "ipdl-busybox", changes=['CMD ["sh"]'])


def test_requests_without_the_token_are_refused(server: Server) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{server.url}/ipydock/api/images", timeout=30)
    assert exc.value.code == 403


def test_images_with_dangling_marked_history_and_layers(server: Server, busybox: str) -> None:
    rows = server.get("images")
    assert [(r["repository"], r["tag"], r["id"]) for r in rows] == [
        ("ipdl-busybox", "latest", busybox)
    ]
    assert rows[0]["size"] > 100_000 and rows[0]["dangling"] is False
    history = server.get(f"images/{q('ipdl-busybox:latest', safe='')}/history")
    assert history[0]["id"] == busybox and history[0]["size"] == rows[0]["size"]
    layers = server.get(f"images/{busybox[:12]}/layers")
    assert any(f["path"] == "bin/busybox" for f in layers[0]["files"]), layers[0]["files"][:5]


def test_tag_untag_dangling_and_prune(
    server: Server, backend: BundledBackend, busybox: str
) -> None:
    status, data = server.call("POST", "images/ipdl-busybox/tag", {"target": "ipdl/other:1"})
    assert status == 200, data
    assert {r["repository"] for r in server.get("images")} == {"ipdl-busybox", "ipdl/other"}
    status, events = server.call("DELETE", f"images/{q('ipdl/other:1', safe='')}")
    assert status == 200 and events == [{"action": "untagged", "target": "ipdl/other:1"}]
    # a commit of a stopped container, then the tag moved away: a dangling image
    cid = backend.create_container(RunOptions(image="ipdl-busybox", command=("true",)))
    first = backend.commit(cid, "ipdl-dangle:1")
    backend.commit(cid, "ipdl-dangle:1", message="again")
    backend.remove_container(cid)
    marked = {r["id"]: r["dangling"] for r in server.get("images")}
    assert marked[first] is True and marked[busybox] is False
    status, pruned = server.call("POST", "prune/images", {})
    assert status == 200 and {"action": "deleted", "target": first} in pruned["deleted"]
    assert first not in {r["id"] for r in server.get("images")}


def test_errors_are_a_status_and_one_line(server: Server, busybox: str) -> None:
    status, data = server.call("GET", "images/ipdl-nosuch/history")
    assert status == 404 and data["error"] == "ImageNotFound"
    assert "ipdl-nosuch" in data["message"] and "\n" not in data["message"]
    status, data = server.call("POST", "images/ipdl-busybox/tag", {"target": "Bad Name"})
    assert status == 400 and data["error"] == "InvalidReference", data
    status, data = server.call("DELETE", "containers/ipdl-gone")
    assert status == 404 and data["error"] == "ContainerNotFound"
    status, data = server.call("GET", "containers/ipdl-gone/logs?follow=1")
    assert status == 404 and data["error"] == "ContainerNotFound"
    status, data = server.call("PUT", "engine", {"engine": "podman"})
    assert status == 400 and "bundled" in data["message"]


def test_unreachable_docker_engine_is_503_and_the_bundled_one_stays(server: Server) -> None:
    host = f"unix://{server.work}/no-such-docker.sock"
    status, data = server.call("PUT", "engine", {"engine": "docker", "host": host})
    assert status == 503 and data["error"] == "EngineUnavailable", data
    assert server.get("engine") == {"engine": "bundled", "where": server.root}


def test_volumes_files_networks_graph_and_disk_usage(
    server: Server, backend: BundledBackend, busybox: str
) -> None:
    vol = backend.create_volume("ipdl-data")
    with open(os.path.join(vol.mountpoint, "hello.txt"), "w") as f:
        f.write("hi\n")
    try:
        assert "ipdl-data" in [v["name"] for v in server.get("volumes")]
        files = server.get("volumes/ipdl-data/files?path=/")
        assert [(e["path"], e["size"]) for e in files if e["type"] == "file"] == [
            ("/hello.txt", 3)
        ], files
        assert {n["name"] for n in server.get("networks")} >= {"host", "none"}
        svg = server.get("networks/graph")["svg"]
        assert svg.lstrip().startswith("<svg") and "host" in svg, svg[:300]
        df = {r["type"]: r for r in server.get("system/df")}
        assert df["Images"]["total"] >= 1 and df["Images"]["size"] > 100_000
    finally:
        backend.remove_volume("ipdl-data")


def test_a_change_from_another_process_is_pushed_within_a_second(
    server: Server, busybox: str
) -> None:
    events = server.events()
    try:
        assert events.next(10) == "hello"
        ipydock = os.path.join(os.path.dirname(sys.executable), "ipydock")
        env = {**os.environ, "IPYDOCK_ROOT": server.root}
        subprocess.run([ipydock, "tag", "ipdl-busybox", "ipdl-live:1"], env=env, check=True)
        done = time.monotonic()
        assert events.next(5) == "changed"
        assert time.monotonic() - done < 1.0
        assert "ipdl-live" in {r["repository"] for r in server.get("images")}
        subprocess.run([ipydock, "rmi", "ipdl-live:1"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        assert events.next(5) == "changed"
        subprocess.run([ipydock, "volume", "create", "ipdl-live-vol"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        assert events.next(5) == "changed"
        assert "ipdl-live-vol" in {v["name"] for v in server.get("volumes")}
        subprocess.run([ipydock, "volume", "rm", "ipdl-live-vol"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        assert events.next(5) == "changed"
    finally:
        events.close()


def test_container_start_stop_logs_remove_from_the_panel(
    server: Server, backend: BundledBackend, busybox: str
) -> None:
    require(os.geteuid() == 0, "containers need root")
    cid = backend.create_container(
        RunOptions(image="ipdl-busybox", name="ipdl-box", command=("sh", "-c", "echo up; sleep 60"))
    )
    events = server.events()
    try:
        assert events.next(10) == "hello"
        assert server.call("POST", "containers/ipdl-box/start")[0] == 200
        assert events.next(5) == "changed"  # state.json: running
        rows = {r["name"]: r for r in server.get("containers?all=1")}
        assert rows["ipdl-box"]["status"] == "running"
        deadline = time.monotonic() + 10
        while not server.get("containers/ipdl-box/logs"):  # the echo, then the sleep
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server.get("containers/ipdl-box/logs")[0]["text"] == "up\n"
        follow = server.events("containers/ipdl-box/logs?follow=1")
        status, data = server.call("DELETE", "containers/ipdl-box")
        assert status == 409 and data["error"] == "ContainerRunning", data
        try:  # logs -f: the lines, then the end when the container stops
            assert (follow.next(10), follow.data["text"]) == ("line", "up\n")
            status, data = server.call("POST", "containers/ipdl-box/stop?t=1")
            assert status == 200 and data == {"stop": "ipdl-box"}
            assert follow.next(10) == "end"
        finally:
            follow.close()
        assert server.get("containers?all=1")[0]["status"] == "exited"
        status, _ = server.call("DELETE", "containers/ipdl-box")
        assert status == 200
        assert [r.id for r in backend.containers(all=True)] == []
        assert events.next(5) == "changed"
        assert server.call("POST", f"containers/{cid}/stop")[0] == 404
    finally:
        events.close()


@pytest.mark.docker
def test_the_docker_engine_switched_to_and_followed_through_its_events(
    server: Server, dockerd
) -> None:  # noqa: ANN001,E501
    events = server.events()
    try:
        assert events.next(10) == "hello"
        status, data = server.call("PUT", "engine", {"engine": "docker", "host": dockerd.host})
        assert status == 200 and data == {"engine": "docker", "where": dockerd.host}, data
        assert events.next(10) == "engine"
        dockerd.run("volume", "create", "ipdl-docker-vol")
        done = time.monotonic()
        assert events.next(5) == "changed"
        assert time.monotonic() - done < 1.0
        assert "ipdl-docker-vol" in {v["name"] for v in server.get("volumes")}
    finally:
        events.close()
        dockerd.run("volume", "rm", "ipdl-docker-vol", check=False)
        assert server.call("PUT", "engine", {"engine": "bundled"})[0] == 200
    assert server.get("engine")["engine"] == "bundled"
