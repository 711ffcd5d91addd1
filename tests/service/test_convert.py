"""docker's create body -> the CLI's RunOptions, and models -> docker's JSON (pure logic)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ipydock.errors import UsageError
from ipydock.models import ImageInfo
from ipydock.service import convert


def test_host_config_reads_as_run_flags() -> None:
    body = {
        "Image": "busybox", "Cmd": ["echo", "hi"], "Env": ["A=1"], "WorkingDir": "/w",
        "User": "1000", "Hostname": "box", "OpenStdin": True, "Labels": {"k": "v"},
        "Volumes": {"/anon": {}, "/data": {}}, "StopSignal": "SIGINT", "StopTimeout": 3,
        "HostConfig": {
            "Binds": ["vol:/data:ro", "/srv:/srv"], "Memory": 67108864, "PidsLimit": 20,
            "NanoCpus": 1500000000, "CapAdd": ["NET_ADMIN"], "CapDrop": ["CHOWN"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "Mounts": [{"Type": "tmpfs", "Target": "/t"},
                       {"Type": "volume", "Source": "v2", "Target": "/v", "ReadOnly": True}],
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                             "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
                             "82/tcp": [{"HostIp": "", "HostPort": ""}]},
            "NetworkMode": "app", "AutoRemove": True, "ReadonlyRootfs": True,
            "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x",
                         "CgroupPermissions": "rw"}],
        },
        "NetworkingConfig": {"EndpointsConfig": {"app": {
            "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}}}},
    }  # fmt: skip
    opts = convert.run_options(body, "named")
    assert opts.name == "named" and opts.command == ("echo", "hi") and opts.entrypoint is None
    assert opts.volumes == ("vol:/data:ro", "/srv:/srv", "/anon")  # /data is bound already
    assert opts.mounts == ("type=tmpfs,target=/t", "type=volume,source=v2,target=/v,readonly")
    assert (opts.memory, opts.pids_limit, opts.cpus) == (67108864, 20, 1.5)
    assert (opts.cap_add, opts.cap_drop, opts.restart) == (("NET_ADMIN",), ("CHOWN",),
                                                             "on-failure:2")  # fmt: skip
    assert sorted(opts.publish) == ["127.0.0.1:9000:81/tcp", "8080:80/tcp", "82/tcp"]
    assert (opts.network, opts.network_aliases, opts.ip) == ("app", ("web",), "10.1.0.9")
    assert opts.auto_remove and opts.read_only and opts.interactive
    assert opts.devices == ("/dev/null:/dev/x:rw",)
    assert (opts.stop_signal, opts.stop_timeout, opts.labels) == ("SIGINT", 3, {"k": "v"})


def test_entrypoint_lists_and_defaults() -> None:
    opts = convert.run_options({"Image": "b", "Entrypoint": ["sh", "-c"], "Cmd": ["echo x"]},
                               None)  # fmt: skip
    assert (opts.entrypoint, opts.command) == ("sh", ("-c", "echo x"))
    cleared = convert.run_options({"Image": "b", "Entrypoint": [], "Cmd": ["true"]}, "")
    assert (cleared.entrypoint, cleared.name) == ("", None)
    plain = convert.run_options({"Image": "b"}, None)
    assert (plain.network, plain.restart, plain.volumes) == ("default", "no", ())


def test_refusals() -> None:
    assert convert.run_options({"Image": "b", "Tty": True}, None).tty
    with pytest.raises(UsageError):
        convert.run_options({}, None)
    with pytest.raises(UsageError, match="invalid filter 'nosuch'"):
        convert.filter_list({"nosuch": ["1"]}, ("label",))


def test_image_rows_group_by_id() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [ImageInfo("a", "1", "sha256:x", when, 10), ImageInfo("b", "2", "sha256:x", when, 10),
            ImageInfo("<none>", "<none>", "sha256:y", when, 5)]  # fmt: skip
    found = convert.image_summaries(rows)
    assert [(e["Id"], e["RepoTags"]) for e in found] == [
        ("sha256:x", ["a:1", "b:2"]), ("sha256:y", ["<none>:<none>"])]  # fmt: skip
    assert found[0]["Created"] == int(when.timestamp())
