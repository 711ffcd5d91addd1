"""docker's run-flag syntax, read once for both engines (pure)."""

from __future__ import annotations

import os

import pytest

from ipydock.commands.runflags import MountSpec, parse_mounts, parse_restart
from ipydock.errors import InvalidMountSpec, UsageError


def test_volume_flags_become_mount_specs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    specs = parse_mounts(("/data", "cache:/cache:ro", "/srv:/srv", "./here:/here"),
                         ("type=tmpfs,target=/tmp,tmpfs-size=64m",))  # fmt: skip
    assert specs == [
        MountSpec("volume", "/data"),
        MountSpec("volume", "/cache", "cache", True),
        MountSpec("bind", "/srv", "/srv"),
        MountSpec("bind", "/here", os.path.join(str(tmp_path), "here")),  # as docker 23+
        MountSpec("tmpfs", "/tmp", "", False, (f"size={64 << 20}",)),
    ]


@pytest.mark.parametrize(
    ("volumes", "mounts", "words"),
    [
        (("a:b:c:d",), (), "use -v"),
        (("data:relative",), (), "must be absolute"),
        (("bad name!:/x",), (), "invalid characters"),
        (("/a:/x", "/b:/x"), (), "Duplicate mount point"),
        ((), ("type=bind,target=/x",), "absolute host path"),
        ((), ("type=nfs,target=/x",), "is not bind, volume or tmpfs"),
    ],
)
def test_bad_mount_flags_say_what_to_do(volumes, mounts, words) -> None:
    with pytest.raises(InvalidMountSpec, match=words):
        parse_mounts(volumes, mounts)


def test_restart_policies() -> None:
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("no") == {"Name": "", "MaximumRetryCount": 0}
    with pytest.raises(UsageError, match="only on-failure takes a count"):
        parse_restart("always:2")


def test_the_docker_backend_sends_what_the_parser_read() -> None:
    from docker.api.client import APIClient  # the optional dependency, there for the tests

    from ipydock.docker.runopts import create_args
    from ipydock.models import RunOptions

    api = APIClient(base_url="unix:///nonexistent.sock", version="1.41")  # never connects
    args = create_args(api, RunOptions("busybox", volumes=("/data", "cache:/cache:ro")))
    assert args["volumes"] == ["/data"]
    assert args["host_config"]["Binds"] == ["cache:/cache:ro"]


def test_publish_flags_are_read_once_for_both_engines() -> None:
    from ipydock.commands.runflags import Binding, parse_publish
    from ipydock.errors import InvalidNetworkConfig

    assert parse_publish(["127.0.0.1::80", "53:53/udp"]) == [
        Binding(80, "tcp", "127.0.0.1", 0),
        Binding(53, "udp", "", 53),
    ]
    with pytest.raises(InvalidNetworkConfig, match="container port"):
        parse_publish(["8080:http"])
