"""Leaks: the counter sees what it must, and 500 run/rm cycles leave nothing.

The cycles (``IPYDOCK_LEAK_CYCLES``, default 500) run detached containers with a named volume,
on a user-defined bridge network, with a published port; every ``RECREATE`` cycles the network
and the volume are removed and made again. Afterwards every kind of leaks.py counts 0, the
store's disk usage is back where it started, and the counts are printed
("leaked objects: 0 (mount 0, process 0, …)").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ipydock.backends import BundledBackend
from ipydock.models import RunOptions
from tests.conftest import require
from tests.reliability import leaks
from tests.reliability.counts import record

CYCLES = int(os.environ.get("IPYDOCK_LEAK_CYCLES", "500"))
RECREATE = 25


def du(path: str) -> int:
    """Bytes used below ``path`` (apparent sizes; hardlinks once)."""
    seen, total = set(), 0
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def test_the_counter_sees_leaks_of_this_run(tmp_path_factory, tmp_path: Path) -> None:
    base = str(tmp_path_factory.getbasetemp())
    before = leaks.snapshot(base)
    store_tmp = tmp_path / "store" / "tmp"
    store_tmp.mkdir(parents=True)
    (tmp_path / "store" / "oci-layout").write_text("{}")
    (store_tmp / "blob-1_1-abcdef").write_text("left by a dead process")
    sleeper = subprocess.Popen(["sleep", "600"], cwd=tmp_path)
    try:
        found = leaks.new_leaks(before, base, settle=0.1)
        assert len(found["temp"]) == 1 and found["temp"][0].endswith("blob-1_1-abcdef")
        assert [p.split(" ", 1)[1] for p in found["process"]] == ["sleep 600"]
    finally:
        sleeper.kill()
        sleeper.wait()
    (store_tmp / "blob-1_1-abcdef").unlink()
    assert all(v == [] for v in leaks.new_leaks(before, base, settle=0.1).values())


@pytest.mark.slow
@pytest.mark.root
def test_run_rm_cycles_with_volumes_networks_and_ports(
    backend: BundledBackend, busybox: str, tmp_path_factory
) -> None:
    require(os.geteuid() == 0, "bridges, veths and published ports need root")
    base = str(tmp_path_factory.getbasetemp())
    before = leaks.snapshot(base)
    used_before = du(backend.store.root)
    for n in range(CYCLES):
        if n % RECREATE == 0:
            if n:
                backend.remove_network("leaknet")
                backend.remove_volume("leakvol")
            backend.create_network("leaknet")
            backend.create_volume("leakvol")
        cid = backend.run(
            RunOptions(image="busybox", command=("sleep", "60"), volumes=("leakvol:/data",),
                       network="leaknet", publish=("127.0.0.1::80",)),
            detach=True,
        ).id  # fmt: skip
        backend.remove_container(cid, force=True)
    backend.remove_network("leaknet")
    backend.remove_volume("leakvol")
    backend.close()
    found = leaks.new_leaks(before, base)
    total = sum(len(v) for v in found.values())
    counts = ", ".join(f"{kind} {len(found[kind])}" for kind in leaks.KINDS)
    print(f"{CYCLES} cycles; leaked objects: {total} ({counts})")
    assert total == 0, found
    used_after = du(backend.store.root)
    assert used_after <= used_before + 64 * 1024, (used_before, used_after)
    record("run/rm cycles", CYCLES)
