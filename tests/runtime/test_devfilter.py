"""The cgroup v2 device filter: the eBPF program's shape (pure), and the kernel enforcing it on
a real v2 cgroup (the unified hierarchy; on this project's hybrid CI host it is mounted at
/sys/fs/cgroup/unified beside the v1 controllers)."""

from __future__ import annotations

import os
import struct

import pytest

from ipydock.engine.runtime import devfilter
from ipydock.engine.runtime.spec import DOCKER_DEVICE_RULES, DeviceRule
from tests.conftest import require


def insns(code: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("<BBhi", code[i : i + 8]) for i in range(0, len(code), 8)]


def test_program_ends_at_a_catch_all_rule_and_every_jump_lands_inside() -> None:
    code = insns(devfilter.program(DOCKER_DEVICE_RULES))
    assert code[-1][0] == 0x95 and code[-2] == (0xB7, 0, 0, 0)  # deny-all: return 0, exit
    for pc, (op, _regs, off, _imm) in enumerate(code):
        if op == 0x55:  # every conditional jump stays inside the program
            assert 0 <= pc + 1 + off < len(code)


def test_program_without_a_catch_all_denies_what_matches_nothing() -> None:
    code = insns(devfilter.program([DeviceRule(True, "c", 1, 3, "rwm")]))
    assert code[-2:] == [(0xB7, 0, 0, 0), (0x95, 0, 0, 0)]
    # type, major, minor: each mismatch jumps past the rest of the block to the final deny
    assert code[6:9] == [(0x55, 3, 4, 2), (0x55, 4, 3, 1), (0x55, 5, 2, 3)]


def v2_dir() -> str:
    for path in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return ""


def opens_in(cgroup: str, paths: list[str]) -> dict[str, str]:
    """Fork a child into ``cgroup``; what each open(2) of ``paths`` gave it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write("0")
            out = []
            for path in paths:
                try:
                    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
                    out.append(f"{path}=ok")
                except OSError as exc:
                    out.append(f"{path}={exc.errno}")
            os.write(w, " ".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return dict(item.split("=") for item in text.split())


@pytest.mark.root
def test_kernel_enforces_the_docker_rules_through_the_filter(tmp_path) -> None:
    base = v2_dir()
    require(bool(base), "no cgroup v2 hierarchy is mounted")
    cgroup = os.path.join(base, f"ipydock-test-devfilter-{os.getpid()}")
    os.mkdir(cgroup)
    node = str(tmp_path / "sda")
    os.mknod(node, 0o600 | 0o060000, os.makedev(8, 0))  # a host disk's numbers
    try:
        devfilter.attach(cgroup, DOCKER_DEVICE_RULES)
        seen = opens_in(cgroup, ["/dev/null", "/dev/zero", "/dev/kmsg", node])
    finally:
        os.rmdir(cgroup)
    assert seen["/dev/null"] == "ok" and seen["/dev/zero"] == "ok"
    assert seen["/dev/kmsg"] == "1" and seen[node] == "1"  # EPERM
