"""A real two-node Docker Swarm on this machine, for the swarm commands.

::

    netns ipdsw-a-PID                      netns ipdsw-b-PID
      dockerd (hostname node-a)              dockerd (hostname node-b)
      swarm manager, 10.231.PID.1/24 ──veth── 10.231.PID.2/24, worker
      registry:5000 on 10.231.PID.1 (both nodes pull from it: images pinned by digest)

Each dockerd lives in a network namespace the test made (its bridges, iptables rules and the
overlay's VXLAN stay in there) and in a UTS namespace with its node's hostname. Nothing reaches
the host's own interfaces. Everything goes at the end: services, daemons, namespaces, veths.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest
from pyroute2 import NetNS, netns

from ipydock.testing import Dockerd
from tests.conftest import require

IMAGE = "10.231.{n}.1:5000/busybox:1"


def _wire(a: str, b: str, subnet: int) -> None:
    """Two namespaces joined by a veth pair, loopback up in both."""
    for name in (a, b):
        netns.create(name)
    with NetNS(a) as ns:
        ns.link("add", ifname="ipdsw0", kind="veth", peer={"ifname": "ipdsw1", "net_ns_fd": b})
    for name, dev, addr in ((a, "ipdsw0", 1), (b, "ipdsw1", 2)):
        with NetNS(name) as ns:
            for ifname in ("lo", dev):
                idx = ns.link_lookup(ifname=ifname)[0]
                ns.link("set", index=idx, state="up")
            idx = ns.link_lookup(ifname=dev)[0]
            ns.addr("add", index=idx, address=f"10.231.{subnet}.{addr}", prefixlen=24)


def _registry(ns: str, base: str, addr: str) -> subprocess.Popen[bytes]:
    registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    config = os.path.join(base, "registry.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {base}/data\n"
                f"http:\n  addr: {addr}:5000\n")  # fmt: skip
    log = open(os.path.join(base, "registry.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "--", registry, "serve",
                             config], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    log.close()
    return proc


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Until ``check()`` holds (polling the engine's state: a swarm converges in its own
    time), or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Cluster:
    def __init__(self, manager: Dockerd, worker: Dockerd, image: str) -> None:
        self.manager, self.worker, self.image = manager, worker, image


@contextlib.contextmanager
def two_node_swarm(busybox_tgz: str) -> Iterator[Cluster]:
    """The swarm of the module docstring, its test image pushed to its registry."""
    require(os.geteuid() == 0, "a swarm of private dockerds needs root")
    require(shutil.which("dockerd") is not None, "docker.io is not installed")
    require(shutil.which("docker-registry") is not None, "docker-registry is not installed")
    n = os.getpid() % 250 + 1
    a, b = f"ipdsw-a-{os.getpid()}", f"ipdsw-b-{os.getpid()}"
    base = tempfile.mkdtemp(prefix="ipydock-swarm-")
    registry: subprocess.Popen[bytes] | None = None
    nodes: list[Dockerd] = []
    try:
        _wire(a, b, n)
        registry = _registry(a, base, f"10.231.{n}.1")
        insecure = f"--insecure-registry=10.231.{n}.1:5000"
        for ns, host in ((a, "node-a"), (b, "node-b")):
            nodes.append(Dockerd(netns=ns, hostname=host, flags=(insecure,)).start())
        manager, worker = nodes
        manager.run("swarm", "init", "--advertise-addr", f"10.231.{n}.1")
        token = manager.run("swarm", "join-token", "-q", "worker").stdout.decode().strip()
        worker.run("swarm", "join", "--token", token, "--advertise-addr", f"10.231.{n}.2",
                   f"10.231.{n}.1:2377")  # fmt: skip
        image = IMAGE.format(n=n)
        manager.run("import", "-c", 'CMD ["sh"]', busybox_tgz, image)
        deadline = time.monotonic() + 60
        while manager.run("push", image, check=False).returncode != 0:  # the registry starts
            if time.monotonic() > deadline:
                pytest.fail("the swarm's registry did not take the test image")
            time.sleep(0.2)
        yield Cluster(manager, worker, image)
    finally:
        for d in reversed(nodes):
            d.stop()
        if registry is not None:
            registry.terminate()
            registry.wait(timeout=30)
        for name in (a, b):
            with contextlib.suppress(OSError):
                netns.remove(name)
        shutil.rmtree(base, ignore_errors=True)
