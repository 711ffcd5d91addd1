"""The Docker backend against a real dockerd 20.10 (classic builder), with the busybox test image.

This directory's ``dockerd`` runs in a network namespace of its own (``unshare --net``), so the
bridges of the networks the tests create never touch the host. Every test must leave the daemon
as it found it: :func:`nothing_left_behind` checks containers, networks, volumes and images.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.docker import DockerBackend
from ipydock.testing import Dockerd
from tests.conftest import require

BUSYBOX = "ipydock-test/busybox"
BUILTIN_NETWORKS = {"host", "none"}


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    require(os.geteuid() == 0, "dockerd needs root")
    require(shutil.which("dockerd") is not None or os.path.exists("/usr/sbin/dockerd"),
            "docker.io is not installed")  # fmt: skip
    require(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    d = Dockerd(own_network=True)
    try:
        d.start()
    except RuntimeError as exc:
        require(False, f"dockerd did not start: {exc}")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def docker_image(dockerd: Dockerd, busybox_tgz: str) -> Iterator[str]:
    """The busybox test image in dockerd, as ``docker import`` makes it (no Docker Hub here)."""
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, BUSYBOX)
    yield BUSYBOX
    dockerd.run("rmi", "-f", BUSYBOX, check=False)


@pytest.fixture
def engine(dockerd: Dockerd, docker_image: str) -> Iterator[DockerBackend]:
    """A DockerBackend on the test dockerd, checked afterwards to have left nothing behind."""
    b = DockerBackend(dockerd.host)
    try:
        yield b
    finally:
        leftovers = {
            "containers": [c.name for c in b.containers(all=True)],
            "networks": sorted({n.name for n in b.networks()} - BUILTIN_NETWORKS),
            "volumes": [v.name for v in b.volumes()],
            "images": sorted(
                {f"{i.repository}:{i.tag}" for i in b.images(all=True)} - {f"{BUSYBOX}:latest"}
            ),  # fmt: skip
        }
        for c in leftovers["containers"]:
            b.remove_container(c, force=True, volumes=True)
        for n in leftovers["networks"]:
            b.remove_network(n)
        for v in leftovers["volumes"]:
            b.remove_volume(v, force=True)
        b.close()
        assert not any(leftovers.values()), f"the test left {leftovers}"


@pytest.fixture
def bundled(backend: BundledBackend, busybox_tgz: str) -> BundledBackend:
    """The bundled engine with the same busybox image under the same name."""
    backend.import_image(busybox_tgz, BUSYBOX, changes=['CMD ["sh"]'])
    return backend
