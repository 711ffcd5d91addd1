"""200 run/rm cycles leave no process, cgroup, mount, container dir or file descriptor."""

from __future__ import annotations

import gc
import os

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.errors import CommandNotFound

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_200_run_rm_cycles_leak_nothing(engine, root) -> None:
    engine.run(RunOptions("busybox", ("true",), auto_remove=True))  # warm up imports, caches
    gc.collect()  # earlier tests' garbage (clients, sockets) closes now, not during the loop
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(200):
        if i % 50 == 49:
            with pytest.raises(CommandNotFound):
                engine.run(RunOptions("busybox", ("missing",), auto_remove=True))
        elif i % 2:
            cid = engine.run(RunOptions("busybox", ("sleep", "1000"), memory="32m",
                                        pids_limit=20), detach=True).id  # fmt: skip
            engine.remove_container(cid, force=True)
        else:
            assert engine.run(RunOptions("busybox", ("true",), auto_remove=True)).exit_code == 0
    assert len(os.listdir("/proc/self/fd")) == fds
    # the engine fixture then checks: no process, cgroup, mount or container dir is left
