"""Packet rules of ipydock's own chains: isolation, outbound NAT, published ports (DNAT).

::

    filter FORWARD -(1st)-> IPYDOCK-ISOLATION        per bridge BR (subnet NET):
                              -i BR -o BR                          ACCEPT  members talk
                              ! -i BR -o BR  ctstate not           DROP    nothing new routed
                                      RELATED,ESTABLISHED,DNAT             in (another bridge)
                              -i BR ! -o BR                        DROP    --internal only
                              ! -i BR -o BR                        DROP    --internal only
                   -(2nd)-> IPYDOCK-FORWARD          (not --internal)
                              -i BR ! -o BR                        ACCEPT  out to the world
                              -o BR                                ACCEPT  replies, DNAT'd
    nat POSTROUTING ------> IPYDOCK-POSTROUTING      (not --internal)
                              -s NET ! -o BR                       MASQUERADE  outbound NAT
                              -o BR  src-type LOCAL                MASQUERADE  127.0.0.1 -> -p
    nat PREROUTING, OUTPUT (dst-type LOCAL) -> IPYDOCK   one rule per published port:
                              -p tcp|udp [-d HOST_IP] --dport HOST_PORT  DNAT  CIP:PORT
                              (comment "ipydock PID START": the container's pid 1)

The isolation rules come first and only drop, the accepting ones come after them, so whatever
the order in which bridges were made, one bridge never reaches another. Rules are iptables
rules (``iptables -w``, ``iptables-restore --noflush`` for a batch: the nf_tables or legacy
backend, whichever the host's iptables uses, as dockerd's), in chains of ipydock's own beside
dockerd's without touching them (a dockerd that sets FORWARD to DROP does not stop ours: our
jumps come first and accept what is ours).

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
    "PORTS",
    "add",
    "add_ports",
    "available",
    "has",
    "port_rules",
    "remove",
    "remove_ports",
]

CHAIN = "IPYDOCK-ISOLATION"
ACCEPT = "IPYDOCK-FORWARD"
NAT = "IPYDOCK-POSTROUTING"
PORTS = "IPYDOCK"

# (table, chain, where it is jumped from: (builtin chain, matches, first?))
_CHAINS: tuple[tuple[str, str, tuple[tuple[str, str, bool], ...]], ...] = (
    ("filter", CHAIN, (("FORWARD", "", True),)),
    ("filter", ACCEPT, (("FORWARD", "", False),)),
    ("nat", NAT, (("POSTROUTING", "", False),)),
    ("nat", PORTS, (("PREROUTING", "-m addrtype --dst-type LOCAL", False),
                    ("OUTPUT", "-m addrtype --dst-type LOCAL", False))),
)  # fmt: skip


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One changer of our chains at a time on this host (every store, every test run): a
    listing and the batch made from it must not interleave with another's."""
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


def _rules(bridge: str, subnet: str, internal: bool) -> dict[str, list[str]]:
    """The rules of one bridge as ``-A CHAIN …`` lines, the way ``iptables -S`` prints them."""
    drop = [f"-A {CHAIN} -i {bridge} -o {bridge} -j ACCEPT"]
    if internal:
        drop += [f"-A {CHAIN} -i {bridge} ! -o {bridge} -j DROP",
                 f"-A {CHAIN} ! -i {bridge} -o {bridge} -j DROP"]  # fmt: skip
        return {"filter": drop, "nat": []}
    drop.append(f"-A {CHAIN} ! -i {bridge} -o {bridge} -m conntrack ! --ctstate "
                "RELATED,ESTABLISHED,DNAT -j DROP")  # fmt: skip
    accept = [f"-A {ACCEPT} -i {bridge} ! -o {bridge} -j ACCEPT",
              f"-A {ACCEPT} -o {bridge} -j ACCEPT"]  # fmt: skip
    nat = [f"-A {NAT} -s {subnet} ! -o {bridge} -j MASQUERADE",
           f"-A {NAT} -o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE"]  # fmt: skip
    return {"filter": drop + accept, "nat": nat}


