"""ipydock and a real dockerd (20.10) share a registry: each pulls what the other pushed, with
the same image IDs and digests; the Docker backend's pull/push return the bundled engine's models.

dockerd lives in a network namespace of its own, so the registry is started in that namespace
and ipydock's CLI joins it (``nsenter --net``) to reach it at 127.0.0.1 too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.docker import DockerBackend
from ipydock.models import TransferEvent
from ipydock.testing import Dockerd, LocalRegistry
from tests.registry.conftest import PREFIX, need_registry

pytestmark = [pytest.mark.docker, pytest.mark.root]


@pytest.fixture(scope="module")
def shared(dockerd: Dockerd) -> Iterator[LocalRegistry]:
    """A registry inside dockerd's network namespace."""
    assert dockerd.proc is not None
    need_registry()
    netns = f"/proc/{dockerd.proc.pid}/ns/net"
    # `unshare --net` leaves that namespace's loopback down; the registry listens there
    subprocess.run(["nsenter", f"--net={netns}", "--", "ip", "link", "set", "lo", "up"],
                   check=True)  # fmt: skip
    reg = LocalRegistry(netns=netns, prefix=PREFIX)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def ipd_in(dockerd: Dockerd, root: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, in dockerd's network namespace, on the test's store."""
    assert dockerd.proc is not None
    proc = subprocess.run(
        ["nsenter", f"--net=/proc/{dockerd.proc.pid}/ns/net", "--",
         sys.executable, "-m", "ipydock", "--root", root, *args],
        env={**os.environ, "IPYDOCK_SERVER": "0"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc


def _docker(dockerd: Dockerd, *args: str) -> str:
    return dockerd.run(*args).stdout.decode().strip()


def test_docker_runs_what_ipydock_pushed_and_ipydock_pulls_what_docker_pushed(
    dockerd: Dockerd, shared: LocalRegistry, backend: BundledBackend, busybox: str, root: str,
    tmp_path,
) -> None:  # fmt: skip
    ours = f"{shared.host}/ipdr/from-ipydock:1"
    backend.tag("busybox", ours)
    pushed = ipd_in(dockerd, root, "push", ours).stdout.splitlines()[-1]
    digest = pushed.split()[2]
    theirs = f"{shared.host}/ipdr/from-docker:2"
    try:
        _docker(dockerd, "pull", ours)
        assert _docker(dockerd, "image", "inspect", "-f", "{{.Id}}", ours) == busybox
        assert _docker(dockerd, "image", "inspect", "-f", "{{index .RepoDigests 0}}", ours) == (
            f"{shared.host}/ipdr/from-ipydock@{digest}"
        )
        assert _docker(dockerd, "run", "--rm", ours, "echo", "hi from ipydock") == (
            "hi from ipydock"
        )
        _docker(dockerd, "run", "--name", "ipdr-commit", ours, "sh", "-c", "echo x > /made")
        _docker(dockerd, "commit", "ipdr-commit", theirs)
        docker_id = _docker(dockerd, "image", "inspect", "-f", "{{.Id}}", theirs)
        _docker(dockerd, "push", theirs)
        docker_digest = _docker(dockerd, "image", "inspect", "-f", "{{index .RepoDigests 0}}",
                                theirs)  # fmt: skip

        other = str(tmp_path / "other-store")
        ipd_in(dockerd, other, "pull", theirs)
        assert ipd_in(dockerd, other, "images", "-q", "--no-trunc").stdout.split() == [docker_id]
        inspect = ipd_in(dockerd, other, "image", "inspect", theirs).stdout
        assert docker_digest in inspect
    finally:
        dockerd.run("rm", "-f", "ipdr-commit", check=False)
        dockerd.run("rmi", "-f", ours, theirs, check=False)


def test_the_docker_backend_returns_the_same_models(
    dockerd: Dockerd, shared: LocalRegistry, backend: BundledBackend, busybox: str, root: str
) -> None:
    name = f"{shared.host}/ipdr/models:1"
    backend.tag("busybox", name)
    ours = ipd_in(dockerd, root, "push", name).stdout.splitlines()[-1].split()[2]
    engine = DockerBackend(dockerd.host)
    try:
        events: list[TransferEvent] = []
        pulled = engine.pull(name, progress=events.append)
        assert (pulled.id, pulled.digest) == (busybox, ours)
        assert pulled.status == f"Downloaded newer image for {name}"
        # dockerd has the busybox layer already (imported from the same tarball: the same
        # diff ID), so it may answer "Already exists" for it instead of downloading it
        assert any(e.id and e.status in ("Pull complete", "Already exists") for e in events)
        assert any(not e.id and e.text.startswith("1: Pulling from") for e in events)
        events.clear()
        pushed = engine.push(name, progress=events.append)
        assert (pushed.tag, pushed.digest) == ("1", ours)  # the same blobs, the same manifest
        assert any(e.status == "Layer already exists" for e in events)
    finally:
        dockerd.run("rmi", "-f", name, check=False)
        engine.close()


def test_the_docker_backend_logs_in_and_pushes_with_those_credentials(
    dockerd: Dockerd, shared: LocalRegistry, backend: BundledBackend, busybox: str, root: str,
    docker_config: str,
) -> None:  # fmt: skip
    import json

    from ipydock.errors import ImageNotFound, RegistryAuthFailed
    from tests.registry.conftest import PASSWORD, USER

    assert dockerd.proc is not None
    private = LocalRegistry(
        users={USER: PASSWORD}, netns=f"/proc/{dockerd.proc.pid}/ns/net", prefix=PREFIX
    ).start()
    engine = DockerBackend(dockerd.host)
    name = f"{private.host}/ipdr/private:1"
    try:
        with pytest.raises(RegistryAuthFailed, match="wrong username or password"):
            engine.login(private.host, USER, "wrong")
        assert engine.login(private.host, USER, PASSWORD) == "Login Succeeded"
        with open(os.path.join(docker_config, "config.json")) as f:
            assert private.host in json.load(f)["auths"]  # where docker's client keeps it
        backend.tag("busybox", name)
        ipd_in(dockerd, root, "push", name)  # ipydock reads the same config.json
        pulled = engine.pull(name)
        assert pulled.id == busybox
        with pytest.raises(ImageNotFound):
            engine.pull(f"{private.host}/ipdr/missing:1")
    finally:
        dockerd.run("rmi", "-f", name, check=False)
        engine.close()
        private.stop()


def test_an_image_docker_pushed_is_pushed_on_by_ipydock_with_the_same_layer_blobs(
    dockerd: Dockerd, shared: LocalRegistry, backend: BundledBackend, busybox: str, root: str,
    tmp_path,
) -> None:  # fmt: skip
    """docker pushes (its own gzip); ipydock pulls and pushes to another repository: the
    manifest lists the same layer blobs, and docker pulls and runs what ipydock pushed."""
    first = f"{shared.host}/ipdr/docker-made:1"
    again = f"{shared.host}/ipdr/pushed-on:1"
    backend.tag("busybox", f"{shared.host}/ipdr/seed:1")
    ipd_in(dockerd, root, "push", f"{shared.host}/ipdr/seed:1")
    try:
        _docker(dockerd, "pull", f"{shared.host}/ipdr/seed:1")
        _docker(dockerd, "run", "--name", "ipdr-made", f"{shared.host}/ipdr/seed:1",
                "sh", "-c", "echo made by docker > /made")  # fmt: skip
        _docker(dockerd, "commit", "ipdr-made", first)
        _docker(dockerd, "push", first)
        other = str(tmp_path / "other-store")
        ipd_in(dockerd, other, "pull", first)
        ipd_in(dockerd, other, "tag", first, again)
        ipd_in(dockerd, other, "push", again)

        def layers(name: str) -> list[dict]:
            raw = subprocess.run(
                ["nsenter", f"--net=/proc/{dockerd.proc.pid}/ns/net", "--",  # type: ignore[union-attr]
                 "skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{name}"],
                check=True, capture_output=True,
            ).stdout  # fmt: skip
            return json.loads(raw)["layers"]

        assert layers(again) == layers(first) and len(layers(first)) == 2
        _docker(dockerd, "rmi", "-f", first, f"{shared.host}/ipdr/seed:1")
        _docker(dockerd, "pull", again)
        assert _docker(dockerd, "run", "--rm", again, "cat", "/made") == "made by docker"
        # saved with its layers as they came (gzipped): docker loads that tarball too
        _docker(dockerd, "rmi", "-f", again)
        archive = str(tmp_path / "pulled.tar")
        ipd_in(dockerd, other, "save", "-o", archive, first)
        _docker(dockerd, "load", "-q", "-i", archive)
        assert _docker(dockerd, "run", "--rm", first, "cat", "/made") == "made by docker"
    finally:
        dockerd.run("rm", "-f", "ipdr-made", check=False)
        dockerd.run("rmi", "-f", first, again, f"{shared.host}/ipdr/seed:1", check=False)
