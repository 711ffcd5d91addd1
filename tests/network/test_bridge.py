"""Bridge networks of the bundled engine, as root with real netlink: traffic really flows
between containers (busybox httpd/wget inside their own namespaces) and nothing is left."""

from __future__ import annotations

import os
import select
import signal
import time

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.network import netlink
from ipydock.errors import (
    AddressUnavailable,
    InvalidNetworkConfig,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    StartFailed,
)
from ipydock.models import RunOptions
from tests.network.conftest import NET, PREFIX, mine

pytestmark = pytest.mark.root

SERVE = ("sh", "-c", "echo $HOSTNAME > /srv.txt && exec httpd -f -p 8081 -h /")


def serve(b: BundledBackend, name: str, **opts: object) -> str:
    """A detached web server on port 8081 answering /srv.txt with its hostname; waits until
    it listens (its own wget to itself succeeds)."""
    cid = b.run(RunOptions("busybox", SERVE, name=name, **opts), detach=True).id  # type: ignore[arg-type]
    listening(b, cid)
    return cid


def listening(b: BundledBackend, cid: str) -> None:
    """Wait until the container's server answers on its own 127.0.0.1:8081."""
    probe = ["sh", "-c", "until wget -qO- http://127.0.0.1:8081/srv.txt; do :; done"]
    with open(os.devnull, "w") as null:
        assert b.exec(cid, probe, stdout=null) == 0


def test_lo_is_up_with_network_none(run) -> None:
    script = "httpd -p 127.0.0.1:8082 -h /etc && wget -qO- http://127.0.0.1:8082/hostname"
    code, out = run("sh", "-c", script + " && ip -o link", network="none")
    assert code == 0, out
    links = [line.split(":")[1].strip() for line in out.splitlines() if ": " in line]
    assert links == ["lo"]
    assert "LOOPBACK,UP" in out


def test_default_bridge_is_used_without_network(net_backend, run) -> None:
    code, out = run("sh", "-c", "ip -o -4 addr show eth0 && ip route && wget -qO- "
                    "http://127.0.0.1:1 2>&1; true")  # fmt: skip
    (default,) = [n for n in net_backend.networks() if n.name == "bridge"]
    assert default.driver == "bridge" and default.subnets and default.gateways
    prefix = default.subnets[0].rsplit(".", 2)[0]  # 172.18.0.0/16 -> 172.18
    assert f"inet {prefix}." in out and f"default via {default.gateways[0]}" in out
    assert default.containers == []  # the --rm container is gone, its endpoint too


def test_user_network_names_aliases_short_ids_and_a_later_joiner(net_backend, run, exec_in) -> None:
    b = net_backend
    net = b.create_network("ipdn-app")
    assert net.driver == "bridge" and net.subnets
    web = serve(b, "web", network="ipdn-app", network_aliases=("www",))
    for name in ("web", "www", web[:12]):
        code, out = run("wget", "-qO-", f"http://{name}:8081/srv.txt", network="ipdn-app")
        assert (code, out.strip()) == (0, web[:12]), name
    (ep,) = b.inspect_network("ipdn-app").containers
    assert (ep.name, ep.aliases, ep.container_id) == ("web", ["www"], web)
    assert ep.ipv4_address.endswith("/16") and ep.mac_address.startswith("02:42:")
    late = serve(b, "late", network="ipdn-app")  # joins after web: web resolves it at once
    code, out = exec_in(web, "wget", "-qO-", "http://late:8081/srv.txt")
    assert (code, out.strip()) == (0, late[:12])
    b.remove_container(late, force=True)
    code, out = exec_in(web, "cat", "/etc/hosts")
    assert "late" not in out and "web" not in out.split("\n", 7)[-1]


def test_default_bridge_has_no_names_but_links_work(net_backend, run, busybox_tgz) -> None:
    b = net_backend
    b.import_image(busybox_tgz, "busybox-web", changes=['CMD ["sh"]', "EXPOSE 8081"])
    srv = b.run(RunOptions("busybox-web", SERVE, name="srv"), detach=True).id
    listening(b, srv)
    code, out = run("wget", "-qO-", "-T", "2", "http://srv:8081/srv.txt")
    assert code != 0, out  # no hosts entry, no DNS on the default bridge
    code, out = run("sh", "-c", "env | sort && wget -qO- http://db:8081/srv.txt",
                    links=("srv:db",))  # fmt: skip
    assert code == 0, out
    ip = b.inspect_network("bridge").containers[0].ipv4_address.split("/")[0]
    assert f"DB_PORT_8081_TCP_ADDR={ip}" in out and f"DB_PORT=tcp://{ip}:8081" in out
    assert "DB_PORT_8081_TCP_PORT=8081" in out and out.strip().endswith(srv[:12])


