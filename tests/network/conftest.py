"""Fixtures for network tests (root, real netlink): links named for this suite, and a check
after every test that no bridge, veth or endpoint of it is left."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.network import bridge, netlink
from ipydock.models import RunOptions
from tests.conftest import require

PREFIX = f"ipdn{os.getpid() % 1000:03d}"  # one per session: two runs may overlap
NET = f"10.{150 + os.getpid() % 100}"  # the first two octets of the tests' fixed subnets


def mine() -> set[str]:
    """This session's links (bridges ``PREFIX-ID``, veths ``PREFIXvHASH``)."""
    return {n for n in netlink.link_names() if n.startswith(PREFIX)} - {bridge.default_bridge()}


@pytest.fixture
def net_backend(backend: BundledBackend, busybox: str, monkeypatch) -> Iterator[BundledBackend]:
    """A backend whose bridges and veths are named ``ipdn…``; afterwards every container and
    network is removed and nothing of them may be left in the kernel or the run dir."""
    require(os.geteuid() == 0, "bridge networks need root")
    monkeypatch.setenv("IPYDOCK_LINK_PREFIX", PREFIX)
    before = mine()
    try:
        yield backend
    finally:
        for c in backend.containers(all=True):
            backend.remove_container(c.id, force=True)
        backend.prune_networks()
        backend.close()
    assert mine() == before
    assert not [r for r in iptables_rules() if PREFIX in r]
    for net in bridge.Networks(backend.store.root).all():
        assert bridge.Networks(backend.store.root).endpoints(net) == {}
    assert backend.networks(filters=["type=custom"]) == []


def iptables_rules() -> list[str]:
    """The host's filter rules (iptables -S), or [] without iptables."""
    import shutil
    import subprocess

    if shutil.which("iptables") is None:
        return []
    proc = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(net_backend: BundledBackend) -> Run:
    """Run a command to its end in a throwaway container: (exit code, stdout + stderr)."""

    def go(*command: str, **opts: object) -> tuple[int, str]:
        out: list[str] = []
        result = net_backend.run(RunOptions("busybox", command, auto_remove=True, **opts),  # type: ignore[arg-type]
                                 output=lambda _s, text: out.append(text))  # fmt: skip
        return int(result.exit_code or 0), "".join(out)

    return go


Exec = Callable[..., tuple[int, str]]


@pytest.fixture
def exec_in(net_backend: BundledBackend) -> Exec:
    """Run a command in a running container: (exit code, stdout + stderr)."""

    def go(container: str, *command: str) -> tuple[int, str]:
        with tempfile.TemporaryFile("w+") as f:
            code = net_backend.exec(container, list(command), stdout=f, stderr=f)
            f.seek(0)
            return code, f.read()

    return go
