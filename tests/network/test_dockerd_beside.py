"""A dockerd running beside ipydock's networks keeps working: ipydock's chains, NAT and port
rules do not disturb it (the suite's dockerd lives in a network namespace of its own, as the
brief asks of every dockerd a test starts)."""

from __future__ import annotations

import pytest

from ipydock.models import RunOptions
from tests.network.test_bridge import SERVE, listening
from tests.network.test_ports import free_port, get

pytestmark = pytest.mark.root


def test_dockerd_beside_keeps_working(net_backend, dockerd, busybox_tgz) -> None:
    b = net_backend
    b.create_network("ipdn-beside")
    port = free_port()
    cid = b.run(RunOptions("busybox", SERVE, network="ipdn-beside",
                           publish=(f"127.0.0.1:{port}:8081",)), detach=True).id  # fmt: skip
    listening(b, cid)
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "ipdn-beside-busybox")
    try:
        dockerd.run("network", "create", "ipdn-beside-d")
        out = dockerd.run("run", "--rm", "--network", "ipdn-beside-d", "ipdn-beside-busybox",
                          "sh", "-c", "ip -o -4 addr show eth0")  # fmt: skip
        assert b"inet " in out.stdout
        dockerd.run("network", "rm", "ipdn-beside-d")
    finally:
        dockerd.run("rmi", "ipdn-beside-busybox", check=False)
    assert get(port) == cid[:12]  # and ours still answers
