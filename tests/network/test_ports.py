"""Published ports: ``-p`` parsed as docker does, forwarded by the kernel (DNAT rules of our
own chain) on 127.0.0.1 and from the test's outside host, TCP and UDP, exactly as long as the
container runs (and after a SIGKILL, until the next start or ``system check --repair``)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from ipydock.engine.network import ports
from ipydock.errors import InvalidNetworkConfig, NotSupported, StartFailed
from ipydock.models import PortBinding, RunOptions
from tests.network.conftest import NET
from tests.network.test_bridge import SERVE, listening


def test_parse_like_docker() -> None:
    assert ports.parse(["80", "8080:80", "127.0.0.1:8081:81/tcp", "127.0.0.1::82"]) == [
        ports.Binding(80),
        ports.Binding(80, host_port=8080),
        ports.Binding(81, host_ip="127.0.0.1", host_port=8081),
        ports.Binding(82, host_ip="127.0.0.1"),
    ]
    bindings = ports.parse(["8080:80", "127.0.0.1::80"])
    assert ports.from_host_config(ports.to_host_config(bindings)) == sorted(
        bindings, key=lambda b: b.host_port, reverse=True)  # fmt: skip


@pytest.mark.parametrize("bad", ["0", "70000", "x:80", "1.2.3:80:80", "80/foo", "8080:"])
def test_bad_values(bad: str) -> None:
    with pytest.raises(InvalidNetworkConfig, match="-p"):
        ports.parse([bad])


def test_udp_is_published_sctp_is_not() -> None:
    assert ports.parse(["53:53/udp"]) == [ports.Binding(53, "udp", "", 53)]
    with pytest.raises(NotSupported, match="TCP or UDP"):
        ports.parse(["53:53/sctp"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/srv.txt", timeout=10) as r:
        return str(r.read().decode().strip())


@pytest.mark.root
def test_published_port_answers_on_loopback_and_goes_with_the_container(net_backend) -> None:
    b = net_backend
    port = free_port()
    publish = (f"127.0.0.1:{port}:8081", "8081")
    cid = b.run(RunOptions("busybox", SERVE, name="pub", publish=publish), detach=True).id
    listening(b, cid)
    assert get(port) == cid[:12]
    (row,) = b.containers()
    fixed, chosen = row.ports
    assert fixed == PortBinding(8081, "tcp", "127.0.0.1", port)
    assert chosen.container_port == 8081 and chosen.host_port not in (0, port)
    assert get(chosen.host_port) == cid[:12]  # 0.0.0.0 includes 127.0.0.1
    # a second container may not take the same host port: one error, nothing left
    with pytest.raises(StartFailed, match="already allocated"):
        b.run(RunOptions("busybox", ("true",), publish=(f"127.0.0.1:{port}:80",),
                         auto_remove=True))  # fmt: skip
    assert [c.id for c in b.containers(all=True)] == [cid]
    address = address_of(b, cid)
    assert len(dnat_rules(address)) == 2
    b.remove_container(cid, force=True)
    assert dnat_rules(address) == []
    for free in (port, chosen.host_port):  # nothing holds the ports now
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", free))


def dnat_rules(address: str) -> list[str]:
    """Our DNAT rules that lead to ``address`` (a container's)."""
    from tests.network.conftest import iptables_rules

    return [r for r in iptables_rules("nat") if r.startswith("-A IPYDOCK ")
            and f"--to-destination {address}:" in r]  # fmt: skip


def address_of(b, cid: str) -> str:
    (found,) = [e.ipv4_address for n in b.networks() for e in n.containers
                if e.container_id == cid]  # fmt: skip
    return str(found.split("/")[0])


@pytest.mark.root
def test_ports_need_a_bridge(net_backend) -> None:
    with pytest.raises(InvalidNetworkConfig, match="bridge network"):
        net_backend.run(RunOptions("busybox", ("true",), network="none", publish=("80",)))


@pytest.mark.root
def test_the_cli(net_backend, ipd) -> None:
    """network create / ls / inspect / rm and run --network -p through the real CLI."""
    port = free_port()
    nid = ipd("network", "create", "--subnet", f"{NET}.10.0/24", "--ip-range",
              f"{NET}.10.128/25", "ipdn-cli").stdout.strip()  # fmt: skip
    assert len(nid) == 64
    assert "ipdn-cli" in ipd("network", "ls").stdout
    cid = ipd("run", "-d", "--name", "cweb", "--network", "ipdn-cli", "--network-alias", "w",
              "-p", f"127.0.0.1:{port}:8081", "busybox", *SERVE).stdout.strip()  # fmt: skip
    listening(net_backend, cid)
    assert get(port) == cid[:12]
    assert ipd("port", "cweb").stdout == f"8081/tcp -> 127.0.0.1:{port}\n"
    assert ipd("container", "port", "cweb", "8081/tcp").stdout == f"127.0.0.1:{port}\n"
    missing = ipd("port", "cweb", "81", check=False)
    assert missing.returncode == 1 and "No public port '81/tcp' published for cweb" in (
        missing.stderr)  # fmt: skip
    (detail,) = json.loads(ipd("network", "inspect", "ipdn-cli").stdout)
    (member,) = detail["containers"]
    assert member["name"] == "cweb" and member["ipv4_address"] == f"{NET}.10.128/24"
    assert member["aliases"] == ["w"]
    rm = ipd("network", "rm", "ipdn-cli", check=False)
    assert rm.returncode == 1 and "active endpoints" in rm.stderr
    ipd("rm", "-f", "cweb")
    assert ipd("network", "rm", "ipdn-cli").stdout.strip() == "ipdn-cli"


@pytest.mark.root
def test_publish_all_picks_free_ports_for_exposed_ones(net_backend, busybox_tgz) -> None:
    b = net_backend
    b.import_image(busybox_tgz, "busybox-web", changes=['CMD ["sh"]', "EXPOSE 8081 9000"])
    cid = b.run(RunOptions("busybox-web", SERVE, publish=("127.0.0.1::9000",), publish_all=True),
                detach=True).id  # fmt: skip
    listening(b, cid)
    (row,) = b.containers()
    by_port = {p.container_port: p for p in row.ports}
    assert sorted(by_port) == [8081, 9000] and by_port[9000].host_ip == "127.0.0.1"
    assert all(p.host_port > 0 for p in row.ports)
    assert get(by_port[8081].host_port) == cid[:12]


@pytest.mark.root
def test_published_ports_answer_the_outside_host_tcp_and_udp(net_backend, outside) -> None:
    """From another host (the test's namespace), at the host's address: TCP to busybox httpd,
    UDP to an echo server in the container's namespace; the container sees the real client."""
    from tests.network.conftest import netns_socket
    from tests.network.test_bridge import _pids

    b = net_backend
    tcp, udp = free_port(), free_port()
    cid = b.run(RunOptions("busybox", SERVE, name="pub", publish=(f"{tcp}:8081",
                                                                  f"{udp}:9053/udp")),
                detach=True).id  # fmt: skip
    listening(b, cid)
    with outside.connect(outside.host_ip, tcp) as s:
        s.sendall(b"GET /srv.txt HTTP/1.0\r\n\r\n")
        assert s.makefile("rb").read().decode().rstrip().endswith(cid[:12])
    echo = netns_socket(f"/proc/{_pids(b, cid)[1]}/ns/net", socket.SOCK_DGRAM)
    answers = []
    with echo:
        echo.bind(("0.0.0.0", 9053))
        for client in (outside.connect(outside.host_ip, udp, socket.SOCK_DGRAM),
                       _udp_client(udp)):  # fmt: skip
            with client:
                client.send(b"ping")
                data, peer = echo.recvfrom(100)
                echo.sendto(data + b" from " + peer[0].encode(), peer)
                answers.append(client.recv(100).decode())
    gateway = b.inspect_network("bridge").gateways[0]
    assert answers == [f"ping from {outside.ip}", f"ping from {gateway}"]  # 127.0.0.1: NAT'd
    address = address_of(b, cid)
    assert {r.split(" -p ")[1].split()[0] for r in dnat_rules(address)} == {"tcp", "udp"}
    b.remove_container(cid, force=True)
    assert dnat_rules(address) == []


def _udp_client(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.mark.root
def test_a_killed_container_leaves_rules_that_repair_removes(net_backend) -> None:
    import os
    import select
    import signal

    from tests.network.test_bridge import _pids

    b = net_backend
    port = free_port()
    cid = b.run(RunOptions("busybox", SERVE, publish=(f"127.0.0.1:{port}:8081",)),
                detach=True).id  # fmt: skip
    listening(b, cid)
    address = address_of(b, cid)
    supervisor, pid1 = _pids(b, cid)
    fds = [os.pidfd_open(supervisor), os.pidfd_open(pid1)]
    os.kill(supervisor, signal.SIGKILL)
    for fd in fds:
        select.select([fd], [], [])
        os.close(fd)
    assert len(dnat_rules(address)) == 1  # nobody took it out
    assert f"published port {port} of a container that is not running is still forwarded" in (
        b.check().problems)  # fmt: skip
    assert f"removed the forwarding of published port {port}" in b.check(repair=True).repaired
    assert dnat_rules(address) == []
    b.remove_container(cid, force=True)