def test_two_networks_are_isolated(net_backend, run) -> None:
    b = net_backend
    b.create_network("ipdn-a")
    b.create_network("ipdn-b")
    a_srv = serve(b, "a-srv", network="ipdn-a")
    ip = b.inspect_network("ipdn-a").containers[0].ipv4_address.split("/")[0]
    code, out = run("wget", "-qO-", f"http://{ip}:8081/srv.txt", network="ipdn-a")
    assert (code, out.strip()) == (0, a_srv[:12])
    code, out = run("wget", "-qO-", "-T", "2", f"http://{ip}:8081/srv.txt", network="ipdn-b")
    assert code != 0, out
    code, out = run("wget", "-qO-", "-T", "2", "http://a-srv:8081/srv.txt", network="ipdn-b")
    assert code != 0, out  # no hosts entry, no DNS on the default bridge


def test_connect_and_disconnect_live(net_backend, exec_in) -> None:
    b = net_backend
    b.create_network("ipdn-front")
    back = b.create_network("ipdn-back", subnet=f"{NET}.7.0/24")
    db = serve(b, "db", network="ipdn-back")
    app = b.run(RunOptions("busybox", ("sleep", "600"), name="app", network="ipdn-front"),
                detach=True).id  # fmt: skip
    assert exec_in(app, "wget", "-qO-", "-T", "2", "http://db:8081/srv.txt")[0] != 0
    b.connect_network("ipdn-back", "app", aliases=("api",), ip=f"{NET}.7.77")
    code, out = exec_in(app, "ip", "-o", "-4", "addr", "show", "eth1")
    assert f"{NET}.7.77/24" in out
    assert exec_in(app, "wget", "-qO-", "http://db:8081/srv.txt") == (0, db[:12] + "\n")
    assert f"{NET}.7.77\tapp api" in exec_in(db, "cat", "/etc/hosts")[1]
    with pytest.raises(AddressUnavailable, match="already exists"):
        b.connect_network("ipdn-back", "app")
    assert {e.name for e in b.inspect_network(back.id).containers} == {"db", "app"}
    b.disconnect_network("ipdn-back", "app")
    assert exec_in(app, "ip", "link", "show", "eth1")[0] != 0
    assert {e.name for e in b.inspect_network("ipdn-back").containers} == {"db"}
    assert "api" not in exec_in(db, "cat", "/etc/hosts")[1]


def test_bad_input_is_one_error_and_nothing_half_made(net_backend) -> None:
    b = net_backend
    links = mine()  # this run's: other runs make links meanwhile
    b.create_network("ipdn-x", subnet=f"{NET}.8.0/24")
    made = mine() - links
    assert len(made) == 1 and made.pop().startswith(PREFIX + "-")
    with pytest.raises(NetworkExists):
        b.create_network("ipdn-x")
    with pytest.raises(AddressUnavailable, match="overlaps"):
        b.create_network("ipdn-y", subnet=f"{NET}.8.128/25")
    with pytest.raises(NetworkNotFound):
        b.run(RunOptions("busybox", ("true",), network="ipdn-nope", auto_remove=True))
    with pytest.raises(InvalidNetworkConfig, match="--ip"):
        b.run(RunOptions("busybox", ("true",), network="ipdn-x", ip="10.9.9.9",
                         auto_remove=True))  # fmt: skip
    with pytest.raises(InvalidNetworkConfig, match="user defined networks only"):
        b.run(RunOptions("busybox", ("true",), ip="10.9.9.9", auto_remove=True))
    assert b.containers(all=True) == []
    cid = serve(b, "holder", network="ipdn-x", ip=f"{NET}.8.50")
    assert b.inspect_network("ipdn-x").containers[0].ipv4_address == f"{NET}.8.50/24"
    with pytest.raises(StartFailed, match="already in use"):  # found at start, as docker
        b.run(RunOptions("busybox", ("true",), network="ipdn-x", ip=f"{NET}.8.50",
                         auto_remove=True))  # fmt: skip
    with pytest.raises(NetworkInUse, match="active endpoints"):
        b.remove_network("ipdn-x")
    b.remove_container(cid, force=True)
    b.remove_network("ipdn-x")
    assert mine() - links == set()


