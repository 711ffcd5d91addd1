"""A small rtnetlink client for the paths a container start waits on: one plain socket,
messages encoded and decoded with pyroute2's classes, one request and its ack at a time.

pyroute2's ``IPRoute`` drives an asyncio loop of its own and dumps tables for lookups; opened
per call it costs tens of milliseconds on a busy host. A container start needs five requests
(a veth pair made straight into the container's netns with its name and MAC, the host end on
the bridge and up; the address, the link up and the default route inside), none of them a
dump; this makes them with one socket per namespace. Names are turned into indexes with
``if_nametoindex`` (an ioctl), never with a dump.

Every error comes back as :class:`~ipydock.errors.NetlinkFailure` carrying its errno.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from ipydock.errors import NetlinkFailure

__all__ = ["Rtnl", "in_netns"]

_NEWLINK, _DELLINK, _NEWADDR, _NEWROUTE = 16, 17, 20, 24
_IFF_UP = 1
_ERROR = 2


class Rtnl:
    """One NETLINK_ROUTE socket (of the netns it was opened in)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, msg: Any, kind: int, flags: int, what: str, ok: tuple[int, ...] = ()) -> int:
        """Send ``msg`` and read its ack; 0, or an errno listed in ``ok``."""
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

        self.seq += 1
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset < len(data):
                length, mtype, _, seq, _, code = struct.unpack_from("=IHHIIi", data, offset)
                offset += (length + 3) & ~3
                if mtype == _ERROR and seq == self.seq:
                    if code and -code not in ok:
                        raise NetlinkFailure(what, -code, os.strerror(-code))
                    return -code

    # -- links ---------------------------------------------------------------------------------

    def create_bridge(self, name: str, mtu: int, group: int = 0) -> None:
        """A bridge, up, in interface group ``group`` (an existing one is left as it is)."""
        from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        msg = ifinfmsg()
        msg["flags"] = msg["change"] = _IFF_UP
        msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", mtu), ("IFLA_GROUP", group),
                        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]  # fmt: skip
        self._request(msg, _NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"create bridge {name}",
                      ok=(errno.EEXIST,))  # fmt: skip

    def set_up(self, index: int, *, name: str = "", mac: str = "", group: int = -1) -> None:
        """Link ``index`` up (renamed to ``name``, with ``mac``, in interface group ``group``,
        when given)."""
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        msg = ifinfmsg()
        msg["index"] = index
        msg["flags"] = msg["change"] = _IFF_UP
        msg["attrs"] = ([("IFLA_IFNAME", name)] if name else []) + (
            [("IFLA_ADDRESS", mac)] if mac else []) + (
            [("IFLA_GROUP", group)] if group >= 0 else [])  # fmt: skip
        self._request(msg, _NEWLINK, 0, f"set link {index} up")

    def create_veth(
        self, host: str, master: int, peer: str, peer_mac: str, netns_fd: int, mtu: int
    ) -> None:
        """A veth pair: ``host`` on bridge ``master`` and up, ``peer`` (down, with its MAC)
        made right in the netns of ``netns_fd``: a crash leaves no pair on the host."""
        from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        other = {"attrs": [("IFLA_IFNAME", peer), ("IFLA_ADDRESS", peer_mac), ("IFLA_MTU", mtu),
                           ("IFLA_NET_NS_FD", netns_fd)]}  # fmt: skip
        msg = ifinfmsg()
        msg["flags"] = msg["change"] = _IFF_UP
        data = {"attrs": [("VETH_INFO_PEER", other)]}
        info = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", data)]}
        msg["attrs"] = [("IFLA_IFNAME", host), ("IFLA_MTU", mtu), ("IFLA_MASTER", master),
                        ("IFLA_LINKINFO", info)]  # fmt: skip
        self._request(msg, _NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"create veth {host}")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False if there was none."""
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        return self._request(msg, _DELLINK, 0, f"delete {name}", ok=(errno.ENODEV,)) == 0

    # -- addresses and routes ------------------------------------------------------------------

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        """An IPv4 address on link ``index`` (one it has already is fine)."""
        from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["prefixlen"] = prefixlen
        msg["index"] = index
        msg["attrs"] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        self._request(msg, _NEWADDR, NLM_F_CREATE | NLM_F_EXCL, f"add address {address}",
                      ok=(errno.EEXIST,))  # fmt: skip

    def add_default_route(self, gateway: str, index: int) -> None:
        """The default route via ``gateway`` on link ``index`` (unless there is one)."""
        from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        msg = rtmsg()
        msg["family"] = socket.AF_INET
        msg["table"] = 254  # main
        msg["proto"] = 3  # boot, as `ip route add`
        msg["scope"] = 0  # universe
        msg["type"] = 1  # unicast
        msg["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", index)]
        self._request(msg, _NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, f"route via {gateway}",
                      ok=(errno.EEXIST,))  # fmt: skip


@contextlib.contextmanager
def in_netns(pid: int) -> Iterator[Rtnl]:
    """An :class:`Rtnl` of the netns of ``pid``: this thread enters it only to open the
    socket and to read link indexes (``if_nametoindex`` asks the thread's netns), so the
    block runs inside it; it is back in its own netns afterwards, whatever happens."""
    from ipydock.engine.runtime.plan import CLONE_NEWNET
    from ipydock.engine.runtime.spawn import setns

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(theirs, CLONE_NEWNET)
        try:
            with Rtnl() as rtnl:
                yield rtnl
        finally:
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(theirs)


class _Encoder(Rtnl):
    """An :class:`Rtnl` that encodes its requests and sends nothing (:func:`warm`)."""

    def __init__(self) -> None:
        self.seq = 0

    def _request(self, msg: Any, kind: int, flags: int, what: str, ok: tuple[int, ...] = ()) -> int:
        msg.encode()
        return 0


def warm() -> None:
    """Encode one request of each kind :class:`Rtnl` sends, with made-up values: pyroute2
    compiles a message class's attribute tables on its first use in a process (~1 ms for a
    veth pair here), so a process that forks supervisors does it once for all of them."""
    enc = _Encoder()
    enc.create_bridge("warm0", 1500, 1)
    enc.set_up(1, name="warm1", mac="02:42:ac:11:00:02", group=1)
    enc.create_veth("warm2", 1, "warm3", "02:42:ac:11:00:02", 0, 1500)
    enc.delete_link("warm2")
    enc.add_address(1, "172.17.0.2", 16)
    enc.add_default_route("172.17.0.1", 1)
