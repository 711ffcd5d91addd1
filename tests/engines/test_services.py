"""Services on a real two-node swarm, through the same commands, magics and DataFrames."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ipydock.docker import DockerBackend
from ipydock.errors import ServiceNotFound, SwarmUnavailable
from tests.engines.swarm import Cluster, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _running(b: DockerBackend, name: str, count: int) -> bool:
    tasks = [t for t in b.swarm.tasks(name) if t.desired_state == "Running"]
    return len(tasks) == count and all(t.current_state == "Running" for t in tasks)


def test_nodes(manager: DockerBackend) -> None:
    rows = manager.swarm.nodes()
    assert sorted(n.hostname for n in rows) == ["node-a", "node-b"]
    leader = next(n for n in rows if n.hostname == "node-a")
    assert leader.manager_status == "Leader" and leader.self
    assert all(n.status == "Ready" for n in rows)


def test_replicas_span_nodes_and_resolve_each_other(manager: DockerBackend,
                                                     cluster: Cluster) -> None:  # fmt: skip
    manager.create_network("ov", driver="overlay", attachable=True)
    manager.swarm.create_service(cluster.image, ["httpd", "-f", "-p", "80", "-h", "/"],
                                 name="web", replicas=3, networks=["ov"],
                                 endpoint_mode="dnsrr")  # fmt: skip
    assert manager.swarm.warnings == []  # the registry knows it: pinned by digest
    wait_for(lambda: _running(manager, "web", 3), "3 running tasks of web")
    tasks = [t for t in manager.swarm.tasks("web") if t.desired_state == "Running"]
    assert {t.node for t in tasks} == {"node-a", "node-b"}
    assert all(t.addresses for t in tasks)
    (row,) = [s for s in manager.swarm.services() if s.name == "web"]
    assert (row.replicas, row.networks, row.image) == ("3/3", ["ov"], cluster.image)
    # a container on the worker resolves every task by the service's name, over the overlay
    out = cluster.worker.run("run", "--rm", "--network", "ov", cluster.image, "nslookup",
                             "tasks.web").stdout.decode()  # fmt: skip
    task_ips = {t.addresses[0].split("/")[0] for t in tasks}
    assert task_ips <= set(out.split()), out
    # and reaches one of them by the service's name (DNS round robin: virtual IPs and the
    # routing mesh need the kernel's IPVS, which this machine's kernel does not have)
    out = cluster.worker.run("run", "--rm", "--network", "ov", cluster.image, "sh", "-c",
                             r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 web 80")  # fmt: skip
    assert out.stdout.startswith(b"HTTP/1."), out
    # the picture draws the overlay across both nodes, one box per task
    from ipydock.cli.networks import _swarm_tasks
    from ipydock.display.network import network_graph

    graph = network_graph(manager.networks(), manager.containers(), _swarm_tasks(manager))
    section = graph.text().split("ov (overlay")[1].split("\n\n")[0]
    assert sorted(line.split()[0] for line in section.splitlines()[1:4]) == [
        "web.1", "web.2", "web.3"]  # fmt: skip
    assert "@ node-a" in section and "@ node-b" in section
    assert graph.svg.count('data-network="ov"') == 3


def test_scale_and_update_show_in_the_rows(manager: DockerBackend, cluster: Cluster) -> None:
    manager.swarm.create_service(cluster.image, ["sleep", "3600"], name="sl", replicas=1)
    wait_for(lambda: _running(manager, "sl", 1), "1 running task")
    manager.swarm.scale("sl", 4)
    wait_for(lambda: _running(manager, "sl", 4), "4 running tasks after scale")
    assert [s.replicas for s in manager.swarm.services() if s.name == "sl"] == ["4/4"]
    cluster.manager.run("tag", cluster.image, cluster.image.replace(":1", ":2"))
    cluster.manager.run("push", cluster.image.replace(":1", ":2"))
    manager.swarm.update_service("sl", image=cluster.image.replace(":1", ":2"))
    wait_for(lambda: {t.image for t in manager.swarm.tasks("sl") if t.desired_state ==
                      "Running" and t.current_state == "Running"} == {cluster.image.replace(
                      ":1", ":2")}, "every task on the new image")  # fmt: skip
    shutdown = [t for t in manager.swarm.tasks("sl") if t.desired_state == "Shutdown"]
    assert {t.image for t in shutdown} == {cluster.image}  # the history stays, as docker's


def test_logs_carry_the_task_prefix(manager: DockerBackend, cluster: Cluster) -> None:
    manager.swarm.create_service(cluster.image, ["sh", "-c", "echo out; echo err >&2; "
                                 "sleep 3600"], name="talk", replicas=2)  # fmt: skip
    wait_for(lambda: _running(manager, "talk", 2), "2 running tasks")
    wait_for(lambda: len(list(manager.swarm.service_logs("talk"))) >= 4, "4 log lines")
    entries = list(manager.swarm.service_logs("talk"))
    assert {(e.stream, e.text.split("| ", 1)[1]) for e in entries} == {
        ("stdout", "out\n"), ("stderr", "err\n")}  # fmt: skip
    assert all(e.text.startswith("talk.") and "@node-" in e.text for e in entries)


def test_refusals_are_one_line(manager: DockerBackend, cluster: Cluster,
                               dockerd: object) -> None:  # fmt: skip
    with pytest.raises(ServiceNotFound, match="No such service: nope"):
        manager.swarm.tasks("nope")
    plain = DockerBackend(dockerd.host)  # type: ignore[attr-defined]
    with pytest.raises(SwarmUnavailable, match="not a swarm manager"):
        plain.swarm.services()
    worker = DockerBackend(cluster.worker.host)
    with pytest.raises(SwarmUnavailable, match="not a swarm manager"):
        worker.swarm.services()


def test_cli_and_magic(cluster: Cluster, manager: DockerBackend, tmp_path: object,
                       ip: InteractiveShell) -> None:  # fmt: skip
    env = {**os.environ, "IPYDOCK_RUNTIME_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "ipydock", "-H", cluster.manager.host]
    out = subprocess.run([*cli, "service", "create", "--name", "one", "--replicas", "2",
                          cluster.image, "sleep", "3600"], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    *progress, sid = out.stdout.strip().splitlines()  # it waited for the tasks, as docker
    assert progress[-2:] == ["overall progress: 2 out of 2 tasks", "verify: Service converged"]
    assert {"1/2: running", "2/2: running"} <= set(progress)
    assert _running(manager, "one", 2)
    table = subprocess.run([*cli, "service", "ls"], env=env, capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    assert sid[:12] in table and "2/2" in table
    ip.run_line_magic("ipydock", f"engine docker --host {cluster.manager.host}")
    try:
        df = ip.run_line_magic("service", "ps one")
        assert list(df.columns[:4]) == ["id", "name", "service", "slot"]
        assert sorted(df.loc[df.desired_state == "Running", "name"]) == ["one.1", "one.2"]
        nodes = ip.run_line_magic("node", "ls")
        assert sorted(nodes.hostname) == ["node-a", "node-b"]
    finally:
        ip.run_line_magic("ipydock", "engine bundled")


def test_stack_deploy_and_rm(manager: DockerBackend, cluster: Cluster, tmp_path) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(f"""
version: "3.8"
services:
  server:
    image: {cluster.image}
    command: httpd -f -p 80 -h /
    deploy: {{replicas: 2, endpoint_mode: dnsrr}}
    networks: [back]
  client:
    image: {cluster.image}
    command: ["sh", "-c", "sleep 3600"]
    build: .
    networks: [back]
networks:
  back: {{}}
""")
    from ipydock.docker.stack import load

    done = manager.swarm.deploy_stack("demo", load(str(compose)))
    assert "Creating network demo_back" in done and "Creating service demo_server" in done
    assert manager.swarm.warnings == ["Ignoring unsupported options: build"]
    assert [(s.name, s.services) for s in manager.swarm.stacks()] == [("demo", 2)]
    wait_for(lambda: _running(manager, "demo_server", 2) and _running(manager, "demo_client", 1),
             "the stack's tasks")  # fmt: skip
    removed = manager.swarm.remove_stack("demo")
    assert {"service demo_server", "service demo_client", "network demo_back"} <= set(removed)
    assert manager.swarm.stacks() == []
