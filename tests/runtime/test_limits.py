"""cgroup limits: memory (OOM kill reported), pids (a fork loop stops), cpus; cleanup."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipydock.engine.runtime import Resources, Spec, Stdio, cgroups

pytestmark = pytest.mark.root
MIB = 1024 * 1024


def test_memory_hog_is_oom_killed_and_reported(run, spec: Spec) -> None:
    limits = Resources(memory=16 * MIB, memory_swap=16 * MIB)
    status, _ = run(spec, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                    resources=limits)  # fmt: skip
    assert status.exit_code == 137
    assert status.oom_killed


def test_process_within_the_memory_limit_is_not_oom_killed(run, spec: Spec) -> None:
    limits = Resources(memory=64 * MIB, memory_swap=64 * MIB)
    status, _ = run(spec, "dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1",
                    resources=limits)  # fmt: skip
    assert (status.exit_code, status.oom_killed) == (0, False)


def test_pids_limit_stops_a_fork_bomb(runtime, spec: Spec, tmp_path) -> None:
    bomb = replace(spec, args=("sh", "-c", "while true; do sleep 1000 & done"),
                   resources=Resources(pids_limit=10))  # fmt: skip
    with open(tmp_path / "out", "w+") as out, runtime.run(bomb, Stdio(stderr=out.fileno())) as c:
        status = c.wait()
        assert status is not None
        pids_dir = dict(c.cgroup.placed).get("pids", c.cgroup.dirs[0])
        assert _read(pids_dir, "pids.events") != "max 0"  # the limit was hit
        out.seek(0)
        assert "can't fork: Resource temporarily unavailable" in out.read()
    assert status.exit_code == 2  # ash gives up when fork fails; pid 1's exit kills the rest


def test_limits_are_written_to_the_cgroup(runtime, spec: Spec) -> None:
    limits = Resources(memory=32 * MIB, pids_limit=50, cpus=0.5)
    with runtime.run(replace(spec, args=("sleep", "1000"), resources=limits)) as running:
        cg = running.cgroup
        assert running.pid in cg.pids()
        if cg.version == "v1":
            placed = dict(cg.placed)
            assert _read(placed["memory"], "memory.limit_in_bytes") == str(32 * MIB)
            assert _read(placed["pids"], "pids.max") == "50"
            assert _read(placed["cpu"], "cpu.cfs_quota_us") == "50000"
        else:
            base = cg.dirs[0]
            assert _read(base, "memory.max") == str(32 * MIB)
            assert _read(base, "pids.max") == "50"
            assert _read(base, "cpu.max") == "50000 100000"
    for path in cg.dirs:
        assert not __import__("os").path.exists(path)


def test_cgroup_version_is_detected() -> None:
    assert cgroups.detect() in ("v1", "v2")


def _read(directory: str, name: str) -> str:
    with open(f"{directory}/{name}") as f:
        return f.read().strip()
