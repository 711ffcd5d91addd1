"""Podman's Docker-compatible service as an engine: `%ipydock engine podman` starts it for the
user, and the everyday scenario list (import, run, logs, exec, volumes, networks, build,
history, rm) gives the models the docker engine gives.

The service runs with a store, run dir and network config of its own (``PodmanService``), in a
network namespace of its own; the start-on-request test points ``IPYDOCK_PODMAN_SOCKET`` and
Podman's config variables at a temp dir, so nothing of the host's Podman is used or changed.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipydock import backends
from ipydock.docker import DockerBackend
from ipydock.models import RunOptions
from ipydock.testing import PodmanService
from tests.conftest import require

pytestmark = [pytest.mark.docker]
IMAGE = "ipydock-test/busybox:latest"


@pytest.fixture(scope="module")
def podman(busybox_tgz: str) -> Iterator[DockerBackend]:
    require(os.geteuid() == 0, "a private podman service here runs as root")
    require(shutil.which("podman") is not None, "podman is not installed")
    with PodmanService() as service:
        b = DockerBackend(service.host, engine="podman")
        b.import_image(busybox_tgz, IMAGE, changes=['CMD ["sh"]'])
        yield b
        b.close()


def _run(b: DockerBackend, *command: str, image: str = IMAGE, **kw: object
         ) -> tuple[int | None, str]:  # fmt: skip
    out: list[str] = []
    r = b.run(RunOptions(image, command, network="none", **kw),  # type: ignore[arg-type]
              output=lambda stream, text: out.append(text))  # fmt: skip
    return r.exit_code, "".join(out)


def test_connect_starts_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("podman") is not None, "podman is not installed")
    config = PodmanService(str(tmp_path))  # only for its config files: never started
    for key in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_CONF"):
        monkeypatch.setenv(key, config.daemon_env()[key])
    sock = tmp_path / "podman.sock"
    monkeypatch.setenv("IPYDOCK_PODMAN_SOCKET", str(sock))
    b = backends.connect("podman")
    try:
        info = b.info()
        assert info["engine"] == "podman" and info["host"] == f"unix://{sock}"
        again = backends.connect("podman")  # the running service is found, not a second one
        assert again.info()["host"] == info["host"]
        again.close()  # type: ignore[attr-defined]
    finally:
        b.close()  # type: ignore[attr-defined]
        from ipydock.testing import _pids_mentioning

        for pid in _pids_mentioning(str(sock)):
            os.kill(pid, signal.SIGTERM)
        config.stop()


def test_attached_run_output_and_exit_code(podman: DockerBackend) -> None:
    code, text = _run(podman, "sh", "-c", "echo hello; exit 3", auto_remove=True)
    assert (code, text) == (3, "hello\n")
    assert podman.containers(all=True) == []


def test_detached_logs_exec_stop_rm(podman: DockerBackend) -> None:
    r = podman.run(RunOptions(IMAGE, ("sh", "-c", "echo started; sleep 300"), name="pm-sleeper",
                              network="none"), detach=True)  # fmt: skip
    try:
        rows = podman.containers()
        assert [(c.name, c.status) for c in rows] == [("pm-sleeper", "running")]
        lines = [e.text for e in podman.logs("pm-sleeper")]
        assert lines == ["started\n"]
        out = io.StringIO()
        assert podman.exec("pm-sleeper", ["sh", "-c", "echo in there"], stdout=out) == 0
        assert out.getvalue() == "in there\n"
        podman.stop_container("pm-sleeper", timeout=1)
        assert podman.inspect_container("pm-sleeper").state["Running"] is False
    finally:
        podman.remove_container(r.id, force=True)


def test_volumes_networks_and_build(podman: DockerBackend, tmp_path: Path) -> None:
    podman.create_volume("pm-data")
    net = podman.create_network("pm-net", subnet="10.93.0.0/24")
    try:
        assert _run(podman, "sh", "-c", "echo kept > /v/file", auto_remove=True,
                    volumes=("pm-data:/v",))[0] == 0  # fmt: skip
        files = {f.path: f.size for f in podman.volume_files("pm-data")}
        assert files.get("/file") == 5
        assert net.subnets == ["10.93.0.0/24"]
        (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo built > /built\n")
        result = podman.build(str(tmp_path), tags=["pm-built:1"])
        rows = podman.history(result.image_id)
        assert "echo built > /built" in rows[0].created_by
        assert _run(podman, "cat", "/built", image="pm-built:1", auto_remove=True) == (
            0, "built\n")  # fmt: skip
    finally:
        podman.remove_network("pm-net")
        podman.remove_volume("pm-data", force=True)
        for image in ("pm-built:1",):
            podman.remove_image(image, force=True)
