"""Builds: RUN steps on the default bridge with outbound NAT, as docker's classic builder;
``build --network host|none`` and ``RUN --network=…`` choose otherwise."""

from __future__ import annotations

import pytest

from ipydock.errors import InvalidNetworkConfig
from ipydock.models import BuildEvent

pytestmark = pytest.mark.root


def build(b, tmp_path, text: str, **opts: object) -> list[str]:
    """Build ``text`` (no cache); the output lines of its RUN steps."""
    (tmp_path / "Dockerfile").write_text(text)
    lines: list[str] = []

    def progress(event: BuildEvent) -> None:
        if event.kind == "output":
            lines.append(event.text)

    b.build(str(tmp_path), no_cache=True, progress=progress, **opts)
    return lines


def test_run_steps_use_the_default_bridge_with_nat(net_backend, outside, tmp_path) -> None:
    b = net_backend
    outside.serve_peer(8092)
    out = build(b, tmp_path, "FROM busybox\nRUN ip -o -4 addr show eth0 && "
                f"nc -w 5 {outside.ip} 8092\n")  # fmt: skip
    default = b.inspect_network("bridge")
    prefix = default.subnets[0].rsplit(".", 2)[0]
    assert any(f"inet {prefix}." in line for line in out), out
    assert out[-1] == outside.host_ip  # reached the outside host, masqueraded
    assert default.containers == []  # the step's endpoint is gone with it


def test_build_network_none_and_host_and_run_network(net_backend, outside, tmp_path) -> None:
    b = net_backend
    links = "RUN ip -o link | cut -d: -f2\n"
    out = build(b, tmp_path, "FROM busybox\n" + links, network="none")
    assert [line.strip() for line in out] == ["lo"]
    out = build(b, tmp_path, "FROM busybox\n" + links, network="host")
    assert outside.link in {line.strip().split("@")[0] for line in out}
    out = build(b, tmp_path, "FROM busybox\nRUN --network=none ip -o link | cut -d: -f2\n",
                network="host")  # fmt: skip
    assert [line.strip() for line in out] == ["lo"]
    with pytest.raises(InvalidNetworkConfig, match="default .*host or none"):
        build(b, tmp_path, "FROM busybox\n", network="ipdn-nope")
