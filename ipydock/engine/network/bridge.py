"""Bridge networks: the default ``bridge`` and user-defined ones, their endpoints and names.

::

    ROOT/networks.json  user-defined networks (id, name, subnet, gateway, labels, ...) and the
                        networks a container was connected to after its creation; lock
                        ROOT/networks.lock
    RUN/<bridge>.json   endpoints of one bridge: container, address, MAC, its pid 1 (and start
                        time); lock RUN/<bridge>.lock. RUN is /run/ipydock/net: tmpfs, host-wide,
                        gone at reboot with the kernel objects it describes
    kernel              one Linux bridge per network (the default one: ``ipydock0``, shared by
                        every store of the host, as docker0 is by one daemon); one veth pair per
                        endpoint, whose container end lives in the container's own netns

An endpoint's life is its container's pid 1: the supervisor attaches it after spawning pid 1
(paused) and before exec; when pid 1 dies its netns goes, and the veth with it. An endpoint
whose pid 1 is gone (pid and start time checked) is dropped by the next reader, so a SIGKILL at
any point leaves no address taken. Names: on a user-defined network each container's
``/etc/hosts`` lists every other member (name, aliases, short ID, hostname); it is rewritten in
place (it is bind-mounted) whenever a member comes or goes, so later joiners resolve at once.
The default bridge has no names, only ``--link``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ipydock.engine.network import firewall, ipam
from ipydock.engine.store.lock import StoreLock
from ipydock.errors import (
    AddressUnavailable,
    InvalidNetworkConfig,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    NotSupported,
    UsageError,
)

__all__ = ["DEFAULT", "Networks", "is_bridged", "run_dir"]

DEFAULT = "bridge"
_RULES = 3  # the rule set of firewall.py a bridge has (3: one set for all, the bridge in a group)
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_HOSTS = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)


def run_dir() -> str:
    """Host-wide runtime state of bridges (``$IPYDOCK_NET_RUN``, else /run/ipydock/net)."""
    return os.environ.get("IPYDOCK_NET_RUN", "/run/ipydock/net")


def default_bridge() -> str:
    """The default network's Linux bridge (``$IPYDOCK_DEFAULT_BRIDGE``, else ipydock0)."""
    return os.environ.get("IPYDOCK_DEFAULT_BRIDGE", "ipydock0")


def _link_prefix() -> str:
    """Names of user-defined bridges and of veths: ``br-ID`` and ``vethHASH`` as docker's,
    or ``$IPYDOCK_LINK_PREFIX-ID`` / ``$IPYDOCK_LINK_PREFIXvHASH`` (tests use their own)."""
    return os.environ.get("IPYDOCK_LINK_PREFIX", "")


def is_bridged(mode: str) -> bool:
    """A NetworkMode the bridge layer wires (everything but host, none, container:…)."""
    return mode not in ("host", "none") and not mode.startswith("container:")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _link_exists(name: str) -> bool:
    """The host has a link of that name (sysfs: no netlink round trip)."""
    return os.path.exists(f"/sys/class/net/{name}")


