"""docker-compose (Debian's, 1.29, over the docker SDK) brings a two-service project up and
down; the services talk by name over the project's user-defined bridge. Run on the service
and on a real dockerd."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import require
from tests.service.conftest import Engine

pytestmark = pytest.mark.root

COMPOSE = """\
version: "3"
services:
  server:
    image: busybox
    command: >-
      sh -c "mkdir -p /srv && echo hello-from-server > /srv/index.html
      && exec httpd -f -p 80 -h /srv"
  client:
    image: busybox
    depends_on: [server]
    command: sh -c "until wget -q -O- http://server/; do sleep 0.1; done"
"""


def test_compose_up_and_down(engine: Engine, tmp_path) -> None:
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose is not installed (scripts/setup.sh --test)")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    project = f"svc{engine.name}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(compose), "-p", project, *args], cwd=tmp_path, text=True,
                              capture_output=True, env=engine.env(), timeout=120)  # fmt: skip

    try:
        up = run("up", "--abort-on-container-exit", "--exit-code-from", "client")
        assert up.returncode == 0, up.stderr
        assert "hello-from-server" in up.stdout
        assert f'Creating network "{project}_default" with the default driver' in up.stderr
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    assert f"Removing network {project}_default" in down.stderr
    assert engine.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"
                         ).stdout == ""  # fmt: skip
    assert project not in engine.docker("network", "ls").stdout
