"""A dockerd running beside ipydock's networks keeps working: ipydock's chains, NAT and port
rules do not disturb it (the suite's dockerd lives in a network namespace of its own, as the
brief asks of every dockerd a test starts)."""

from __future__ import annotations

import os

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


# a sysfs of the network namespace entered (the links there), the cgroup mounts kept
SYSFS = ('mkdir -p "$1" && mount --rbind /sys/fs/cgroup "$1" && mount -t sysfs sysfs /sys && '
         'mount --move "$1" /sys/fs/cgroup && shift && exec "$@"')  # fmt: skip


def test_dockerd_networks_and_ours_do_not_reach_each_other(busybox_tgz, tmp_path) -> None:
    """A dockerd with its default bridge, a user-defined network and its rules (FORWARD policy
    DROP, its accepts) in the same network namespace as an ipydock network: neither side's
    containers reach the other's, as two docker networks cannot, though that namespace itself
    reaches both; both still get out through their NAT to an "outside" host. The dockerd and
    the outside host live in network namespaces this test made; ipydock runs there in a
    helper process (tests/network/beside_dockerd.py)."""
    import json
    import shutil
    import subprocess
    import sys
    import threading
    from pathlib import Path

    from pyroute2 import NetNS, netns

    from ipydock.testing import Dockerd
    from tests.conftest import require
    from tests.network.conftest import NET, PREFIX, netns_socket

    require(os.geteuid() == 0 and shutil.which("nsenter") is not None, "needs root, nsenter")
    require(shutil.which("iptables") is not None, "iptables is not installed")
    host, away = f"{PREFIX}dk", f"{PREFIX}ou"
    for name in (host, away):
        netns.create(name)
    try:
        with NetNS(host) as ns:
            ns.link("add", ifname=f"{PREFIX}o", kind="veth",
                    peer={"ifname": "eth0", "net_ns_fd": away})  # fmt: skip
        for name, dev, addr in ((host, f"{PREFIX}o", 1), (away, "eth0", 2)):
            with NetNS(name) as ns:
                for ifname in ("lo", dev):
                    ns.link("set", index=ns.link_lookup(ifname=ifname)[0], state="up")
                index = ns.link_lookup(ifname=dev)[0]
                ns.addr("add", index=index, address=f"{NET}.201.{addr}", prefixlen=24)
                if name == away:
                    ns.route("add", dst="0.0.0.0/0", gateway=f"{NET}.201.1")
        srv = netns_socket(f"/run/netns/{away}")
        srv.bind((f"{NET}.201.2", 8093))
        srv.listen(8)

        def answer() -> None:  # each caller's address as the outside host sees it
            while True:
                try:
                    conn, peer = srv.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(f"{peer[0]}\n".encode())

        threading.Thread(target=answer, daemon=True).start()
        with Dockerd(netns=host, flags=()) as d:  # docker's defaults: docker0, iptables
            d.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "ipdn-beside-busybox")
            d.run("network", "create", "ipdn-beside-d")
            ips = []
            for net in ("bridge", "ipdn-beside-d"):
                cid = d.run("run", "-d", "--network", net, "ipdn-beside-busybox", "httpd", "-f",
                            "-p", "8080", "-h", "/etc").stdout.decode().strip()  # fmt: skip
                ips.append(d.run("inspect", "-f", "{{range .NetworkSettings.Networks}}"
                                 "{{.IPAddress}}{{end}}", cid).stdout.decode().strip())  # fmt: skip
            try:
                helper = subprocess.run(
                    ["nsenter", f"--net=/run/netns/{host}", "--", "unshare", "--mount", "--",
                     "sh", "-c", SYSFS, "sh", str(tmp_path / "cg"), sys.executable,
                     "-m", "tests.network.beside_dockerd", str(tmp_path / "store"), busybox_tgz,
                     f"{NET}.201.2:8093", *ips],
                    env=d.env(IPYDOCK_NET_RUN=str(tmp_path / "run"),
                              IPYDOCK_LINK_PREFIX=f"{PREFIX}i"),
                    cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                    timeout=300)  # fmt: skip
            finally:
                d.run("rm", "-f", *[c for c in d.run("ps", "-aq").stdout.decode().split()],
                      check=False)  # fmt: skip
        srv.close()
        assert helper.returncode == 0, helper.stderr[-3000:]
        found = json.loads(helper.stdout.splitlines()[-1])
        assert found["host to ours"] and found["host to docker"] == [
            True,
            True,
            True,
        ]
        assert found["ours to docker"] == [False, False, False]  # though the routes exist
        assert found["docker to ours"] == [False, False, False]
        assert found["ours to outside"] == f"{NET}.201.1"  # through our NAT
        assert found["docker to outside"]
    finally:
        for name in (host, away):
            netns.remove(name)
