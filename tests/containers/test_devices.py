"""Docker's device rules: a container may mknod but not open a host device; --device adds one,
--privileged lifts them; build steps are held the same way.

The host device is a loop device over a temp file holding a marker, so "did the container reach
the host's disk" is judged on the host, by reading the backing file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.errors import BuildStepFailed, UsageError
from tests.conftest import require

pytestmark = pytest.mark.root

MARKER = b"MARKER-HOST"


@pytest.fixture
def loopdev(tmp_path) -> Iterator[tuple[str, str]]:
    """(device path, backing file) of a fresh loop device whose first bytes are MARKER."""
    require(shutil.which("losetup") is not None, "losetup (util-linux) is not installed")
    backing = tmp_path / "disk.img"
    backing.write_bytes(MARKER + bytes(1 << 20))
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    try:
        yield dev, str(backing)
    finally:
        subprocess.run(["losetup", "--detach", dev], check=True)


def run(engine, script: str, **flags) -> tuple[int, str]:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(RunOptions("busybox", ("sh", "-c", script), **flags),
                        output=lambda s, t: seen.append(t))  # fmt: skip
    return result.exit_code, "".join(seen)


def numbers(dev: str) -> str:
    rdev = os.stat(dev).st_rdev
    return f"{os.major(rdev)} {os.minor(rdev)}"


def test_default_container_can_mknod_but_not_open_a_host_disk(engine, loopdev) -> None:
    dev, backing = loopdev
    script = (
        f"mknod /tmp/disk b {numbers(dev)} && echo made; "
        "head -c 11 /tmp/disk; echo read=$?; "
        "echo ESCAPED > /tmp/disk; echo wrote=$?; "
        "mknod /tmp/kmsg c 1 11 && echo hi > /tmp/kmsg; echo kmsg=$?; "
        "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem; echo mem=$?; "
        "echo ok > /dev/null && head -c 1 /dev/zero >/dev/null && echo defaults-ok"
    )
    # fmt: skip
    code, out = run(engine, script)
    assert code == 0, out
    assert "made" in out  # mknod is allowed, as in docker
    assert "read=1" in out and "wrote=1" in out and "kmsg=1" in out and "mem=1" in out
    assert out.count("Operation not permitted") >= 4
    assert "defaults-ok" in out
    with open(backing, "rb") as f:
        assert f.read(len(MARKER)) == MARKER  # the host's disk is untouched


def test_device_flag_gives_one_device_with_its_permissions(engine, loopdev) -> None:
    dev, backing = loopdev
    script = ("head -c 11 /dev/xdisk; echo; echo ESCAPED > /dev/xdisk; echo wrote=$?; "
              f"mknod /tmp/other b {numbers(dev).split()[0]} 63 && head -c 1 /tmp/other; "
              "echo other=$?")  # fmt: skip
    code, out = run(engine, script, devices=(f"{dev}:/dev/xdisk:r",))
    assert code == 0, out
    assert out.startswith(MARKER.decode())  # read allowed
    assert "wrote=1" in out  # write is not in "r"
    assert "other=1" in out  # only that one device
    with open(backing, "rb") as f:
        assert f.read(len(MARKER)) == MARKER


def test_device_flag_read_write_reaches_the_device(engine, loopdev) -> None:
    dev, backing = loopdev
    code, out = run(engine, "printf WRITTEN-BY-C | dd of=/dev/disk conv=notrunc 2>/dev/null",
                    devices=(f"{dev}:/dev/disk",))  # fmt: skip
    assert code == 0, out
    with open(backing, "rb") as f:
        assert f.read(12) == b"WRITTEN-BY-C"


def test_privileged_lifts_the_device_rules(engine, loopdev) -> None:
    dev, _ = loopdev
    code, out = run(engine, f"mknod /tmp/disk b {numbers(dev)} && head -c 11 /tmp/disk",
                    privileged=True)  # fmt: skip
    assert code == 0, out
    assert out == MARKER.decode()


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        ("/dev/does-not-exist", "error gathering device information"),
        ("/etc/hostname", "not a device node"),
        ("/dev/null:/dev/x:rq", "permissions 'rq'"),
        ("/dev/null:relative", "paths must be absolute"),
    ],
)
def test_bad_device_flag_is_one_clear_error(engine, flag: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        engine.run(RunOptions("busybox", ("true",), devices=(flag,)))
    assert engine.containers(all=True) == []  # nothing half-made


def test_build_steps_get_the_device_rules(backend, busybox, loopdev, tmp_path) -> None:
    dev, backing = loopdev
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM busybox\nRUN mknod /disk b {numbers(dev)} && head -c 11 /disk\n"
    )
    with pytest.raises(BuildStepFailed) as err:
        backend.build(str(context))
    assert err.value.line == 2
    assert any("Operation not permitted" in line for line in err.value.last_lines)
    with open(backing, "rb") as f:
        assert f.read(len(MARKER)) == MARKER
