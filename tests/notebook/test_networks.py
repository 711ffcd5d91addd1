"""``%network`` and ``%ipydock engine`` in a real InteractiveShell, on both engines."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from ipydock.display.network import NetworkGraph
from ipydock.magics import CellError
from ipydock.models import NetworkInfo
from tests.conftest import require
from tests.notebook.conftest import frame_records, shown

COLUMNS = list(NetworkInfo.__dataclass_fields__)


def test_network_ls_and_inspect_are_dataframes(ip) -> None:
    df = ip.run_line_magic("network", "ls")
    df = df[df["name"] != "bridge"]  # the default bridge, once a container has used it
    assert isinstance(df, pd.DataFrame) and list(df.columns) == COLUMNS
    assert df["name"].tolist() == ["host", "none"] and df["driver"].tolist() == ["host", "null"]
    detail = ip.run_line_magic("network", "inspect host")
    assert isinstance(detail, pd.DataFrame) and list(detail.columns) == COLUMNS
    assert frame_records(detail) == frame_records(df.iloc[:1])
    assert ip.run_line_magic("network", "ls -f type=custom").empty


def test_network_graph_is_an_svg(ip) -> None:
    graph = ip.run_line_magic("network", "ls --graph")
    assert isinstance(graph, NetworkGraph)
    svg = ET.fromstring(graph._repr_svg_())
    names = {g.get("data-name") for g in svg.iter() if g.get("class") == "network"}
    assert names - {"bridge"} == {"host", "none"}


def test_the_same_from_plain_python(ip) -> None:
    from ipydock import dock

    backend = ip.find_line_magic("network").__self__.backend
    df = dock.networks(backend=backend)
    assert frame_records(df) == frame_records(ip.run_line_magic("network", "ls"))
    assert dock.networks(filters=["driver=null"], backend=backend)["name"].tolist() == ["none"]
    graph = dock.network_graph(backend=backend)
    assert (
        isinstance(graph, NetworkGraph)
        and graph.svg == ip.run_line_magic("network", "ls --graph").svg
    )


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%network create host", "pre-defined network"),
        ("%network create -d nope net1", "invalid --driver"),
        ("%network inspect nope", "No such network: nope"),
        ("%ipydock engine docker --host unix:///nonexistent/docker.sock", "cannot reach"),
    ],
)
def test_network_errors_are_one_short_line(ip, cell, message) -> None:
    result, out = shown(ip, cell)
    assert isinstance(result.error_in_exec, CellError)
    assert message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_rm_goes_on_after_an_error_as_docker_does(ip) -> None:
    result, out = shown(ip, "%network rm host")
    assert "pre-defined network" in out and "Traceback" not in out


def test_a_failed_switch_keeps_the_engine(ip, root) -> None:
    shown(ip, "%ipydock engine docker --host unix:///nonexistent/docker.sock")
    assert ip.run_line_magic("ipydock", "info")["engine"] == "bundled"


@pytest.fixture
def private_dockerd():
    from ipydock.testing import Dockerd

    require(os.geteuid() == 0, "dockerd needs root")
    require(shutil.which("dockerd") is not None or os.path.exists("/usr/sbin/dockerd"),
            "docker.io is not installed")  # fmt: skip
    with Dockerd() as d:
        yield d


@pytest.mark.docker
@pytest.mark.root
def test_switching_to_docker_and_back(ip, private_dockerd, root) -> None:
    info = ip.run_line_magic("ipydock", f"engine docker --host {private_dockerd.host}")
    assert info["engine"] == "docker" and info["host"] == private_dockerd.host
    try:
        ip.run_line_magic("network", "create --subnet 10.80.0.0/24 magic-net")
        df = ip.run_line_magic("network", "ls")
        assert list(df.columns) == COLUMNS and "magic-net" in df["name"].tolist()
        detail = ip.run_line_magic("network", "inspect magic-net")
        assert detail["subnets"].tolist() == [["10.80.0.0/24"]]
        ip.run_line_magic("network", "rm magic-net")
    finally:
        back = ip.run_line_magic("ipydock", "engine bundled")
    assert back["engine"] == "bundled" and back["root"] == root
    # The traitlets do the same.
    ip.run_line_magic("config", f"IPyDock.host = {private_dockerd.host!r}")
    ip.run_line_magic("config", "IPyDock.engine = 'docker'")
    assert ip.run_line_magic("ipydock", "info")["engine"] == "docker"
    ip.run_line_magic("config", "IPyDock.engine = 'bundled'")
    ip.run_line_magic("config", "IPyDock.host = ''")
