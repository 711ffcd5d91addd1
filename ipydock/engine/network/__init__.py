"""Container networking of the bundled engine (root: bridges, macvlan; rootless: slirp4netns).

::

    builtin.py   host and none (pre-defined), network ls/inspect rows for every network
    ipam.py      subnets from docker's pools (never over a host route), addresses (pure)
    bridge.py    the default bridge and user-defined ones: records, endpoints, /etc/hosts,
                 --link, connect/disconnect, check --repair
    netlink.py   bridges, veth pairs, addresses, routes through pyroute2 (no `ip`)
    firewall.py  iptables chains of our own: isolation, outbound NAT (MASQUERADE), DNAT of
                 published ports
    dns.py       the embedded resolver at 127.0.0.11 of user-defined networks (dnslib)
    slirp.py     rootless: slirp4netns for the default network, -p through its API
    ports.py     -p/-P: parsing, the host ports held, their DNAT rules (the kernel forwards)

A container's endpoints are wired by its supervisor between spawn and exec
(``engine/containers/network.py``) into the netns of its pid 1, and live exactly as long.
"""