def _mentions(line: str, bridge: str) -> bool:
    return f" {bridge} " in line + " "


def has(bridge: str, subnet: str = "", internal: bool = False) -> bool:
    """Every rule of ``bridge`` and every jump is in place (True without iptables)."""
    if not available():
        return True
    for table, want in _rules(bridge, subnet, internal).items():
        lines = set(_listing(table))
        if not set(want) <= lines or not set(_jumps(table)) <= lines:
            return False
    return True


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
                where = "-I {} 1" if first else "-I {} 2" if chain == ACCEPT else "-A {}"
                out.append(f"{where.format(src)} {spec}")
    return out


def add(bridge: str, subnet: str = "", internal: bool = False, *, fresh: bool = False) -> None:
    """The rules of ``bridge`` (idempotent; a partial set is replaced); forwarding on.
    ``fresh``: a bridge just made, which no rule names yet: one batch, no listing, when our
    chains are there (else the full way)."""
    if not available():
        return
    with _locked():
        if not (fresh and _restore(_inserts(_rules(bridge, subnet, internal)))):
            _add(bridge, subnet, internal)
    if not internal:
        _forwarding(bridge)


def _inserts(rules: dict[str, list[str]]) -> dict[str, list[str]]:
    """Commands that put ``rules`` in: isolation rules on top (before every bridge's
    accepts), the others at the end of their chains."""
    out = {}
    for table, want in rules.items():
        drops = [w for w in want if w.startswith(f"-A {CHAIN} ")]
        out[table] = [f"-I {CHAIN} 1 {w.split(' ', 2)[2]}" for w in reversed(drops)]
        out[table] += [w for w in want if w not in drops]
    return out


def _add(bridge: str, subnet: str, internal: bool) -> None:
    batch: dict[str, list[str]] = {}
    for table, want in _rules(bridge, subnet, internal).items():
        lines = _listing(table)
        cmds = _ensure(table, lines)
        cmds += [_delete(line) for line in lines if line.startswith("-A IPYDOCK")
                 and _mentions(line, bridge)]  # fmt: skip
        batch[table] = cmds + _inserts({table: want})[table]
    _restore(batch)


def _delete(line: str) -> str:
    return "-D" + line[2:]


def remove(bridge: str, subnet: str = "", internal: bool = False) -> None:
    """Take the rules of ``bridge`` out; our chains and jumps go when they are all empty.
    With its ``subnet`` (and ``internal``) the rules are known: they go in one batch and
    the chains in another, which fails (changing nothing) while other rules are in them;
    without, or when someone took rules out, the rules are found in the listing."""
    if not available():
        return
    with _locked():
        rules = _rules(bridge, subnet, internal) if subnet else {}
        if rules and _restore({t: [_delete(r) for r in rs] for t, rs in rules.items()}):
            for table in ("filter", "nat"):  # each table's own batch: one may be in use
                cleanup = [_delete(j) for j in _jumps(table)]
                cleanup += [f"-X {c}" for t, c, _ in _CHAINS if t == table]
                _restore({table: cleanup})
            return
        _remove(bridge)


def _remove(bridge: str) -> None:
    listings = {table: _listing(table) for table in ("filter", "nat")}
    batch = {t: [_delete(line) for line in lines
                 if line.startswith("-A IPYDOCK") and _mentions(line, bridge)]
             for t, lines in listings.items()}  # fmt: skip
    for table, lines in listings.items():
        left = [line for line in lines
                if line.startswith("-A IPYDOCK") and not _mentions(line, bridge)]  # fmt: skip
        if not left:  # the last of ours in this table: its jumps and chains go too
            present = set(lines)
            batch[table] += [_delete(j) for j in _jumps(table) if j in present]
            batch[table] += [
                f"-X {c}" for t, c, _ in _CHAINS if t == table and f"-N {c}" in present
            ]
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