def _alive(pid: int, start: int) -> bool:
    """pid 1 of an endpoint still runs: same start time (not a recycled pid), not a zombie
    (its netns is gone already)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = data[data.rindex(b")") + 2 :].split()
    return bool(pid) and fields[0] not in (b"Z", b"X") and int(fields[19]) == start


def _read_json(path: str, empty: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path) as f:
            return dict(json.load(f))
    except FileNotFoundError:
        return empty


def _write_json(path: str, data: dict[str, Any]) -> None:
    from ipydock.engine.store.fsutil import disk_errors

    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with disk_errors(path):  # a full disk: NoSpace, the old file kept
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class _RunLock(StoreLock):
    """A lock file in the run dir, which is made when first locked (reads need neither)."""

    def __enter__(self) -> StoreLock:
        os.makedirs(run_dir(), exist_ok=True)
        return super().__enter__()


class BridgeState:
    """The endpoints of one Linux bridge, host-wide (every store that uses it)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.path = os.path.join(run_dir(), device + ".json")
        self.lock = _RunLock(os.path.join(run_dir(), device + ".lock"))

    def read(self) -> dict[str, Any]:
        """The state, endpoints whose pid 1 is gone left out."""
        data = _read_json(self.path, {"Endpoints": {}})
        data["Endpoints"] = {k: e for k, e in data.get("Endpoints", {}).items()
                             if _alive(e["Pid"], e["Start"])}  # fmt: skip
        return data

    def write(self, data: dict[str, Any]) -> None:
        _write_json(self.path, data)

    def forget(self) -> None:
        for path in (self.path, os.path.join(run_dir(), self.device + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class Networks:
    """The bridge networks of one store (plus the host's default bridge)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, "networks.json")
        self.lock = StoreLock(os.path.join(root, "networks.lock"))

    # -- records -------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        data = _read_json(self.path, {})
        data.setdefault("Networks", {})
        data.setdefault("Connected", {})
        gone = [c for c in data["Connected"] if not self._container_exists(c)]
        for cid in gone:
            del data["Connected"][cid]
        return data

    def _save(self, data: dict[str, Any]) -> None:
        os.makedirs(self.root, exist_ok=True)
        _write_json(self.path, data)

    def _container_exists(self, cid: str) -> bool:
        return os.path.isdir(os.path.join(self.root, "containers", cid))

    def default(self, *, create: bool = False) -> dict[str, Any] | None:
        """The default ``bridge`` network: the host's default bridge, made on first use (root's:
        an unprivileged user has none)."""
        if os.geteuid() != 0:
            return None
        device = default_bridge()
        state = BridgeState(device)
        with state.lock if create else contextlib.nullcontext():
            data = state.read()
            if "Subnet" not in data and create:
                from ipydock.engine.network import netlink

                with self._host_lock():
                    pool = ipam.plan(taken=netlink.host_networks(), name=DEFAULT)
                    _make_bridge(device, pool.gateway, pool.subnet.prefixlen)
                data.update(Subnet=str(pool.subnet), Gateway=str(pool.gateway),
                            IPRange=str(pool.ip_range), Created=_now(),
                            Rules=_RULES)  # fmt: skip
                state.write(data)
            elif "Subnet" in data and create and not _link_exists(device):
                net = IPv4Network(data["Subnet"])
                _make_bridge(device, IPv4Address(data["Gateway"]), net.prefixlen)
            if create and "Subnet" in data and data.get("Rules") != _RULES:
                # a default bridge made by an older ipydock (rules of its own, or none): into
                # the group, our rules whole, its own rules out
                net = IPv4Network(data["Subnet"])
                with self._host_lock():
                    _make_bridge(device, IPv4Address(data["Gateway"]), net.prefixlen)
                    firewall.add(device)
                data["Rules"] = _RULES
                state.write(data)
        if "Subnet" not in data:
            return None
        return {"Id": hashlib.sha256(f"ipydock bridge {device}".encode()).hexdigest(),
                "Name": DEFAULT, "Driver": "bridge", "Bridge": device, "Internal": False,
                "Labels": {}, "Options": {"com.docker.network.bridge.default_bridge": "true",
                                          "com.docker.network.bridge.name": device},
                "Subnet": data["Subnet"], "Gateway": data["Gateway"],
                "IPRange": data["IPRange"], "Created": data["Created"]}  # fmt: skip

    def _host_lock(self) -> StoreLock:
        return _RunLock(os.path.join(run_dir(), "ipam.lock"))

    def all(self) -> list[dict[str, Any]]:
        """Every bridge network: the default one (once made), then user-defined by name."""
        found = self.default()
        user = sorted(self._load()["Networks"].values(), key=lambda n: n["Name"])
        return ([found] if found else []) + user

    def find(self, ref: str) -> dict[str, Any]:
        if ref == DEFAULT:
            found = self.default(create=True)
            if found is None:
                raise rootless_refusal("the default bridge network")
            return found
        nets = self.all()
        for net in nets:
            if net["Name"] == ref or net["Id"] == ref:
                return net
        matches = [n for n in nets if n["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NetworkNotFound(ref)

    def endpoints(self, net: dict[str, Any]) -> dict[str, Any]:
        """The live endpoints of ``net`` (container id -> endpoint)."""
        eps = BridgeState(net["Bridge"]).read()["Endpoints"]
        return {e["Container"]: e for e in eps.values() if e["Network"] == net["Id"]}

    # -- create, rm, prune ---------------------------------------------------------------------

    def create(
        self, name: str, *, driver: str = "bridge", subnet: str | None = None,
        gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
        labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        if driver == "overlay":
            hint = "overlay networks span hosts: use a Docker Swarm (`%ipydock engine docker`)"
            raise NotSupported("network create -d overlay", "bundled", hint)
        if driver not in ("bridge", "macvlan"):
            raise InvalidNetworkConfig("--driver", f"{driver!r}: the bundled engine has the "
                                       "bridge and macvlan drivers (host and none are "
                                       "pre-defined)")  # fmt: skip
        opts = dict(options or {})
        parent = _macvlan_parent(opts) if driver == "macvlan" else ""
        if not _NAME.fullmatch(name):
            raise InvalidNetworkConfig("name", f"{name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        if name in (DEFAULT, "host", "none"):
            raise UsageError(f"{name} is a pre-defined network and cannot be created")
        from ipydock.engine.network import netlink

        with self.lock:
            data = self._load()
            if any(n["Name"] == name for n in data["Networks"].values()):
                raise NetworkExists(name)
            with self._host_lock():
                # a macvlan network usually is the parent's own LAN: only other networks count
                taken = [] if parent else netlink.host_networks()
                taken += [IPv4Network(n["Subnet"]) for n in data["Networks"].values()]
                pool = ipam.plan(subnet or "", gateway or "", ip_range or "", taken=taken,
                                 name=name)  # fmt: skip
                nid = secrets.token_hex(32)
                device = (f"{_link_prefix()}-{nid}" if _link_prefix() else f"br-{nid}")[:15]
                net = {"Id": nid, "Name": name, "Driver": "bridge", "Bridge": device,
                       "Internal": internal, "Labels": dict(labels or {}),
                       "Options": {"com.docker.network.bridge.name": device},
                       "Subnet": str(pool.subnet), "Gateway": str(pool.gateway),
                       "IPRange": str(pool.ip_range), "Created": _now(),
                       # docker's inspect shows a gateway it chose only with its subnet
                       "ShowGateway": bool(gateway or not subnet), "Rules": _RULES}  # fmt: skip
                if parent:  # no bridge: the name only keys the endpoints' state file
                    net.update(Driver="macvlan", Bridge=f"mv-{nid[:12]}",
                               Options={"parent": parent, **opts})  # fmt: skip
                    data["Networks"][nid] = net
                    self._save(data)
                    return net
                # the record first: a crash before the bridge leaves a network whose bridge
                # is made at its first use (or by check --repair), never a bridge nobody knows
                data["Networks"][nid] = net
                self._save(data)
                try:
                    _make_bridge(device, pool.gateway, pool.subnet.prefixlen, internal)
                except BaseException:
                    _delete_bridge(device)
                    del data["Networks"][nid]
                    self._save(data)
                    raise
            return net

    def remove(self, ref: str) -> str:
        with self.lock:
            data = self._load()
            net = self.find(ref)
            if net["Name"] == DEFAULT:
                raise UsageError(f"{DEFAULT} is a pre-defined network and cannot be removed")
            state = BridgeState(net["Bridge"])
            with state.lock:
                active = self.endpoints(net)
                if active:
                    raise NetworkInUse(net["Name"], sorted(active))
                if net["Driver"] == "bridge":
                    if net.get("Rules") != _RULES:  # an older ipydock's: rules of its own
                        firewall.purge(net["Bridge"])
                    _delete_bridge(net["Bridge"])
                state.forget()
            del data["Networks"][net["Id"]]
            for nets in data["Connected"].values():
                nets.pop(net["Id"], None)
            self._save(data)
            return str(net["Id"])

    def prune(self) -> list[str]:
        """Remove every user-defined network without a live endpoint; their names."""
        removed = []
        for net in self._load()["Networks"].values():
            with contextlib.suppress(NetworkInUse, NetworkNotFound):
                self.remove(net["Id"])
                removed.append(str(net["Name"]))
        return sorted(removed)

    def check_run(self, mode: str, ip: str | None, aliases: tuple[str, ...]) -> None:
        """``run``/``create`` flags checked before anything is made, as docker's daemon does."""
        user_defined = is_bridged(mode) and mode not in ("default", DEFAULT)
        if ip and not user_defined:
            raise InvalidNetworkConfig("--ip", "user specified IP address is supported on "
                                       "user defined networks only")  # fmt: skip
        if aliases and not user_defined:
            raise InvalidNetworkConfig("--network-alias", "network-scoped alias is supported "
                                       "only for containers in user defined networks")  # fmt: skip
        if not user_defined:
            return
        if os.geteuid() != 0:
            raise rootless_refusal(f"run --network {mode}")
        net = self.find(mode)
        if ip:
            pool = ipam.Pool(IPv4Network(net["Subnet"]), IPv4Address(net["Gateway"]),
                             IPv4Network(net["IPRange"]))  # fmt: skip
            ipam.allocate(pool, (), ip, name=net["Name"]) if ip != net["Gateway"] else None
            if ip == net["Gateway"]:
                raise AddressUnavailable(net["Name"], f"Address already in use: {ip}")

    def check(self, *, repair: bool = False) -> tuple[list[str], list[str]]:
        """(problems, repaired): missing bridges (made again) and rules (put back), addresses
        held and ports forwarded for containers whose pid 1 is gone (freed, removed)."""
        from ipydock.engine.network import netlink

        problems: list[str] = []
        repaired: list[str] = []
        host = netlink.link_names()
        for net in self.all():
            if net["Driver"] == "macvlan":
                if net["Options"]["parent"] not in host:
                    problems.append(f"network {net['Name']}: its parent interface "
                                    f"{net['Options']['parent']} is gone")  # fmt: skip
            elif net["Bridge"] not in host:
                problems.append(f"network {net['Name']}: bridge {net['Bridge']} is missing")
                if repair:
                    _make_bridge(
                        net["Bridge"],
                        IPv4Address(net["Gateway"]),
                        IPv4Network(net["Subnet"]).prefixlen,
                        bool(net["Internal"]),
                    )
                    repaired.append(f"made bridge {net['Bridge']} of network {net['Name']}")
            internal = bool(net.get("Internal"))
            if net["Driver"] == "bridge" and not (_in_group(net["Bridge"], internal)
                                                  and firewall.has()):  # fmt: skip
                problems.append(f"network {net['Name']}: isolation rules of {net['Bridge']} "
                                "are missing")  # fmt: skip
                if repair:
                    with self._host_lock():
                        _make_bridge(
                            net["Bridge"],
                            IPv4Address(net["Gateway"]),
                            IPv4Network(net["Subnet"]).prefixlen,
                            internal,
                        )
                        firewall.add(net["Bridge"], internal)
                    repaired.append(f"put back the isolation rules of network {net['Name']}")
            state = BridgeState(net["Bridge"])
            if not os.path.exists(state.path):
                continue
            with state.lock if repair else contextlib.nullcontext():
                raw = _read_json(state.path, {"Endpoints": {}})
                live = state.read()
                stale = {k: e for k, e in raw.get("Endpoints", {}).items()
                         if k not in live["Endpoints"] and e["Network"] == net["Id"]}  # fmt: skip
                for ep in stale.values():
                    problems.append(f"network {net['Name']}: {ep['IPv4']} is held by "
                                    f"{ep['Name']}, which is not running")  # fmt: skip
                if repair and stale:
                    for key, ep in stale.items():
                        raw["Endpoints"].pop(key)
                        if ep["Veth"]:
                            netlink.delete_link(ep["Veth"])
                        repaired.append(f"freed {ep['IPv4']} on network {net['Name']}")
                    state.write(raw)
        if firewall.orphaned():
            problems.append("ipydock's packet rules are there though none of its bridges is")
            if repair:
                firewall.sweep()
                repaired.append("took out ipydock's packet rules (no bridge of ipydock is left)")
        for rule in firewall.stale_ports(_alive):
            port = rule.split("--dport ", 1)[1].split()[0]
            problems.append(f"published port {port} of a container that is not running is "
                            "still forwarded")  # fmt: skip
            if repair:
                firewall.remove_ports([rule])
                repaired.append(f"removed the forwarding of published port {port}")
        return problems, repaired

    # -- membership ----------------------------------------------------------------------------

    def members(self, cid: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The networks ``cid`` is on (network id -> endpoint config: Aliases, IPv4Address):
        its ``--network`` (unless disconnected) and what ``network connect`` added."""
        data = self._load()
        if cid in data["Connected"]:
            return dict(data["Connected"][cid])
        mode = config["HostConfig"].get("NetworkMode") or "default"
        if not is_bridged(mode):
            return {}
        net = self.find(DEFAULT if mode == "default" else mode)
        wanted = (config.get("NetworkingConfig") or {}).get("EndpointsConfig", {}).get(mode, {})
        return {net["Id"]: {"Aliases": list(wanted.get("Aliases") or []),
                            "IPv4Address": wanted.get("IPv4Address", "")}}  # fmt: skip

    def _set_members(self, cid: str, members: dict[str, dict[str, Any]]) -> None:
        data = self._load()
        data["Connected"][cid] = members
        self._save(data)

    # -- endpoints -----------------------------------------------------------------------------

    def attach(self, cid: str, config: dict[str, Any], pid: int) -> list[dict[str, Any]]:
        """Wire every network of ``cid`` into the netns of its pid 1 ``pid``; then its
        /etc/hosts and its peers'. On failure, what was made is undone."""
        made: list[dict[str, Any]] = []
        try:
            for index, (nid, want) in enumerate(self.members(cid, config).items()):
                made.append(self._attach_one(cid, config, pid, nid, want, f"eth{index}"))
        except BaseException:
            self.release(cid, pid)
            raise
        self.write_hosts(cid, config)
        return made

    def _attach_one(
        self, cid: str, config: dict[str, Any], pid: int, nid: str, want: dict[str, Any],
        ifname: str,
    ) -> dict[str, Any]:  # fmt: skip
        from ipydock.engine.containers.records import process_start
        from ipydock.engine.network import netlink

        net = self.find(nid) if nid != self._default_id() else self.find(DEFAULT)
        pool = ipam.Pool(IPv4Network(net["Subnet"]), IPv4Address(net["Gateway"]),
                         IPv4Network(net["IPRange"]))  # fmt: skip
        state = BridgeState(net["Bridge"])
        with state.lock:
            data = state.read()
            eps = data["Endpoints"]
            key = f"{cid}:{net['Id']}"
            if key in eps:
                raise AddressUnavailable(net["Name"], f"container {cid[:12]} is already "
                                         "attached to it")  # fmt: skip
            used = {IPv4Address(e["IPv4"]) for e in eps.values()}
            addr = ipam.allocate(pool, used, want.get("IPv4Address") or "", name=net["Name"])
            veth = self._veth_name(cid, net["Id"])
            gw = None if net["Internal"] else pool.gateway
            if net["Driver"] == "macvlan":
                veth = ""  # nothing on the host: the link lives in the container's netns
                mac = netlink.add_macvlan(pid, net["Options"]["parent"], ifname, addr,
                                          pool.subnet.prefixlen, gw)  # fmt: skip
            else:
                if net["Name"] != DEFAULT and not _link_exists(net["Bridge"]):
                    _make_bridge(
                        net["Bridge"], pool.gateway, pool.subnet.prefixlen, bool(net["Internal"])
                    )
                mac = netlink.add_endpoint(pid, net["Bridge"], veth, ifname, addr,
                                           pool.subnet.prefixlen, gw)  # fmt: skip
            name = config["Name"].lstrip("/")
            ep = {"Container": cid, "Name": name, "Network": net["Id"], "IPv4": str(addr),
                  "PrefixLen": pool.subnet.prefixlen, "MAC": mac, "IfName": ifname,
                  "Veth": veth, "Pid": pid, "Start": process_start(pid) or 0,
                  "Hostname": config["Config"].get("Hostname", ""),
                  "Aliases": list(want.get("Aliases") or []), "Root": self.root}  # fmt: skip
            eps[key] = ep
            data["Endpoints"] = eps
            state.write(data)
            return ep

    def attach_build(self, bid: str, pid: int, hostname: str) -> dict[str, Any]:
        """A build's RUN container (pid 1 ``pid``, paused) on the default bridge, as docker's
        classic builder runs RUN steps; :meth:`release` frees it."""
        config = {"Name": f"/build-{bid[:12]}", "HostConfig": {"NetworkMode": "default"},
                  "Config": {"Hostname": hostname}}  # fmt: skip
        return self._attach_one(bid, config, pid, self._default_id(), {}, "eth0")

    def _default_id(self) -> str:
        return hashlib.sha256(f"ipydock bridge {default_bridge()}".encode()).hexdigest()

    @staticmethod
    def _veth_name(cid: str, nid: str) -> str:
        tag = hashlib.sha256(f"{cid}:{nid}".encode()).hexdigest()
        prefix = _link_prefix()
        return f"{prefix}v{tag}"[:15] if prefix else f"veth{tag}"[:11]

    def release(self, cid: str, pid: int = 0, *, keep_links: bool = False) -> list[str]:
        """Forget the endpoints of ``cid`` and delete their veths now (the kernel would, but
        later: a netns is torn down asynchronously); rewrite the peers' hosts files. With
        ``keep_links``, return the veths instead, for the caller to delete with
        :func:`delete_links` off its starter's clock (deleting one waits for RCU grace
        periods: 1-20 ms here)."""
        from ipydock.engine.network import netlink

        kept: list[str] = []
        for net in self.all():
            state = BridgeState(net["Bridge"])
            with state.lock:
                data = _read_json(state.path, {"Endpoints": {}})
                key = f"{cid}:{net['Id']}"
                if key not in data.get("Endpoints", {}):
                    continue
                ep = data["Endpoints"].pop(key)
                if ep["Veth"] and keep_links:
                    kept.append(ep["Veth"])
                elif ep["Veth"]:
                    netlink.delete_link(ep["Veth"])
                state.write(data)
            self._rewrite_peers(net)
        return kept

    # -- names ---------------------------------------------------------------------------------

    def _peers(self, net: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in self.endpoints(net).values() if e.get("Root") == self.root]

    def _hosts_text(self, cid: str, own: list[dict[str, Any]], links: list[str]) -> str:
        lines = [_HOSTS]
        for ep in own:
            names = [ep["Hostname"]] if ep.get("Hostname") else []
            lines.append(f"{ep['IPv4']}\t{' '.join(names)}\n")
        for ep in own:
            net = self.find(ep["Network"]) if ep["Network"] != self._default_id() else None
            if net is None:
                continue
            for peer in self._peers(net):
                if peer["Container"] == cid:
                    continue
                names = [peer["Name"], *peer["Aliases"], peer["Container"][:12]]
                if peer.get("Hostname") and peer["Hostname"] not in names:
                    names.append(peer["Hostname"])
                lines.append(f"{peer['IPv4']}\t{' '.join(names)}\n")
        lines.extend(links)
        return "".join(lines)

    def write_hosts(self, cid: str, config: dict[str, Any]) -> None:
        """The container's /etc/hosts (in place: it is bind-mounted), and its peers'."""
        own = [e for net in self.all() for e in self.endpoints(net).values()
               if e["Container"] == cid]  # fmt: skip
        if not own:
            return
        links = self._link_lines(config)
        _write_in_place(os.path.join(self.root, "containers", cid, "hosts"),
                        self._hosts_text(cid, own, links))  # fmt: skip
        for ep in own:
            if ep["Network"] != self._default_id():
                self._rewrite_peers(self.find(ep["Network"]), skip=cid)

    def _rewrite_peers(self, net: dict[str, Any], skip: str = "") -> None:
        if net["Name"] == DEFAULT:
            return
        for peer in self._peers(net):
            if peer["Container"] == skip:
                continue
            path = os.path.join(self.root, "containers", peer["Container"], "hosts")
            own = [e for n in self.all() for e in self.endpoints(n).values()
                   if e["Container"] == peer["Container"]]  # fmt: skip
            links = self._link_lines(_config_of(self.root, peer["Container"]))
            with contextlib.suppress(FileNotFoundError):
                _write_in_place(path, self._hosts_text(peer["Container"], own, links))

    def _link_lines(self, config: dict[str, Any] | None) -> list[str]:
        out = []
        for target, alias in link_targets(config):
            ep = self._default_endpoint(target)
            if ep is not None:
                out.append(f"{ep['IPv4']}\t{alias} {ep['Hostname']} {ep['Name']}\n")
        return out

    def _default_endpoint(self, name: str) -> dict[str, Any] | None:
        net = self.default()
        if net is None:
            return None
        for ep in self.endpoints(net).values():
            if ep.get("Root") == self.root and name in (ep["Name"], ep["Container"]):
                return ep
        return None

    def link_env(self, config: dict[str, Any]) -> list[str]:
        """Docker's legacy ``--link`` variables (``ALIAS_PORT_80_TCP_ADDR=…``) of the linked
        containers' exposed ports, read at start."""
        env: list[str] = []
        for target, alias in link_targets(config):
            ep = self._default_endpoint(target)
            if ep is None:
                raise NetworkNotFound(f"{target} (--link: the linked container is not running "
                                      "on the default bridge)")  # fmt: skip
            other = _config_of(self.root, ep["Container"]) or {}
            prefix = re.sub(r"[^A-Z0-9_]", "_", alias.upper())
            env.append(f"{prefix}_NAME=/{config['Name'].lstrip('/')}/{alias}")
            for port in sorted((other.get("Config") or {}).get("ExposedPorts") or {}):
                number, _, proto = port.partition("/")
                proto = proto or "tcp"
                base = f"{prefix}_PORT_{number}_{proto.upper()}"
                env += [f"{base}={proto}://{ep['IPv4']}:{number}", f"{base}_ADDR={ep['IPv4']}",
                        f"{base}_PORT={number}", f"{base}_PROTO={proto}"]  # fmt: skip
            ports = sorted((other.get("Config") or {}).get("ExposedPorts") or {})
            if ports:
                number, _, proto = ports[0].partition("/")
                env.append(f"{prefix}_PORT={proto or 'tcp'}://{ep['IPv4']}:{number}")
        return env

    # -- live connect / disconnect -------------------------------------------------------------

    def connect(
        self, ref: str, cid: str, config: dict[str, Any], pid: int, *,
        aliases: tuple[str, ...] = (), ip: str = "",
    ) -> None:  # fmt: skip
        net = self.find(ref)
        with self.lock:
            members = self.members(cid, config)
            if net["Id"] in members:
                raise AddressUnavailable(net["Name"], f"endpoint with name "
                                         f"{config['Name'].lstrip('/')} already exists in "
                                         f"network {net['Name']}")  # fmt: skip
            want = {"Aliases": list(aliases), "IPv4Address": ip}
            if pid:
                ifname = f"eth{_next_index(self, cid)}"
                self._attach_one(cid, config, pid, net["Id"], want, ifname)
            members[net["Id"]] = want
            self._set_members(cid, members)
        if pid:
            self.write_hosts(cid, config)

    def disconnect(self, ref: str, cid: str, config: dict[str, Any], pid: int) -> None:
        from ipydock.engine.network import netlink

        net = self.find(ref)
        with self.lock:
            members = self.members(cid, config)
            if net["Id"] not in members:
                raise UsageError(f"container {cid[:12]} is not connected to network "
                                 f"{net['Name']}")  # fmt: skip
            ep = self.endpoints(net).get(cid)
            if ep is not None and pid:
                netlink.remove_endpoint(pid, ep["IfName"])
            state = BridgeState(net["Bridge"])
            with state.lock:
                data = state.read()
                data["Endpoints"].pop(f"{cid}:{net['Id']}", None)
                state.write(data)
            del members[net["Id"]]
            self._set_members(cid, members)
        self._rewrite_peers(net)
        if pid:
            self.write_hosts(cid, config)


def _macvlan_parent(opts: dict[str, str]) -> str:
    """``-o parent=IF`` of a macvlan network: an interface the host has."""
    from ipydock.engine.network import netlink

    parent = opts.pop("parent", "")
    if not parent:
        raise InvalidNetworkConfig("-o parent", "a macvlan network needs its parent "
                                   "interface: -o parent=IF (see `ip link`)")  # fmt: skip
    if parent not in netlink.link_names():
        raise InvalidNetworkConfig("-o parent", f"-o parent={parent}: the host has no "
                                   "interface of that name (see `ip link`)")  # fmt: skip
    return parent


def _next_index(nets: Networks, cid: str) -> int:
    used = {e["IfName"] for n in nets.all() for e in nets.endpoints(n).values()
            if e["Container"] == cid}  # fmt: skip
    index = 0
    while f"eth{index}" in used:
        index += 1
    return index


def link_targets(config: dict[str, Any] | None) -> Iterator[tuple[str, str]]:
    """(container name, alias) of each ``--link name[:alias]``."""
    for item in ((config or {}).get("HostConfig") or {}).get("Links") or []:
        target, _, alias = item.partition(":")
        yield target.lstrip("/"), (alias or target).lstrip("/")


def _config_of(root: str, cid: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(root, "containers", cid, "config.json")) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return None


def _write_in_place(path: str, text: str) -> None:
    """Rewrite a bind-mounted file keeping its inode (a rename would not show inside)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    finally:
        os.close(fd)


def rootless_refusal(operation: str) -> NotSupported:
    hint = ("user-defined networks need root; rootless containers use the default network "
            "(slirp4netns: the way out, and -p above 1024) or --network host")  # fmt: skip
    return NotSupported(operation, "bundled", hint)


def drop_default_bridge() -> bool:
    """Remove the host's default bridge if no container uses it (as deleting docker0 with the
    daemon stopped); True if it went. It is made again on the next use."""
    state = BridgeState(default_bridge())
    if not os.path.exists(state.path):
        firewall.purge(state.device)
        return _delete_bridge(state.device)
    with state.lock:
        data = state.read()
        if data["Endpoints"]:
            return False
        if data.get("Rules") != _RULES:
            firewall.purge(state.device)
        _delete_bridge(state.device)
        state.forget()
    return True


def _make_bridge(device: str, gateway: IPv4Address, prefixlen: int, internal: bool = False) -> None:
    """A bridge of ours (made if missing, put in its group), our rules in place first."""
    from ipydock.engine.network import netlink

    with firewall.making(device, internal):
        netlink.ensure_bridge(device, gateway, prefixlen, group=firewall.group(internal))


def _delete_bridge(device: str) -> bool:
    """Delete a bridge of ours; our rules go after the last one. False if it was not there."""
    from ipydock.engine.network import netlink

    with firewall.removing():
        return netlink.delete_link(device)


def _in_group(device: str, internal: bool) -> bool:
    try:
        with open(f"/sys/class/net/{device}/netdev_group") as f:
            return int(f.read()) == firewall.group(internal)
    except (OSError, ValueError):
        return False
