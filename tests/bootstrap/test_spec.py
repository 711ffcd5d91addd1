"""The pure half of ``image bootstrap``: flags checked, the mmdebstrap command line, the history
text, and mmdebstrap's messages turned into one line that says what to do."""

from __future__ import annotations

import pytest

from ipydock.commands.bootstrap import BootstrapSpec, kind, why
from ipydock.errors import UsageError


def test_flags_become_a_spec_with_docker_like_history() -> None:
    spec = BootstrapSpec.parse("bookworm", "minbase", ["python3-minimal,curl", "git"], None)
    assert spec.include == ("python3-minimal", "curl", "git")
    assert spec.history == "bootstrap bookworm minbase +python3-minimal +curl +git"
    assert BootstrapSpec.parse(None, None, None, None).history == "bootstrap bookworm minbase"


def test_the_command_streams_a_tar_without_device_nodes_or_host_files() -> None:
    spec = BootstrapSpec("trixie", "apt", ("curl",), "http://127.0.0.1:3142/debian")
    cmd = spec.command("unshare")
    assert cmd[:5] == ["mmdebstrap", "--mode=unshare", "--variant=apt", "--format=tar",
                       "--include=curl"]  # fmt: skip
    assert "--skip=output/dev" in cmd
    assert any("touch resolv.conf hostname" in c for c in cmd)
    assert cmd[-3:] == ["trixie", "-", "http://127.0.0.1:3142/debian"]
    assert BootstrapSpec().command("root")[-2:] == ["bookworm", "-"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("Bookworm!", None, None, None), "invalid suite 'Bookworm!'"),
        (("bookworm", "tiny", None, None), "invalid variant 'tiny': use one of"),
        (("bookworm", None, ["ok,-rf"], None), "invalid package name '-rf'"),
        (("bookworm", None, None, "deb.debian.org"), "invalid mirror 'deb.debian.org'"),
    ],
)
def test_bad_flags_get_one_line(args: tuple, says: str) -> None:
    with pytest.raises(UsageError, match="^" + says.replace("(", r"\(")):
        BootstrapSpec.parse(*args)


def test_mmdebstrap_messages_become_a_cause() -> None:
    spec = BootstrapSpec("nosuch", mirror="http://127.0.0.1:9/debian")
    suite = ["E: The repository 'http://127.0.0.1:9/debian nosuch Release' does not have a "
             "Release file.", "E: mmdebstrap failed to run"]  # fmt: skip
    assert kind(suite) == "suite"
    assert why(spec, suite).startswith("suite 'nosuch' does not exist at http://127.0.0.1:9/")
    dead = ["Err:1 http://127.0.0.1:9/debian nosuch InRelease",
            "E: Failed to fetch http://127.0.0.1:9/debian/dists/nosuch/InRelease  Could not "
            "connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"]  # fmt: skip
    assert kind(dead) == "mirror"
    assert why(spec, dead).startswith("the mirror http://127.0.0.1:9/debian does not answer")
    package = ["E: Unable to locate package nosuchpkg", "E: mmdebstrap failed to run"]
    assert kind(package) == "package"
    assert why(spec, package) == "package nosuchpkg not found in nosuch: check --include"
    other = ["E: apt-get update failed", "E: something odd", "E: mmdebstrap failed to run"]
    assert (kind(other), why(spec, other)) == ("other", "something odd")
