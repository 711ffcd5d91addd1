"""The kernel side of bridge networks, through pyroute2 (netlink in-process, no ``ip``).

::

    host netns:  BRIDGE (gateway/prefix, up) ──master── VETH (up)
                                                           │ veth pair
    container netns (/proc/PID/ns/net):                 ethN (address, MAC, up) + default route

A container's netns is its pid 1's (a new one, made by the spawner): when pid 1 dies the netns
goes, its end of the veth with it, and the kernel deletes the host end too. So nothing of an
endpoint outlives its container, whatever kills it. Bridges live until ``network rm``.

Every pyroute2 ``NetlinkError`` is turned into :class:`~ipydock.errors.NetlinkFailure` here.
What a container start waits on (bridge, veth pair, address, route, delete) goes through
:mod:`rtnl` (one plain socket, no event loop, no dumps); the rest through pyroute2's IPRoute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from ipydock.engine.network import rtnl
from ipydock.errors import NetlinkFailure

__all__ = [
    "add_endpoint",
    "add_macvlan",
    "delete_link",
    "ensure_bridge",
    "host_networks",
    "link_names",
    "mac_for",
    "remove_endpoint",
]


_T = TypeVar("_T")


def _off_loop(fn: Callable[..., _T]) -> Callable[..., _T]:
    """pyroute2's synchronous API drives an asyncio loop of its own, which cannot run in a
    thread whose loop is running (a Jupyter kernel's): there, the call runs in a short-lived
    thread of its own. Elsewhere (the supervisor, single-threaded) it runs in place."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box["error"] = exc

        thread = threading.Thread(target=work, name=f"netlink-{fn.__name__}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    return call


def _iproute(netns: str | None = None) -> Any:
    from pyroute2 import IPRoute

    return IPRoute(netns=netns) if netns else IPRoute()


@contextlib.contextmanager
def _netlink(operation: str) -> Iterator[None]:
    from pyroute2 import NetlinkError

    try:
        yield
    except NetlinkError as exc:
        raise NetlinkFailure(operation, exc.code, f"{os.strerror(exc.code)}") from exc


def mac_for(address: IPv4Address) -> str:
    """Docker's MAC for an address: 02:42 and the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


@_off_loop
def link_names() -> set[str]:
    """The names of the host's links (tests compare them before and after)."""
    with _iproute() as ip:
        return {str(link.get("ifname")) for link in ip.get_links()}


def host_networks() -> list[IPv4Network]:
    """Every IPv4 network the host routes (its main table, not the default route; the
    prefix route of each address included): a new network's subnet must overlap none of them
    (docker0 and other engines' bridges included). Read from /proc/net/route: no dump."""
    found: list[IPv4Network] = []
    with open("/proc/net/route") as f:
        next(f, None)
        for line in f:
            fields = line.split()
            dst, mask = (_hex_address(x) for x in (fields[1], fields[7]))
            if int(mask):
                found.append(IPv4Network(f"{dst}/{mask}", strict=False))
    return found


def _hex_address(text: str) -> IPv4Address:
    return IPv4Address(int(text, 16).to_bytes(4, "little"))


def _index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def ensure_bridge(
    name: str, gateway: IPv4Address, prefixlen: int, mtu: int = 1500, group: int = 0
) -> None:
    """The bridge with the gateway address, up, in interface ``group`` (which the firewall
    rules match); made if missing (idempotent: an existing one is put in ``group``)."""
    with rtnl.Rtnl() as nl:
        nl.create_bridge(name, mtu, group)
        index = _index(name)
        if not index:
            raise NetlinkFailure(f"create bridge {name}", errno.ENODEV, "it went away")
        nl.add_address(index, str(gateway), prefixlen)
        nl.set_up(index, group=group)


def delete_link(name: str) -> bool:
    """Delete a link of the host by name; False if there was none."""
    if not name:
        return False
    with rtnl.Rtnl() as nl:
        return nl.delete_link(name)


def add_endpoint(
    pid: int, bridge: str, veth: str, ifname: str, address: IPv4Address, prefixlen: int,
    gateway: IPv4Address | None, mtu: int = 1500,
) -> str:  # fmt: skip
    """A veth pair from ``bridge`` into the netns of ``pid``, named ``ifname`` there, with
    ``address`` and (``gateway`` given) the default route; returns its MAC address."""
    mac = mac_for(address)
    master = _index(bridge)
    if not master:
        raise NetlinkFailure(f"connect to {bridge}", errno.ENODEV, f"bridge {bridge} is gone "
                             "(run `ipydock system check --repair`)")  # fmt: skip
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:  # the peer is made in the container's netns: a crash leaves no pair on the host
        with rtnl.Rtnl() as nl:
            nl.create_veth(veth, master, ifname, mac, fd, mtu)
    finally:
        os.close(fd)
    try:
        with rtnl.in_netns(pid) as ns:
            index = socket.if_nametoindex(ifname)
            ns.add_address(index, str(address), prefixlen)
            ns.set_up(index)
            if gateway is not None:  # a second network: the first one's default route stays
                ns.add_default_route(str(gateway), index)
    except BaseException:
        delete_link(veth)
        raise
    return mac


@_off_loop
def add_macvlan(
    pid: int, parent: str, ifname: str, address: IPv4Address, prefixlen: int,
    gateway: IPv4Address | None,
) -> str:  # fmt: skip
    """A macvlan link (bridge mode) on the host's ``parent``, made right in the netns of
    ``pid`` as ``ifname``, with its own MAC, ``address`` and the default route; its MAC."""
    mac = mac_for(address)
    netns = f"/proc/{pid}/ns/net"
    temp = f"mv{pid}"[:15]
    with _iproute() as ip, _netlink(f"connect {ifname} to {parent}"):
        found = ip.link_lookup(ifname=parent)
        if not found:
            raise NetlinkFailure(f"connect to {parent}", errno.ENODEV, f"the parent interface "
                                 f"{parent} is gone")  # fmt: skip
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ip.link("add", ifname=temp, kind="macvlan", link=found[0], macvlan_mode="bridge",
                    net_ns_fd=fd)  # fmt: skip
        finally:
            os.close(fd)
    with _iproute(netns) as ns, _netlink(f"configure {ifname} in container {pid}"):
        index = ns.link_lookup(ifname=temp)[0]
        ns.link("set", index=index, ifname=ifname, address=mac)
        ns.addr("add", index=index, address=str(address), prefixlen=prefixlen)
        ns.link("set", index=index, state="up")
        if gateway is not None:
            with contextlib.suppress(Exception):
                ns.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=index)
    return mac


@_off_loop
def remove_endpoint(pid: int, ifname: str) -> None:
    """Delete ``ifname`` in the netns of ``pid`` (its veth peer on the host goes with it)."""
    netns = f"/proc/{pid}/ns/net"
    if not os.path.exists(netns):
        return
    with _iproute(netns) as ns, _netlink(f"disconnect {ifname}"):
        found = ns.link_lookup(ifname=ifname)
        if found:
            ns.link("del", index=found[0])
