"""Packet rules of ipydock's own chains: isolation, outbound NAT, published ports (DNAT).

Every bridge of ours is in one of two interface groups (``IFLA_GROUP``, set when it is made):
``GROUP`` (with a way out) or ``GROUP_INTERNAL`` (``--internal``). The rules match those groups,
not bridge names or subnets, so they are the same for every network: they are put in when the
first bridge of ours is made and taken out after the last one goes; making or removing a
network in between changes no rule (no ``iptables`` run).

::

    mangle FORWARD -------> IPYDOCK-ISOLATION       only drops (mangle: before any filter
                                                    chain, a dockerd's accepts included)
                              frame bridged within a bridge    RETURN  members talk (L2)
                              in group INTERNAL                DROP    no way out
                              out group INTERNAL               DROP    no way in
                              out group, ctstate not           DROP    nothing new routed in
                                RELATED,ESTABLISHED,DNAT               (another bridge, the LAN)
                              in group, -o docker0|br-+, new   DROP    not into dockerd's
                                                                        networks either
    filter FORWARD -(1st)-> IPYDOCK-FORWARD
                              out group                        ACCEPT  members, replies, DNAT'd
                              in group, new                    MARK    for the NAT below
                              in group                         ACCEPT  out to the world
    nat POSTROUTING ------> IPYDOCK-POSTROUTING
                              out group, src-type LOCAL        MASQUERADE  127.0.0.1 -> -p
                              marked                           MASQUERADE  outbound NAT
    nat PREROUTING, OUTPUT (dst-type LOCAL) -> IPYDOCK   one rule per published port:
                              -p tcp|udp [-d HOST_IP] --dport HOST_PORT  DNAT  CIP:PORT
                              (comment "ipydock PID START": the container's pid 1)

Two bridges of ours cannot reach each other (nothing new is routed into a bridge), nor a
bridge of ours dockerd's (``docker0`` and ``br-…``, the names dockerd gives its bridges), nor
dockerd's ours, as two docker networks cannot; published ports (DNAT) are reachable from any
of them, as docker's are. (dockerd's bridges are told by their names: a host's own bridge
named ``br-…`` would take no new connection routed from ours either.) Rules are iptables
rules (``iptables -w``, ``iptables-restore --noflush`` for a batch: the nf_tables or legacy
backend, whichever the host's iptables uses, as dockerd's), in chains of ipydock's own beside
dockerd's without touching them (a dockerd that sets FORWARD to DROP does not stop ours: our
jump comes first and accepts what is ours).

Forwarding: as dockerd does at start, the first non-internal bridge turns on
``net.ipv4.ip_forward`` if it is off, and then sets the FORWARD policy to DROP (as dockerd
does), so that the host does not start routing anything else. Each non-internal bridge gets
``route_localnet`` (only on that bridge), which lets 127.0.0.1 be DNAT'd to a container (see
:mod:`ports`). Where iptables is not installed nothing is added and the bridges have no way
out (``iptables`` is in ``scripts/setup.sh``'s list).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "CHAIN",
    "GROUP",
    "GROUP_INTERNAL",
    "PORTS",
    "add",
    "add_ports",
    "available",
    "group",
    "has",
    "making",
    "orphaned",
    "ours",
    "port_rules",
    "purge",
    "remove_ports",
    "removing",
    "sweep",
]

CHAIN = "IPYDOCK-ISOLATION"  # mangle
ACCEPT = "IPYDOCK-FORWARD"  # filter
NAT = "IPYDOCK-POSTROUTING"
PORTS = "IPYDOCK"

GROUP = 0x69706400  # "ipd\0": a bridge of ours with a way out
GROUP_INTERNAL = GROUP | 1  # --internal
_OURS = f"0x{GROUP:x}/0xfffffffe"  # either group
_MARK = "0x10000000/0x10000000"  # NEW and leaving through one of ours: MASQUERADE
_DOCKER = ("docker0", "br-+")  # the names dockerd gives its bridges
_NOT_ASKED = "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT"

# (table, chain, where it is jumped from: (builtin chain, matches, first?))
_CHAINS: tuple[tuple[str, str, tuple[tuple[str, str, bool], ...]], ...] = (
    ("mangle", CHAIN, (("FORWARD", "", False),)),
    ("filter", ACCEPT, (("FORWARD", "", True),)),
    ("nat", NAT, (("POSTROUTING", "", False),)),
    ("nat", PORTS, (("PREROUTING", "-m addrtype --dst-type LOCAL", False),
                    ("OUTPUT", "-m addrtype --dst-type LOCAL", False))),
)  # fmt: skip
_TABLES = ("mangle", "filter", "nat")


def _rules() -> dict[str, list[str]]:
    """Every rule of ours but the published ports, per table, as ``iptables -S`` prints them.
    The drops are in mangle (before any filter chain, so no accept of dockerd's, which may
    come before our jump in FORWARD, lets anything through that they drop)."""
    drop = [f"-A {CHAIN} -m physdev --physdev-is-bridged -j RETURN",  # members talk (L2)
            f"-A {CHAIN} -m devgroup --src-group 0x{GROUP_INTERNAL:x} -j DROP",
            f"-A {CHAIN} -m devgroup --dst-group 0x{GROUP_INTERNAL:x} -j DROP",
            f"-A {CHAIN} -m devgroup --dst-group {_OURS} {_NOT_ASKED} -j DROP"]  # fmt: skip
    drop += [f"-A {CHAIN} -o {name} -m devgroup --src-group {_OURS} {_NOT_ASKED} -j DROP"
             for name in _DOCKER]  # fmt: skip
    accept = [f"-A {ACCEPT} -m devgroup --dst-group {_OURS} -j ACCEPT",
              f"-A {ACCEPT} -m devgroup --src-group {_OURS} -m conntrack --ctstate NEW "
              f"-j MARK --set-xmark {_MARK}",
              f"-A {ACCEPT} -m devgroup --src-group {_OURS} -j ACCEPT"]  # fmt: skip
    nat = [f"-A {NAT} -m devgroup --dst-group {_OURS} -m addrtype --src-type LOCAL "
           "-j MASQUERADE",
           f"-A {NAT} -m mark --mark {_MARK} -j MASQUERADE"]  # fmt: skip
    return {"mangle": drop, "filter": accept, "nat": nat}


def group(internal: bool) -> int:
    """The interface group a bridge of ours is made in."""
    return GROUP_INTERNAL if internal else GROUP


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One changer of our chains at a time on this host (every store, every test run): a
    listing and the batch made from it must not interleave with another's; nor the first
    bridge made (rules in) with the last one removed (rules out)."""
    import fcntl

    os.makedirs("/run/ipydock", exist_ok=True)
    fd = os.open("/run/ipydock/firewall.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def available() -> bool:
    return shutil.which("iptables") is not None


def _run(*args: str) -> bool:
    proc = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    return proc.returncode == 0


def _listing(table: str) -> list[str]:
    """``iptables -S`` of a table (every chain)."""
    proc = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def _restore(batch: dict[str, list[str]]) -> bool:
    """Apply iptables commands per table in one transaction (all or nothing)."""
    text = "".join(f"*{t}\n" + "".join(f"{c}\n" for c in cmds) + "COMMIT\n"
                   for t, cmds in batch.items() if cmds)  # fmt: skip
    if not text:
        return True
    proc = subprocess.run(["iptables-restore", "-w", "--noflush"], input=text,
                          capture_output=True, text=True)  # fmt: skip
    return proc.returncode == 0


def ours() -> list[str]:
    """The links of this network namespace in our groups (sysfs: no netlink round trip)."""
    found = []
    for name in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{name}/netdev_group") as f:
                if int(f.read()) in (GROUP, GROUP_INTERNAL):
                    found.append(name)
        except (OSError, ValueError):
            continue
    return found


def _jumps(table: str) -> list[str]:
    return [f"-A {src} {m + ' ' if m else ''}-j {chain}"
            for t, chain, froms in _CHAINS if t == table for src, m, _ in froms]  # fmt: skip


def _ensure(table: str, lines: list[str]) -> list[str]:
    """Commands that make the missing chains and jumps of ``table``."""
    out = []
    present = set(lines)
    for t, chain, froms in _CHAINS:
        if t != table:
            continue
        if f"-N {chain}" not in present:
            out.append(f"-N {chain}")
        for src, match, first in froms:
            jump = f"-A {src} {match + ' ' if match else ''}-j {chain}"
            if jump not in present:
                spec = jump.split(" ", 2)[2]
                out.append(f"{'-I {} 1' if first else '-A {}'}".format(src) + f" {spec}")
    return out


def _delete(line: str) -> str:
    return "-D" + line[2:]


def has() -> bool:
    """Every rule and jump of ours is in place (True without iptables)."""
    if not available():
        return True
    for table, want in _rules().items():
        lines = set(_listing(table))
        if not set(want) <= lines or not set(_jumps(table)) <= lines:
            return False
    return True


def _install() -> None:
    """Our chains, jumps and rules, whatever of them is missing (a chain that lacks one of its
    rules gets all of them again, in their order)."""
    batch: dict[str, list[str]] = {}
    for table, want in _rules().items():
        lines = _listing(table)
        cmds = _ensure(table, lines)
        if not set(want) <= set(lines):
            cmds += [_delete(w) for w in want if w in lines] + want
        batch[table] = cmds
    _restore(batch)


def _uninstall() -> None:
    """Our rules out; each chain (and its jumps) too when nothing else is left in it (rules of
    an older ipydock, published ports)."""
    batch: dict[str, list[str]] = {}
    for table, want in _rules().items():
        lines = _listing(table)
        cmds = [_delete(w) for w in want if w in lines]
        for t, chain, _froms in _CHAINS:
            others = [x for x in lines if x.startswith(f"-A {chain} ") and x not in want]
            if t == table and f"-N {chain}" in lines and not others:
                cmds += [_delete(j) for j in _jumps(table) if j in lines
                         and j.endswith(f"-j {chain}")]  # fmt: skip
                cmds.append(f"-X {chain}")
        batch[table] = cmds
    _restore(batch)


@contextlib.contextmanager
def making(bridge: str, internal: bool = False) -> Iterator[None]:
    """Around making a bridge of ours (in its group): the rules go in first if no bridge of
    ours has them yet; forwarding on after. No iptables run when other bridges of ours exist."""
    if not available():
        yield
        return
    with _locked():
        if not ours():
            _install()
        yield
    if not internal:
        _forwarding(bridge)


@contextlib.contextmanager
def removing() -> Iterator[None]:
    """Around deleting a bridge of ours: the rules go after the last one."""
    if not available():
        yield
        return
    with _locked():
        yield
        if not ours():
            _uninstall()


def orphaned() -> bool:
    """Our rules are there though no bridge of ours is (a crash between the last bridge's
    deletion and the rules')."""
    if not available() or ours():
        return False
    return any(set(want) & set(_listing(t)) for t, want in _rules().items())


def sweep() -> None:
    """Take our rules out if no bridge of ours is left."""
    if available():
        with _locked():
            if not ours():
                _uninstall()


def add(bridge: str, internal: bool = False) -> None:
    """Our rules, made whole (repair; a bridge of an older ipydock put in its group), and no
    rule of an older ipydock naming ``bridge``; forwarding on."""
    if not available():
        return
    with _locked():
        _install()
        _purge(bridge)
    if not internal:
        _forwarding(bridge)


def purge(bridge: str) -> None:
    """Take out the rules an older ipydock (one set per bridge) made for ``bridge``."""
    if available():
        with _locked():
            _purge(bridge)


def _purge(bridge: str) -> None:
    batch = {t: [_delete(x) for x in _listing(t) if x.startswith("-A IPYDOCK")
                 and f" {bridge} " in x + " "] for t in ("filter", "nat")}  # fmt: skip
    _restore(batch)


def _forwarding(bridge: str) -> None:
    """ip_forward on (and FORWARD's policy to DROP when we turned it on, as dockerd does);
    route_localnet on the bridge, so that DNAT from 127.0.0.1 can leave through it."""
    with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet",
                                            "w") as f:  # fmt: skip
        f.write("1")
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            on = f.read().strip() == "1"
        if not on:
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write("1")
            _run("-P", "FORWARD", "DROP")
    except OSError:
        pass