def test_a_killed_supervisor_frees_its_address(net_backend) -> None:
    b = net_backend
    b.create_network("ipdn-k", subnet=f"{NET}.9.0/24")
    cid = serve(b, "victim", network="ipdn-k")
    state = b.inspect_container(cid)
    veths = {n for n in netlink.link_names() if n.startswith(PREFIX + "v")}
    assert len(veths) == 1
    supervisor, pid1 = _pids(b, cid)
    fds = [os.pidfd_open(supervisor), os.pidfd_open(pid1)]
    os.kill(supervisor, signal.SIGKILL)
    for fd in fds:  # pid 1 dies with its supervisor (parent-death signal)
        select.select([fd], [], [])
        os.close(fd)
    assert state.id == cid
    # its netns and veth go with pid 1 (the kernel tears a netns down asynchronously)
    assert b.inspect_network("ipdn-k").containers == []
    wait_gone(veths.pop())
    # readers skip the dead endpoint; check --repair also frees it on disk
    assert f"network ipdn-k: {NET}.9.2 is held by victim, which is not running" in (
        b.check().problems)  # fmt: skip
    assert f"freed {NET}.9.2 on network ipdn-k" in b.check(repair=True).repaired
    assert not [p for p in b.check().problems if "ipdn-k" in p]
    # a bridge that went away (a reboot, someone's `ip link del`) is made again
    device = b.inspect_network("ipdn-k").options["com.docker.network.bridge.name"]
    netlink.delete_link(device)
    assert f"network ipdn-k: bridge {device} is missing" in b.check().problems
    assert f"made bridge {device} of network ipdn-k" in b.check(repair=True).repaired
    assert device in netlink.link_names()
    again = serve(b, "again", network="ipdn-k")
    assert b.inspect_network("ipdn-k").containers[0].ipv4_address == f"{NET}.9.2/24"
    b.remove_container(again, force=True)
    b.remove_container(cid, force=True)
    b.remove_network("ipdn-k")  # no endpoint holds it


def _pids(b: BundledBackend, cid: str) -> tuple[int, int]:
    from ipydock.engine.containers import lifecycle

    records = lifecycle.records_of(b.store)
    state = records.read_state(records.find(cid))
    return state.supervisor_pid, state.pid


def wait_gone(link: str, timeout: float = 30) -> None:
    """Wait for the kernel's RTM_DELLINK of ``link`` (netlink events, no polling sleep)."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        ip.bind()
        deadline = time.monotonic() + timeout
        while link in netlink.link_names():
            assert time.monotonic() < deadline, f"{link} is still there"
            if select.select([ip], [], [], max(0.0, deadline - time.monotonic()))[0]:
                ip.get()


def test_embedded_dns_at_127_0_0_11(net_backend, run, exec_in) -> None:
    """Only names of the network are asked: any other would be forwarded off this machine."""
    b = net_backend
    b.create_network("ipdn-dns", subnet=f"{NET}.11.0/24")
    web = serve(b, "web", network="ipdn-dns", network_aliases=("www",))
    code, out = run("sh", "-c", f"cat /etc/resolv.conf && nslookup web && nslookup www && "
                    f"nslookup {web[:12]}", network="ipdn-dns")  # fmt: skip
    assert code == 0, out
    assert "nameserver 127.0.0.11" in out and out.count(f"{NET}.11.2") == 3
    late = serve(b, "late", network="ipdn-dns")
    code, out = exec_in(web, "nslookup", "late")
    assert code == 0 and f"{NET}.11.3" in out, out
    b.remove_container(late, force=True)
    code, out = exec_in(web, "nslookup", "late")
    assert f"{NET}.11.3" not in out
    resolvers = _helpers(b, web)
    assert len(resolvers) == 1
    fds = [os.pidfd_open(pid) for pid in resolvers]
    b.remove_container(web, force=True)
    for fd in fds:  # the resolver went with its container
        assert select.select([fd], [], [], 30)[0]
        os.close(fd)


def _helpers(b: BundledBackend, cid: str) -> list[int]:
    """The supervisor's children but pid 1: its resolver (and port proxy)."""
    supervisor, pid1 = _pids(b, cid)
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
        return [int(p) for p in f.read().split() if int(p) != pid1]


