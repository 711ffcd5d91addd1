"""IPAM as pure functions: docker's pools, no overlap with host routes, --subnet, --gateway,
--ip-range, --ip; bad input is one error naming the flag."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ipydock.engine.network import ipam
from ipydock.errors import AddressUnavailable, InvalidNetworkConfig


def nets(*texts: str) -> list[IPv4Network]:
    return [IPv4Network(t) for t in texts]


def test_pools_in_docker_order_skipping_what_the_host_routes() -> None:
    assert ipam.plan().subnet == IPv4Network("172.17.0.0/16")
    pool = ipam.plan(taken=nets("172.17.0.0/16", "172.18.5.0/24"))
    assert pool.subnet == IPv4Network("172.19.0.0/16")
    assert pool.gateway == IPv4Address("172.19.0.1")
    assert pool.ip_range == pool.subnet
    # every 172.x pool overlapped by one wide route: the 192.168 /20s come next
    assert ipam.plan(taken=nets("172.16.0.0/12")).subnet == IPv4Network("192.168.0.0/20")


def test_pools_run_out() -> None:
    with pytest.raises(AddressUnavailable, match="fully subnetted"):
        ipam.pick_subnet(nets("172.16.0.0/12", "192.168.0.0/16"))


def test_given_subnet_gateway_and_range() -> None:
    pool = ipam.plan("10.5.0.0/24", "10.5.0.254", "10.5.0.128/25")
    assert (str(pool.subnet), str(pool.gateway), str(pool.ip_range)) == (
        "10.5.0.0/24", "10.5.0.254", "10.5.0.128/25")  # fmt: skip
    assert ipam.allocate(pool, []) == IPv4Address("10.5.0.128")
    assert ipam.allocate(pool, [IPv4Address("10.5.0.128")]) == IPv4Address("10.5.0.129")


@pytest.mark.parametrize(
    ("args", "error", "text"),
    [
        (("10.5.0.0/33",), InvalidNetworkConfig, "--subnet"),
        (("nonsense",), InvalidNetworkConfig, "--subnet"),
        (("10.5.0.1/24",), InvalidNetworkConfig, "host bits"),
        (("fd00::/64",), InvalidNetworkConfig, "only IPv4"),
        (("10.5.0.0/24", "10.6.0.1"), InvalidNetworkConfig, "--gateway"),
        (("10.5.0.0/24", "10.5.0.0"), InvalidNetworkConfig, "--gateway"),
        (("10.5.0.0/24", "", "10.6.0.0/25"), InvalidNetworkConfig, "--ip-range"),
        (("", "10.5.0.1"), InvalidNetworkConfig, "give --subnet"),
    ],
)
def test_bad_pools(args: tuple[str, ...], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        ipam.plan(*args)


def test_a_subnet_overlapping_a_host_route_or_network_is_refused() -> None:
    with pytest.raises(AddressUnavailable, match="overlaps") as err:
        ipam.plan("192.0.2.128/25", taken=nets("192.0.2.0/24"), name="n1")
    assert err.value.network == "n1"


def test_addresses_lowest_free_never_gateway_network_or_broadcast() -> None:
    pool = ipam.plan("10.9.0.0/30")  # hosts .1 (gateway) and .2
    assert ipam.allocate(pool, []) == IPv4Address("10.9.0.2")
    with pytest.raises(AddressUnavailable, match="no available"):
        ipam.allocate(pool, [IPv4Address("10.9.0.2")])


def test_wanted_address() -> None:
    pool = ipam.plan("10.7.0.0/24")
    assert ipam.allocate(pool, [], "10.7.0.42") == IPv4Address("10.7.0.42")
    with pytest.raises(AddressUnavailable, match="already in use"):
        ipam.allocate(pool, [IPv4Address("10.7.0.42")], "10.7.0.42", name="n")
    for bad in ("10.8.0.2", "10.7.0.255", "10.7.0.0"):
        with pytest.raises(InvalidNetworkConfig, match="--ip"):
            ipam.allocate(pool, [], bad)
    with pytest.raises(AddressUnavailable, match="already in use"):
        ipam.allocate(pool, [], "10.7.0.1")  # the gateway's
