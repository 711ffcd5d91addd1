"""Bad input beyond one machine, each one clear line naming the engine and what to do: an
engine that does not answer, a swarm that is not initialised, a context that does not exist,
an image no node can pull, a node that is down.

The last two run on the session's two-node swarm; the node-down test pauses the worker's
dockerd (SIGSTOP: its heartbeats stop, the manager marks it Down) and resumes it after, waiting
until the manager sees it Ready again, so the swarm is whole for the tests after it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ipydock.docker import DockerBackend
from ipydock.errors import EngineUnavailable, ServiceStuck, SwarmUnavailable
from ipydock.testing import Dockerd
from tests.engines.swarm import Cluster, wait_for

pytestmark = [pytest.mark.docker]


def _cli(host: str, *args: str, tmp_path: Path, timeout: float = 180
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {**os.environ, "IPYDOCK_RUNTIME_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "ipydock", "-H", host, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The CLI's error: exit 1, and its last stderr line is ``Error: …``."""
    assert out.returncode == 1, out
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: "), out.stderr
    return line


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A socket that takes connections and never says a word (a hung engine)."""
    path = str(tmp_path / "hung.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
        s.listen(8)
        yield f"unix://{path}"


def test_an_engine_that_does_not_answer(silent_engine: str) -> None:
    with pytest.raises(EngineUnavailable) as e:
        DockerBackend(silent_engine, timeout=2)
    text = str(e.value)
    assert "\n" not in text
    assert f"cannot reach the Docker engine at {silent_engine}: no answer in 2 s" in text
    assert "DOCKER_HOST" in text  # what to do


def test_a_swarm_that_is_not_initialised(dockerd: Dockerd, tmp_path: Path) -> None:
    plain = DockerBackend(dockerd.host)
    try:
        with pytest.raises(SwarmUnavailable) as e:
            plain.swarm.create_service("busybox", ["true"], name="x")
    finally:
        plain.close()
    assert e.value.host == dockerd.host
    line = _error_line(_cli(dockerd.host, "service", "ls", tmp_path=tmp_path))
    assert f"no swarm at {dockerd.host}" in line and "ipydock swarm init" in line


def test_a_context_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       ip: InteractiveShell) -> None:  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    env = {**os.environ, "IPYDOCK_RUNTIME_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "ipydock", "--context", "nowhere", "info"],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    line = _error_line(out)
    assert "context 'nowhere' does not exist" in line and "docker context create" in line
    r = ip.run_cell("%ipydock engine docker --context nowhere")
    assert "context 'nowhere' does not exist" in str(r.error_in_exec)
    assert "\n" not in str(r.error_in_exec)


@pytest.mark.slow
def test_an_image_no_node_can_pull(manager: DockerBackend, cluster: Cluster,
                                   tmp_path: Path) -> None:  # fmt: skip
    """`service create` with an image no registry has: one line after each node tried, not
    docker's endless wait; `service ps` says the same beside its rows."""
    ghost = cluster.image.replace("/busybox:", "/not-pushed:")
    out = _cli(cluster.manager.host, "service", "create", "--name", "ghost", ghost, "sleep",
               "3600", tmp_path=tmp_path)  # fmt: skip
    line = _error_line(out)
    assert f"service ghost cannot run on the swarm at {cluster.manager.host}" in line
    assert f"No such image: {ghost}" in line and f"cannot pull {ghost}" in line
    assert "push it to a registry every node reaches" in line and "service rm ghost" in line
    out = _cli(cluster.manager.host, "service", "ps", "ghost", tmp_path=tmp_path)
    assert out.returncode == 0, out
    assert "Rejected" in out.stdout and "No such image" in out.stdout
    (warning,) = [w for w in out.stderr.splitlines() if "cannot run" in w]
    assert warning.startswith("WARNING: service ghost cannot run") and "cannot pull" in warning


@pytest.mark.slow
def test_a_node_that_is_down(manager: DockerBackend, cluster: Cluster, tmp_path: Path) -> None:
    """A service pinned to a node whose engine stopped answering: its task stays pending;
    converge (``service create`` without -d) says so in one line naming the node."""
    with open(os.path.join(cluster.worker.base, "dockerd.pid")) as f:
        pid = int(f.read())

    def status() -> dict[str, str]:
        return {n.hostname: n.status for n in manager.swarm.nodes()}

    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: status()["node-b"] == "Down", "the manager to see node-b down")
        manager.swarm.create_service(cluster.image, ["sleep", "3600"], name="pinned",
                                     constraints=["node.hostname==node-b"])  # fmt: skip
        with pytest.raises(ServiceStuck) as e:
            manager.swarm.converge("pinned", timeout=120)
        text = str(e.value)
        assert "\n" not in text and (e.value.service, e.value.node) == ("pinned", "")
        assert f"at {cluster.manager.host}: pinned.1: no suitable node" in text
        assert "node node-b is down: start its engine" in text
        out = _cli(cluster.manager.host, "service", "ps", "pinned", tmp_path=tmp_path)
        assert "Pending" in out.stdout and "node node-b is down" in out.stderr, out
    finally:
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: status()["node-b"] == "Ready", "node-b to be ready again")
