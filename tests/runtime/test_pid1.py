"""``ipydock-pid1`` (``pid1.c``), the native pid 1 of prepared containers, on its own: what it
does with a plan it cannot read and with no plan at all. (Its starts are every prepared start
of the container suites; ``tests/containers/test_prepared_start.py`` compares its containers
with Python's.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from ipydock.engine.runtime import Rootfs, Spec, build_plan, pid1
from ipydock.engine.runtime.plan import CLONE_NEWUSER, FUSE_OVERLAYFS, MountStep, Plan
from ipydock.native_launcher import build_pid1, compiler
from tests.conftest import require


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    require(compiler() is not None, "no C compiler (cc)")
    path = str(tmp_path_factory.mktemp("pid1") / "ipydock-pid1")
    assert build_pid1(path) == ""  # no warnings
    return path


def simple_plan() -> Plan:
    return build_plan(Spec(rootfs=Rootfs.overlay(("/l",), "/u", "/w", "/m"), args=("sh",),
                           env=("PATH=/bin",)))  # fmt: skip


def started(binary: str) -> tuple[subprocess.Popen[bytes], socket.socket]:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([binary, str(theirs.fileno()), "-1"], pass_fds=[theirs.fileno()])
    theirs.close()
    return proc, mine


def test_no_plan_ends_it_quietly(binary: str) -> None:
    """A spare discarded unused closes the socket: the waiting pid 1 exits 0."""
    proc, sock = started(binary)
    sock.close()
    assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "message",
    [b"garbage", b"14:ipydock-pid1 1", b"14:ipydock-pid1 9", b"99999999999:x", b"1:x1:y"],
)
def test_a_plan_it_cannot_read_is_one_report_line_and_exit_125(binary: str, message: bytes) -> None:
    proc, sock = started(binary)
    report_r, report_w = os.pipe()
    with sock:
        socket.send_fds(sock, [message], [report_w])
    os.close(report_w)
    assert proc.wait(timeout=30) == 125
    with os.fdopen(report_r, "rb") as report:
        line = report.read()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    error = json.loads(line)
    assert error["step"] == "setup" and error["exit_code"] == 125
    assert "ipydock-pid1" in error["detail"]


def test_what_it_leaves_to_python() -> None:
    """fuse-overlayfs, a new user namespace: the plans Python's spawn keeps."""
    from dataclasses import replace

    plan = simple_plan()
    assert pid1.fits(plan)
    assert pid1.fits(replace(plan, terminal=True))
    assert pid1.fits(replace(plan, rootless=True))  # its helper's user namespace is made
    assert not pid1.fits(replace(plan, clone_flags=plan.clone_flags | CLONE_NEWUSER))
    fuse = MountStep(plan.root, FUSE_OVERLAYFS, "fuse-overlayfs")
    assert not pid1.fits(replace(plan, root_mount=fuse))
    assert not pid1.fits(replace(plan, new_pid=False))


def test_the_encoding_is_netstrings_in_order() -> None:
    encoded = pid1.encode(simple_plan(), [0, 1, 2, 3, -1, -1])
    fields = []
    rest = encoded
    while rest:
        length, _, rest = rest.partition(b":")
        fields.append(rest[: int(length)])
        rest = rest[int(length) :]
    assert fields[:7] == [pid1.VERSION, b"0", b"1", b"2", b"3", b"-1", b"-1"]
    assert b"".join(b"%d:%s" % (len(f), f) for f in fields) == encoded


def test_a_report_line_is_json_python_reads_whatever_the_bytes(binary: str) -> None:
    """A path that is not UTF-8 in an error comes back as Python's json.dumps writes it
    (surrogates for the bytes it cannot decode); UTF-8 stays as it is."""
    version = b'v \xff caf\xc3\xa9 \xed\xa0\x80 \xf0\x9f\x90\xb3 "q" \x01'
    proc, sock = started(binary)
    report_r, report_w = os.pipe()
    with sock:
        socket.send_fds(sock, [b"%d:%s" % (len(version), version)], [report_w])
    os.close(report_w)
    assert proc.wait(timeout=30) == 125
    with os.fdopen(report_r, "rb") as report:
        error = json.loads(report.read())
    assert error["detail"].endswith(f"({os.fsdecode(version)})")
