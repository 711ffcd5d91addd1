"""The Docker backend against a real dockerd 20.10 (classic builder), with the busybox test image.

These tests have a dockerd of their own (their rows are compared with the bundled engine's, so
no other test's images may be in it), in a network namespace of its own, so the bridges of the
networks they create never touch the host. Every test must leave the daemon as it found it: the
``engine`` fixture checks containers, networks, volumes and images.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.docker import DockerBackend
from ipydock.errors import ImageNotFound
from ipydock.testing import Dockerd, PodmanService
from tests.conftest import private_dockerd, require

BUSYBOX = "ipydock-test/busybox"


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    with private_dockerd() as d:
        yield d


@pytest.fixture(scope="session")
def docker_image(dockerd: Dockerd, busybox_tgz: str) -> Iterator[str]:
    """The busybox test image in dockerd, as ``docker import`` makes it (no Docker Hub here)."""
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, BUSYBOX)
    yield BUSYBOX
    dockerd.run("rmi", "-f", BUSYBOX, check=False)


def _present(b: DockerBackend) -> dict[str, set[str]]:
    return {
        "containers": {c.id for c in b.containers(all=True)},
        "networks": {n.name for n in b.networks()},
        "volumes": {v.name for v in b.volumes()},
        "images": {i.id for i in b.images(all=True)},
    }


@pytest.fixture(scope="session")
def podman_service(busybox_tgz: str) -> Iterator[PodmanService]:
    """Podman's Docker-compatible service (runc, no default ulimits: see PodmanService), in a
    network namespace of its own, with the same busybox image under the same name."""
    require(os.geteuid() == 0, "a private podman service here runs as root")
    require(shutil.which("podman") is not None, "podman is not installed")
    with PodmanService() as service:
        b = DockerBackend(service.host, engine="podman")
        b.import_image(busybox_tgz, BUSYBOX, changes=['CMD ["sh"]'])
        b.close()
        yield service


@pytest.fixture(params=["docker", "podman"])
def daemon(request: pytest.FixtureRequest) -> Dockerd:
    """The engine each scenario runs on: the session's dockerd, then Podman's service (the
    issue's "same scenario list"; where Podman differs, the test says so and the README's
    Podman list names it)."""
    if request.param == "podman":
        return request.getfixturevalue("podman_service")  # type: ignore[no-any-return]
    request.getfixturevalue("docker_image")
    return request.getfixturevalue("dockerd")  # type: ignore[no-any-return]


@pytest.fixture
def engine(daemon: Dockerd) -> Iterator[DockerBackend]:
    """A DockerBackend on the scenario's engine, checked afterwards to have left nothing
    behind (other tests share the daemon: what was there before is not ours)."""
    b = DockerBackend(daemon.host, engine="podman" if isinstance(daemon, PodmanService)
                      else "docker")  # fmt: skip
    before = _present(b)
    try:
        yield b
    finally:
        now = _present(b)
        leftovers = {kind: sorted(now[kind] - before[kind]) for kind in now}
        for c in leftovers["containers"]:
            b.remove_container(c, force=True, volumes=True)
        for n in leftovers["networks"]:
            b.remove_network(n)
        for v in leftovers["volumes"]:
            b.remove_volume(v, force=True)
        for i in leftovers["images"]:
            with contextlib.suppress(ImageNotFound):  # gone with a child removed before it
                b.remove_image(i, force=True)
        b.close()
        assert not any(leftovers.values()), f"the test left {leftovers}"


@pytest.fixture
def bundled(backend: BundledBackend, busybox_tgz: str) -> BundledBackend:
    """The bundled engine with the same busybox image under the same name."""
    backend.import_image(busybox_tgz, BUSYBOX, changes=['CMD ["sh"]'])
    return backend
