"""IP address management: which subnet a new network gets, which address an endpoint gets.

Pure functions on :mod:`ipaddress` values; the caller (``networks.Networks``) holds the store's
lock and passes in everything taken: the host's routes (docker's own bridges included), the
other networks' subnets, the addresses of live endpoints. Docker's rules:

- a network without ``--subnet`` gets the first free /16 of 172.17.0.0/16 … 172.31.0.0/16, then
  the /20s of 192.168.0.0/16; a pool subnet is free when it overlaps no host route and no other
  network;
- the gateway is the first host address unless ``--gateway`` says otherwise;
- endpoint addresses come from ``--ip-range`` (or the whole subnet), lowest free first, never
  the network, broadcast or gateway address; ``--ip`` must lie in the subnet and be free.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ipydock.errors import AddressUnavailable, InvalidNetworkConfig

__all__ = ["Pool", "allocate", "default_pools", "pick_subnet", "plan"]


def default_pools() -> Iterator[IPv4Network]:
    """Docker's default address pools, in the order it uses them."""
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def pick_subnet(taken: Iterable[IPv4Network], pools: Iterable[IPv4Network] = ()) -> IPv4Network:
    """The first pool subnet that overlaps nothing in ``taken``."""
    busy = list(taken)
    for net in pools or default_pools():
        if not any(net.overlaps(t) for t in busy):
            return net
    raise AddressUnavailable("(new)", "all predefined address pools have been fully subnetted "
                             "(remove unused networks, or give --subnet)")  # fmt: skip


@dataclass(frozen=True)
class Pool:
    """One network's IPAM config: subnet, gateway, and the range endpoints come from."""

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network


def _network(field: str, text: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        why = f"{text!r} is not an IPv4 CIDR such as 10.5.0.0/24"
        raise InvalidNetworkConfig(field, why) from exc
    if not isinstance(net, IPv4Network):
        raise InvalidNetworkConfig(field, f"{text}: only IPv4 is supported by the bundled engine")
    if str(net) != text and "/" in text:
        raise InvalidNetworkConfig(field, f"{text} has host bits set (use {net})")
    if net.prefixlen > 30:
        raise InvalidNetworkConfig(field, f"{text} is too small (at most /30)")
    return net


def _address(field: str, text: str) -> IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidNetworkConfig(field, f"{text!r} is not an IPv4 address") from exc
    if not isinstance(addr, IPv4Address):
        raise InvalidNetworkConfig(field, f"{text}: only IPv4 is supported by the bundled engine")
    return addr


def plan(
    subnet: str = "", gateway: str = "", ip_range: str = "", *, taken: Iterable[IPv4Network] = (),
    name: str = "(new)",
) -> Pool:  # fmt: skip
    """The pool for a new network: given subnet (checked against ``taken``) or a free one."""
    busy = list(taken)
    if not subnet and (gateway or ip_range):
        raise InvalidNetworkConfig("--gateway/--ip-range", "give --subnet with them")
    if subnet:
        net = _network("--subnet", subnet)
        clash = next((t for t in busy if net.overlaps(t)), None)
        if clash is not None:
            raise AddressUnavailable(name, f"Pool overlaps with other one on this address space "
                                     f"({net} overlaps {clash})")  # fmt: skip
    else:
        net = pick_subnet(busy)
    rng = _network("--ip-range", ip_range) if ip_range else net
    if not rng.subnet_of(net):
        raise InvalidNetworkConfig("--ip-range", f"{rng} is not inside the subnet {net}")
    gw = _address("--gateway", gateway) if gateway else net.network_address + 1
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise InvalidNetworkConfig("--gateway", f"{gw} is not a host address of {net}")
    return Pool(net, gw, rng)


def allocate(
    pool: Pool, used: Iterable[IPv4Address], wanted: str = "", *, name: str = ""
) -> IPv4Address:
    """An address for a new endpoint: ``wanted`` (``--ip``) if free, else the lowest free one."""
    busy = set(used) | {pool.gateway}
    reserved = {pool.subnet.network_address, pool.subnet.broadcast_address}
    if wanted:
        addr = _address("--ip", wanted)
        if addr not in pool.subnet or addr in reserved:
            raise InvalidNetworkConfig("--ip", f"{addr} is not a host address of {pool.subnet} "
                                       f"(network {name})")  # fmt: skip
        if addr in busy:
            raise AddressUnavailable(name, f"Address already in use: {addr}")
        return addr
    for addr in pool.ip_range:
        if addr not in busy and addr not in reserved:
            return addr
    raise AddressUnavailable(name, f"no available IPv4 addresses in {pool.ip_range}")
