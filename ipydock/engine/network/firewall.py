"""Forwarding rules of ipydock's own, so bridges are isolated whatever the host's policy is.

::

    filter FORWARD --(first rule)--> IPYDOCK-ISOLATION
        -i BR -o BR   ACCEPT   members reach each other, also with br_netfilter and a FORWARD
                               policy of DROP (what a dockerd in this netns sets)
        -i BR ! -o BR DROP     nothing routed from this bridge to another one (or beyond)
        -o BR ! -i BR DROP     nothing routed into it from elsewhere

Rules go in with ``network create`` (and the default bridge's first use) and out with
``network rm``; ``system check --repair`` puts missing ones back. They are iptables rules
(``iptables -w``: the nf_tables or legacy backend, whichever the host's iptables uses, as
dockerd's), in a chain of ipydock's own, beside dockerd's chains without touching them. Where
iptables is not installed nothing is added: bridges are still isolated while the host does
not forward (``net.ipv4.ip_forward=0``).
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["CHAIN", "add", "available", "has", "remove"]

CHAIN = "IPYDOCK-ISOLATION"


def available() -> bool:
    return shutil.which("iptables") is not None


def _run(*args: str) -> bool:
    proc = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    return proc.returncode == 0


def _rules(bridge: str) -> list[list[str]]:
    return [
        ["-i", bridge, "-o", bridge, "-j", "ACCEPT"],
        ["-i", bridge, "!", "-o", bridge, "-j", "DROP"],
        ["-o", bridge, "!", "-i", bridge, "-j", "DROP"],
    ]


def _ensure_chain() -> None:
    _run("-N", CHAIN)  # fails, harmlessly, when it is there
    if not _run("-C", "FORWARD", "-j", CHAIN):
        _run("-I", "FORWARD", "1", "-j", CHAIN)


def _listing() -> list[str]:
    proc = subprocess.run(["iptables", "-w", "-S", CHAIN], capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def has(bridge: str) -> bool:
    """Every rule of ``bridge`` is in place (True without iptables: nothing to have)."""
    if not available():
        return True
    found = sum(f" {bridge} " in line + " " for line in _listing())
    return found == len(_rules(bridge)) and _run("-C", "FORWARD", "-j", CHAIN)


def add(bridge: str) -> None:
    """The rules of ``bridge`` (idempotent); the accept first, so members keep talking."""
    if not available():
        return
    _ensure_chain()
    if any(f" {bridge} " in line + " " for line in _listing()):
        remove(bridge, keep_chain=True)  # a partial set: start again
    for position, rule in enumerate(_rules(bridge), 1):
        _run("-I", CHAIN, str(position), *rule)


def remove(bridge: str, *, keep_chain: bool = False) -> None:
    """Take the rules of ``bridge`` out; the chain and its jump go when it is empty."""
    if not available():
        return
    for rule in _rules(bridge):
        _run("-D", CHAIN, *rule)
    if keep_chain:
        return
    if _listing() == [f"-N {CHAIN}"]:
        while _run("-D", "FORWARD", "-j", CHAIN):
            pass
        _run("-X", CHAIN)
