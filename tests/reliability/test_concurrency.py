"""Eight processes on one store at once: build, run, tag, rm, prune, save, load, commit.

Each worker (worker.py, a process of its own) loops over random operations for
``IPYDOCK_CONCURRENCY_SECONDS`` (default 60). The only failures allowed are the documented
conflicts (no such image, image in use / has children); at the end the store checks
consistent with no garbage at all (no orphan blob or layer, no lease, no temp entry), and no
mount or process of the store is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from tests.conftest import require
from tests.reliability.counts import record

WORKERS = 8
SECONDS = float(os.environ.get("IPYDOCK_CONCURRENCY_SECONDS", "60"))
REPO = str(Path(__file__).parents[2])


def leftovers(root: str) -> list[str]:
    """Mounts below the store, and processes whose command line or cwd is in it."""
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if root in line.split()[4]]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if root in cmdline or cwd.startswith(root):
            found.append(f"process {pid}: {cmdline!r}")
    return found


@pytest.mark.slow
@pytest.mark.root
def test_eight_processes_on_one_store(backend: BundledBackend, busybox: str, store: Store,
                                      tmp_path: Path) -> None:  # fmt: skip
    require(os.geteuid() == 0, "the workers run containers and RUN steps as root")
    outs = [tmp_path / f"w{n}.json" for n in range(WORKERS)]
    work = tmp_path / "work"
    work.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.worker",
                store.root,
                str(n),
                str(SECONDS),
                str(out),
                str(work),
            ],
            cwd=REPO,
        )  # fmt: skip
        for n, out in enumerate(outs)
    ]
    for proc in procs:
        assert proc.wait(timeout=SECONDS + 300) == 0
    done: dict[str, int] = {}
    conflicts: dict[str, int] = {}
    failures: list[str] = []
    for out in outs:
        summary = json.loads(out.read_text())
        for key, n in summary["done"].items():
            done[key] = done.get(key, 0) + n
        for key, n in summary["conflicts"].items():
            conflicts[key] = conflicts.get(key, 0) + n
        failures += summary["failures"]
    print(f"operations: {sum(done.values())} {done}; documented conflicts: {conflicts}")
    assert failures == [], "\n".join(failures[:5])
    assert sum(done.values()) >= WORKERS * 2
    assert done.get("build", 0) and done.get("prune", 0)
    report = BundledBackend(Store(store.root)).check()
    assert report.problems == [], report.problems
    assert report.garbage == [], report.garbage  # no orphan, no lease, no temp entry
    assert leftovers(store.root) == []
    record("concurrent operations", sum(done.values()))
