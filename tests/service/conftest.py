"""The API service's suite: Debian's docker client (20.10, API 1.41) and the docker SDK against
``ipydock system service`` on a temp socket and, for the side-by-side scenarios, against a
real dockerd; the same scenario gives the same output on both, IDs and times aside.

Each engine is started once per module with the busybox test image imported through the
docker CLI (``docker import``, the first scenario), and checked for leftovers at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ipydock.testing import Dockerd, ServiceProcess
from tests.conftest import require

DOCKER = "/usr/bin/docker"


@dataclass
class Engine:
    """One engine behind the docker CLI: ``docker(*args)`` runs ``docker ARGS`` against it."""

    name: str  # "ipydock" | "dockerd"
    host: str
    root: str = ""  # the ipydock store (ipydock only)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0", **extra}

    def docker(
        self, *args: str, input: str | bytes | None = None, check: bool = True,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        text = not isinstance(input, bytes)
        proc = subprocess.run([DOCKER, *args], env=self.env(), capture_output=True, text=text,
                              input=input, timeout=120, cwd=cwd)  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {self.name}: {proc.stderr!r}")
        return proc  # type: ignore[return-value]


def _import_busybox(engine: Engine, tgz: str) -> None:
    engine.docker("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, busybox_tgz: str) -> Iterator[Engine]:
    """``ipydock system service`` on a temp socket, its own store; the busybox image."""
    require(os.path.exists(DOCKER), "docker.io (the docker client) is not installed")
    root = str(tmp_path_factory.mktemp("service") / "store")
    svc = ServiceProcess(root)
    svc.start()
    engine = Engine("ipydock", svc.host, root)
    try:
        _import_busybox(engine, busybox_tgz)
        yield engine
        left = engine.docker("ps", "-aq").stdout.split()
        assert left == [], f"containers left behind: {left}"
    finally:
        log = svc.stop()
        _clean(root)  # also when a failed test left something, or the service died
        assert "Traceback" not in log, log


def _clean(root: str) -> None:
    """Remove the containers and user-defined networks of the store, through the engine."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store

    backend = BundledBackend(Store(root), warm=False)
    for c in backend.containers(all=True):
        backend.remove_container(c.id, force=True, volumes=True)
    for n in backend.networks():
        if n.name not in ("bridge", "host", "none"):
            backend.remove_network(n.id)


@pytest.fixture(scope="module")
def real_dockerd(dockerd: Dockerd, busybox_tgz: str) -> Iterator[Engine]:
    engine = Engine("dockerd", dockerd.host)
    _import_busybox(engine, busybox_tgz)
    yield engine
    engine.docker("rm", "-f", *engine.docker("ps", "-aq").stdout.split(), check=False)


@pytest.fixture(scope="module", params=["ipydock", "dockerd"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each scenario once on the service and once on a real dockerd."""
    if request.param == "dockerd":
        require(os.geteuid() == 0 and shutil.which("dockerd") is not None,
                "the side-by-side runs need root and dockerd")  # fmt: skip
        return request.getfixturevalue("real_dockerd")  # type: ignore[no-any-return]
    return request.getfixturevalue("service")  # type: ignore[no-any-return]
