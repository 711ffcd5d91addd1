"""cgroup mount discovery and limit files (pure), and a real create/remove as root."""

from __future__ import annotations

import os
import uuid

import pytest

from ipydock.engine.runtime import Resources, cgroups
from ipydock.engine.runtime.cgroups import Cgroup, _limit_files

MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
MIB = 1024 * 1024


def test_v1_mounts_find_comounted_controllers(tmp_path) -> None:
    (tmp_path / "mounts").write_text(MOUNTS)
    assert cgroups.v1_mounts(str(tmp_path / "mounts")) == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "pids": "/sys/fs/cgroup/pids",
    }


def test_v1_limits_follow_docker_swap_default() -> None:
    cg = Cgroup("x", "v1", (("memory", "/m"), ("pids", "/p"), ("cpu", "/c")))
    files = dict(_limit_files(cg, Resources(memory=64 * MIB, pids_limit=5, cpus=1.5)))
    assert files["/m/memory.limit_in_bytes"] == str(64 * MIB)
    assert files["/p/pids.max"] == "5"
    assert files["/c/cpu.cfs_quota_us"] == "150000"


def test_v2_limits(tmp_path) -> None:
    (tmp_path / "memory.swap.max").write_text("max")
    cg = Cgroup("x", "v2", (("unified", str(tmp_path)),))
    files = dict(_limit_files(cg, Resources(memory=64 * MIB, memory_swap=-1, cpus=0.25)))
    assert files[f"{tmp_path}/memory.max"] == str(64 * MIB)
    assert files[f"{tmp_path}/memory.swap.max"] == "max"
    assert files[f"{tmp_path}/cpu.max"] == "25000 100000"


def test_oom_counter_is_read_from_memory_events(tmp_path) -> None:
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert Cgroup("x", "v2", (("unified", str(tmp_path)),)).oom_killed()


@pytest.mark.root
def test_create_and_remove(leaks) -> None:
    name = f"ipydock-test/{uuid.uuid4().hex}"
    cg = cgroups.create(name, Resources(pids_limit=3))
    assert all(os.path.isdir(d) for d in cg.dirs)
    with pytest.raises(cgroups.CgroupError):
        cgroups.create(name, Resources())
    cg.remove()
    cg.remove()
    assert not any(os.path.exists(d) for d in cg.dirs)