def test_isolation_rules_of_our_own(net_backend, monkeypatch) -> None:
    """One rule set for every bridge of ours: the rules match the bridges' interface group,
    never a bridge's name or subnet, so making and removing a network runs no iptables while
    another bridge of ours is there; the drops are in mangle (before any accept of dockerd's),
    the accepts first in filter's FORWARD (before a dockerd's policy of DROP)."""
    import shutil
    import subprocess

    from ipydock.engine.network import firewall
    from tests.conftest import require
    from tests.network.conftest import iptables_rules

    require(shutil.which("iptables") is not None, "iptables is not installed")
    b = net_backend
    net = b.create_network("ipdn-fw", subnet=f"{NET}.12.0/24")
    device = net.options["com.docker.network.bridge.name"]
    assert _group(device) == firewall.GROUP
    assert "-A FORWARD -j IPYDOCK-FORWARD" in iptables_rules("filter")
    assert "-A FORWARD -j IPYDOCK-ISOLATION" in iptables_rules("mangle")
    assert firewall.has()
    assert not [r for t in ("mangle", "filter", "nat") for r in iptables_rules(t) if device in r]
    runs: list[object] = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: runs.append(a) or real(*a, **k))
    internal = b.create_network("ipdn-fw-int", subnet=f"{NET}.14.0/24", internal=True)
    assert _group(internal.options["com.docker.network.bridge.name"]) == firewall.GROUP_INTERNAL
    b.remove_network("ipdn-fw-int")
    assert runs == []  # no iptables run
    monkeypatch.undo()
    # someone took a rule out: check says so, --repair puts it back
    mark = next(r for r in iptables_rules("nat") if r.startswith("-A IPYDOCK-POSTROUTING -m mark"))
    subprocess.run(["iptables", "-w", "-t", "nat", "-D", *mark.split()[1:]], check=True)
    assert not firewall.has()
    assert f"network ipdn-fw: isolation rules of {device} are missing" in b.check().problems
    b.check(repair=True)
    assert firewall.has() and mark in iptables_rules("nat")
    b.remove_network("ipdn-fw")


def test_rules_left_without_a_bridge_are_found_and_swept(tmp_path) -> None:
    """A crash after the last bridge of ours went and before its rules did: ``system check``
    says so and ``--repair`` takes them out (in a network namespace of its own, with a sysfs
    that shows its links: the host has bridges of ours)."""
    import json
    import shutil
    import subprocess
    import sys

    from tests.conftest import require

    require(shutil.which("iptables") is not None, "iptables is not installed")
    script = (
        "import json, sys\n"
        "from ipydock.engine.network import bridge, firewall\n"
        "firewall._install()\n"
        "nets = bridge.Networks(sys.argv[1])\n"
        "found = nets.check()[0]\n"
        "print(json.dumps([found, nets.check(repair=True)[1], firewall.has(), nets.check()[0]]))"
    )
    proc = subprocess.run(["unshare", "--net", "--mount", "--", "sh", "-c",
                           'mount -t sysfs sysfs /sys && exec "$@"', "sh", sys.executable, "-c",
                           script, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "IPYDOCK_NET_RUN": str(tmp_path / "run")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        ["ipydock's packet rules are there though none of its bridges is"],
        ["took out ipydock's packet rules (no bridge of ipydock is left)"], False, []]  # fmt: skip


def _group(device: str) -> int:
    with open(f"/sys/class/net/{device}/netdev_group") as f:
        return int(f.read())


def test_netlink_works_inside_a_running_event_loop() -> None:
    """A Jupyter kernel runs an asyncio loop; pyroute2's sync API needs one of its own."""
    import asyncio

    async def in_loop() -> set[str]:
        return netlink.link_names()

    assert "lo" in asyncio.run(in_loop())
