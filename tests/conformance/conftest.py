"""One behaviour suite, run on every engine: the bundled one, a real dockerd 20.10 and Podman.

Each test is written once against :class:`ipydock.api.Backend` and runs twice (``engine`` is
parametrized), so "the same call gives the same answer, and the same typed error" is checked,
not assumed. The Docker side runs on a private dockerd (its own data root and network
namespace); every test leaves both engines as it found them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from ipydock.api import Backend
from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.testing import Dockerd, PodmanService
from tests.conftest import private_dockerd, require

BUSYBOX = "ipydock-test/busybox"


@pytest.fixture(scope="session")
def conformance_dockerd(busybox_tgz: str) -> Iterator[Dockerd]:
    with private_dockerd() as d:
        d.run("import", "-c", 'CMD ["sh"]', busybox_tgz, BUSYBOX)
        yield d


@pytest.fixture(scope="session")
def conformance_podman(busybox_tgz: str) -> Iterator[PodmanService]:
    """Podman's service (docs/engines.md, "Podman"), with the same image under the same name."""
    require(shutil.which("podman") is not None, "podman is not installed")
    with PodmanService() as service:
        from ipydock.docker import DockerBackend

        b = DockerBackend(service.host, engine="podman")
        b.import_image(busybox_tgz, BUSYBOX, changes=['CMD ["sh"]'])
        b.close()
        yield service


def _everything(b: Backend) -> dict[str, set[str]]:
    return {
        "containers": {c.id for c in b.containers(all=True)},
        "volumes": {v.name for v in b.volumes()},
        "images": {i.id for i in b.images(all=True)},
    }


@pytest.fixture(params=["bundled", "docker", "podman"])
def engine(request: pytest.FixtureRequest, tmp_path, busybox_tgz: str) -> Iterator[Backend]:
    """The engine under test, with the busybox image as ``ipydock-test/busybox``."""
    require(os.geteuid() == 0, "containers need root")
    b: Backend
    if request.param == "bundled":
        bundled = BundledBackend(Store(str(tmp_path / "store")))
        bundled.import_image(busybox_tgz, BUSYBOX, changes=['CMD ["sh"]'])
        b = bundled
    elif request.param == "podman":
        from ipydock.docker import DockerBackend

        b = DockerBackend(request.getfixturevalue("conformance_podman").host, engine="podman")
    else:
        from ipydock.docker import DockerBackend

        b = DockerBackend(request.getfixturevalue("conformance_dockerd").host)
    before = _everything(b)
    try:
        yield b
    finally:
        left = {k: v - before[k] for k, v in _everything(b).items()}
        for c in left["containers"]:
            b.remove_container(c, force=True, volumes=True)
        for v in left["volumes"]:
            b.remove_volume(v, force=True)
        for image in sorted(left["images"]):
            with contextlib.suppress(Exception):  # a parent may have gone with its child
                b.remove_image(image, force=True)
        b.close()  # type: ignore[attr-defined]
        assert not left["containers"] and not left["volumes"], f"the test left {left}"
