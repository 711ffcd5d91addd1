"""The kernel side of bridge networks, through pyroute2 (netlink in-process, no ``ip``).

::

    host netns:  BRIDGE (gateway/prefix, up) ──master── VETH (up)
                                                           │ veth pair
    container netns (/proc/PID/ns/net):                 ethN (address, MAC, up) + default route

A container's netns is its pid 1's (a new one, made by the spawner): when pid 1 dies the netns
goes, its end of the veth with it, and the kernel deletes the host end too. So nothing of an
endpoint outlives its container, whatever kills it. Bridges live until ``network rm``.

Every pyroute2 ``NetlinkError`` is turned into :class:`~ipydock.errors.NetlinkFailure` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

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


@_off_loop
def host_networks() -> list[IPv4Network]:
    """Every IPv4 network the host routes or has an address in (not the default route): a new
    network's subnet must overlap none of them (docker0 and other engines' bridges included)."""
    found: list[IPv4Network] = []
    with _iproute() as ip:
        for route in ip.get_routes(family=2):
            dst = route.get("dst")
            if dst and route["dst_len"] > 0 and route.get("table") in (254, None):
                found.append(IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
        for addr in ip.get_addr(family=2):
            local = addr.get("address")
            if local and not local.startswith("127."):
                found.append(IPv4Network(f"{local}/{addr['prefixlen']}", strict=False))
    return found


@_off_loop
def ensure_bridge(name: str, gateway: IPv4Address, prefixlen: int, mtu: int = 1500) -> None:
    """The bridge with the gateway address, up; made if missing (idempotent)."""
    with _iproute() as ip, _netlink(f"create bridge {name}"):
        found = ip.link_lookup(ifname=name)
        if not found:
            try:
                ip.link("add", ifname=name, kind="bridge", mtu=mtu)
            except Exception as exc:  # another process made it meanwhile
                if getattr(exc, "code", 0) != errno.EEXIST:
                    raise
            found = ip.link_lookup(ifname=name)
        index = found[0]
        have = {a.get("address") for a in ip.get_addr(index=index, family=2)}
        if str(gateway) not in have:
            ip.addr("add", index=index, address=str(gateway), prefixlen=prefixlen)
        ip.link("set", index=index, state="up")


@_off_loop
def delete_link(name: str) -> bool:
    """Delete a link of the host by name; False if there was none."""
    with _iproute() as ip, _netlink(f"delete {name}"):
        found = ip.link_lookup(ifname=name)
        if not found:
            return False
        try:
            ip.link("del", index=found[0])
        except Exception as exc:
            if getattr(exc, "code", 0) != errno.ENODEV:
                raise
        return True


@_off_loop
def add_endpoint(
    pid: int, bridge: str, veth: str, ifname: str, address: IPv4Address, prefixlen: int,
    gateway: IPv4Address | None, mtu: int = 1500,
) -> str:  # fmt: skip
    """A veth pair from ``bridge`` into the netns of ``pid``, named ``ifname`` there, with
    ``address`` and (``gateway`` given) the default route; returns its MAC address."""
    mac = mac_for(address)
    peer = veth[:-1] + "p" if len(veth) >= 15 else veth + "p"
    netns = f"/proc/{pid}/ns/net"
    with _iproute() as ip, _netlink(f"connect {ifname} to {bridge}"):
        master = ip.link_lookup(ifname=bridge)
        if not master:
            raise NetlinkFailure(f"connect to {bridge}", errno.ENODEV, f"bridge {bridge} is gone "
                                 "(run `ipydock system check --repair`)")  # fmt: skip
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:  # the peer is made in the container's netns: a crash leaves no pair on the host
            ip.link("add", ifname=veth, kind="veth", mtu=mtu,
                    peer={"ifname": peer, "net_ns_fd": fd})  # fmt: skip
        finally:
            os.close(fd)
        try:
            host_end = ip.link_lookup(ifname=veth)[0]
            ip.link("set", index=host_end, master=master[0])
            ip.link("set", index=host_end, state="up")
        except BaseException:
            with contextlib.suppress(Exception):
                ip.link("del", index=ip.link_lookup(ifname=veth)[0])
            raise
    with _iproute(netns) as ns, _netlink(f"configure {ifname} in container {pid}"):
        index = ns.link_lookup(ifname=peer)[0]
        ns.link("set", index=index, ifname=ifname, address=mac)
        ns.addr("add", index=index, address=str(address), prefixlen=prefixlen)
        ns.link("set", index=index, state="up")
        if gateway is not None:
            with contextlib.suppress(Exception):  # a second network: the first one's stays
                ns.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=index)
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
