"""The supervisor's side of bridge networking: wire pid 1's netns between spawn and exec.

::

    spawn(paused) --ready--> wire(): Networks.attach (veth, address, route, /etc/hosts)
                  --"g"----> exec                        (a failure: pid 1 is told to give up)
    pid 1 exits   --------> unwire(): the endpoints are forgotten, peers' /etc/hosts rewritten
                             (the veth went with the netns)

Rootless containers get no bridge: with the default network they run with loopback only (as
``--network none``); a named network is refused with what to use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
from typing import Any

from ipydock.engine.network.bridge import Networks, is_bridged
from ipydock.engine.runtime.spec import Spec

__all__ = ["unwire", "wants_wiring", "wire", "with_link_env"]


def _root(containers_dir: str) -> str:
    return os.path.dirname(containers_dir.rstrip("/"))


def wants_wiring(config: dict[str, Any], rootless: bool) -> bool:
    mode = config["HostConfig"].get("NetworkMode") or "none"
    if not is_bridged(mode):
        return False
    if rootless:
        if mode in ("default", "bridge"):
            return False
        from ipydock.errors import NotSupported

        raise NotSupported(f"run --network {mode}", "bundled", "bridge networks need root; "
                           "rootless containers run with --network none or host")  # fmt: skip
    return True


def with_link_env(containers_dir: str, config: dict[str, Any], spec: Spec) -> Spec:
    """``--link`` variables added to the environment (before the image's own)."""
    extra = Networks(_root(containers_dir)).link_env(config)
    return dataclasses.replace(spec, env=(*extra, *spec.env)) if extra else spec


def wire(
    containers_dir: str, cid: str, config: dict[str, Any], child: Any
) -> dict[str, Any] | None:
    """Attach the paused pid 1 and let it exec; the next report (None: it exec'd), or the
    failure as a report (pid 1 is cancelled: it exits 137 without running anything)."""
    from ipydock.engine.runtime.spawn import read_report
    from ipydock.errors import IPyDockError

    nets = Networks(_root(containers_dir))
    try:
        endpoints = nets.attach(cid, config, child.pid)
        _resolver(containers_dir, nets, cid, child.pid, endpoints)
        _publish(containers_dir, cid, config, endpoints)
    except (IPyDockError, OSError) as exc:
        unwire(containers_dir, cid)
        os.write(child.go_fd, b"x")  # not "g": pid 1 gives up ("start was cancelled")
        os.close(child.go_fd)
        read_report(child.report_fd)
        return {"step": "network", "errno": getattr(exc, "errno", 0) or 0,
                "detail": str(exc), "exit_code": 125}  # fmt: skip
    os.write(child.go_fd, b"g")
    os.close(child.go_fd)
    return read_report(child.report_fd)


_HELPERS: dict[str, list[int]] = {}  # container id -> its resolver's pid


def _resolver(
    containers_dir: str, nets: Networks, cid: str, pid: int, endpoints: list[dict[str, Any]]
) -> None:
    """On a user-defined network: docker's embedded DNS at 127.0.0.11 in the container."""
    from ipydock.engine.network import dns

    default = nets.default()
    if all(default is not None and ep["Network"] == default["Id"] for ep in endpoints):
        return
    sock = dns.bind_in(pid)
    try:
        _HELPERS.setdefault(cid, []).append(dns.start_resolver(sock, dns.lookup_for(nets, cid)))
    finally:
        sock.close()
    path = os.path.join(containers_dir, cid, "resolv.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # bind-mounted: rewritten in place
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"nameserver {dns.ADDRESS}\noptions ndots:0\n".encode(), 0)
    finally:
        os.close(fd)


def _publish(
    containers_dir: str, cid: str, config: dict[str, Any], endpoints: list[dict[str, Any]]
) -> None:
    """Hold the published host ports and DNAT them to the container (the kernel forwards);
    ``ports.json`` says what was bound."""
    from ipydock.engine.network import bridge, firewall, ports
    from ipydock.errors import NotSupported

    wanted = ports.from_host_config(config["HostConfig"].get("PortBindings"))
    path = os.path.join(containers_dir, cid, "ports.json")
    if not wanted or not endpoints:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    if not firewall.available():
        raise NotSupported("-p", "bundled", "published ports are forwarded by iptables rules: "
                           "install iptables (apt-get install iptables)")  # fmt: skip
    socks, bound = ports.bind(wanted)
    _HELD[cid] = socks
    ep = endpoints[0]
    rules = ports.rules((ep["Pid"], ep["Start"]), ep["IPv4"], bound)
    if not firewall.add_ports(rules, bridge._alive):
        raise NotSupported("-p", "bundled", "iptables refused the port forwarding rules "
                           "(see `iptables -t nat -S IPYDOCK`)")  # fmt: skip
    _RULES[cid] = rules
    with open(path + ".tmp", "w") as f:
        json.dump([dataclasses.asdict(b) for b in bound], f)
    os.replace(path + ".tmp", path)


_HELD: dict[str, list[Any]] = {}  # container id -> the sockets that hold its host ports
_RULES: dict[str, list[str]] = {}  # container id -> its DNAT rules


def unwire(containers_dir: str, cid: str) -> None:
    from ipydock.engine.network import firewall

    firewall.remove_ports(_RULES.pop(cid, []))
    for sock in _HELD.pop(cid, []):
        sock.close()
    for pid in _HELPERS.pop(cid, []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(containers_dir, cid, "ports.json"))
    Networks(_root(containers_dir)).release(cid)
