"""The bundled engine's networks: the built-in host and none, with the containers on them;
everything that needs a bridge says what to use instead."""

from __future__ import annotations

import io
import json
import os

import pytest

from ipydock import cli
from ipydock.errors import InvalidNetworkConfig, NetworkNotFound, NotSupported
from ipydock.models import RunOptions, to_record
from tests.conftest import require


def test_builtin_networks_as_docker_shows_them(backend) -> None:
    rows = [n for n in backend.networks() if n.name != "bridge"]  # made at the first run
    assert [(n.name, n.driver, n.scope) for n in rows] == [("host", "host", "local"),
                                                         ("none", "null", "local")]  # fmt: skip
    assert all(len(n.id) == 64 and n.containers == [] for n in rows)
    assert backend.inspect_network("host") == rows[0]
    assert backend.inspect_network(rows[1].id[:12]).name == "none"
    assert [n.name for n in backend.networks(filters=["driver=null"])] == ["none"]
    assert backend.networks(filters=["type=custom"]) == []
    with pytest.raises(NetworkNotFound, match="network ls"):
        backend.inspect_network("net1")
    assert backend.prune_networks() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.create_network("host"),
        lambda b: b.connect_network("host", "c1"),
        lambda b: b.disconnect_network("none", "c1"),
    ],
)
def test_builtin_networks_are_predefined(backend, call) -> None:
    with pytest.raises(NotSupported, match="pre-defined network"):
        call(backend)


def test_published_ports_need_a_bridge(backend) -> None:
    with pytest.raises(InvalidNetworkConfig, match="need a bridge network"):
        backend.run(RunOptions("busybox", ("true",), network="host", publish=("80",)))


def test_builtin_networks_cannot_be_removed(backend) -> None:
    with pytest.raises(NotSupported, match="pre-defined network"):
        backend.remove_network("host")
    with pytest.raises(NetworkNotFound):
        backend.remove_network("nope")


@pytest.mark.root
def test_running_containers_are_listed_on_their_network(backend, busybox) -> None:
    require(os.geteuid() == 0, "containers need root")
    cid = backend.run(RunOptions("busybox", ("sleep", "60"), name="on-host", network="host"),
                      detach=True).id  # fmt: skip
    try:
        host = backend.inspect_network("host")
        assert [(e.container_id, e.name, e.ipv4_address) for e in host.containers] == [
            (cid, "on-host", "")
        ]
        assert backend.inspect_network("none").containers == []
    finally:
        backend.remove_container(cid, force=True)
    assert backend.inspect_network("host").containers == []


def test_cli_network_ls_and_inspect(root) -> None:
    def ipd(*words: str) -> str:
        out = io.StringIO()
        assert cli.run(["--root", root, *words], out) == 0
        return out.getvalue()

    table = ipd("network", "ls").splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = [line.split()[1:] for line in table[1:] if line.split()[1] != "bridge"]
    assert rows == [["host", "host", "local"], ["none", "null", "local"]]
    records = [json.loads(line) for line in ipd("network", "ls", "--format", "json").splitlines()]
    assert list(records[-1]) == list(to_record(cli_rows(root)[-1]))
    assert records[-1]["created"] is None or records[-1]["created"].endswith("Z")
    (detail,) = json.loads(ipd("network", "inspect", "none"))
    assert detail["driver"] == "null" and detail["containers"] == []
    assert "host (host)" in ipd("network", "ls", "--graph")


def cli_rows(root: str) -> list:
    from ipydock.backends import connect

    return connect("bundled", root=root, warm=False).networks()