# -- published ports ---------------------------------------------------------------------------


def port_rules(
    owner: tuple[int, int], target: str, bindings: Iterable[tuple[str, str, int, int]]
) -> list[str]:
    """DNAT rules (``-A IPYDOCK …`` as ``iptables -S`` prints them) for (protocol, host ip,
    host port, container port) bindings to ``target``, tagged with pid 1's (pid, start)."""
    out = []
    for proto, host_ip, host_port, port in bindings:
        dest = f"-d {host_ip}/32 " if host_ip and host_ip != "0.0.0.0" else ""
        out.append(f"-A {PORTS} {dest}-p {proto} -m {proto} --dport {host_port} -m comment "
                   f'--comment "ipydock {owner[0]} {owner[1]}" -j DNAT --to-destination '
                   f"{target}:{port}")  # fmt: skip
    return out


def add_ports(rules: list[str], alive: Callable[[int, int], bool] | None = None) -> bool:
    """Put DNAT ``rules`` in (first dropping rules of containers no longer running, which a
    SIGKILL left, when ``alive(pid, start)`` is given); False if iptables refused."""
    if not available():
        return False
    cmds = [f"-I {PORTS} 1 {r.split(' ', 2)[2]}" for r in reversed(rules)]
    with _locked():
        stale = stale_ports(alive) if alive is not None else []
        return _restore({"nat": [_delete(line) for line in stale] + cmds})


def remove_ports(rules: list[str]) -> None:
    if not rules or not available():
        return
    with _locked():
        present = set(_listing("nat"))
        _restore({"nat": [_delete(r) for r in rules if r in present]})


def stale_ports(alive: Callable[[int, int], bool]) -> list[str]:
    """Port rules whose container's pid 1 is gone (``alive(pid, start)`` says so)."""
    if not available():
        return []
    out = []
    for line in _listing("nat"):
        if not line.startswith(f"-A {PORTS} ") or '"ipydock ' not in line:
            continue
        pid, start = line.split('"ipydock ', 1)[1].split('"', 1)[0].split()
        if not alive(int(pid), int(start)):
            out.append(line)
    return out
