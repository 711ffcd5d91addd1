"""SIGKILL in the middle of ``image load`` at many points: the store must stay consistent.

The crash points are file-system operations, counted with a Python audit hook inside the CLI
process: the N-th such operation kills the process with SIGKILL before it happens. A first run
counts the operations; then the sweep kills at points spread over all of them and at every
rename (the commit points), and after each crash ``system check`` must pass.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.engine.store.check import check as check_store
from ipydock.models import CheckReport
from ipydock.testing import add_step

pytestmark = pytest.mark.slow

CRASHER = r"""
import os, signal, sys
EVENTS = {"open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
          "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "os.truncate", "os.listxattr",
          "os.setxattr"}
kill_at = int(sys.argv[1])
seen = []
def hook(event, args):
    if event in EVENTS:
        seen.append(event)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
import atexit
atexit.register(lambda: sys.stderr.write("EVENTS " + ",".join(seen) + "\n"))
from ipydock.cli import main
sys.exit(main(sys.argv[2:]))
"""


def crash_load(root: str, archive: str, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHER,
            str(kill_at),
            "--root",
            root,
            "image",
            "load",
            "-i",
            archive,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def check(root: str, repair: bool = False) -> CheckReport:
    return check_store(Store(root), repair=repair)


def test_sigkill_during_load_leaves_a_consistent_store(backend, store, busybox, tmp_path):
    add_step(
        store,
        "busybox",
        "rm /etc/group; add /data",
        {"data/a": b"a" * 5000, "data/b": b"b"},
        tags=["app:1"],
    )
    archive = str(tmp_path / "app.tar")
    backend.save(["app:1"], archive)
    root = str(tmp_path / "crash-root")

    counted = crash_load(root, archive, -1)
    assert counted.returncode == 0, counted.stderr
    events = counted.stderr.rsplit("EVENTS ", 1)[1].strip().split(",")
    renames = [i + 1 for i, e in enumerate(events) if e == "os.rename"]
    spread = list(range(1, len(events) + 1, max(1, len(events) // 40)))
    points = sorted(set(spread + renames + [r + 1 for r in renames]))
    assert len(points) >= 40
    print(f"{len(events)} file operations, killing at {len(points)} points")

    for point in points:
        subprocess.run(["rm", "-rf", root], check=True)
        proc = crash_load(root, archive, point)
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
        report = check(root)
        assert report.ok, (point, report)
        assert check(root, repair=True).problems == []
        assert check(root).garbage == [], point
        # And the store still works: loading again completes the image.
        assert [i.tags for i in BundledBackend(Store(root)).load(archive)] == [["app:1"]]
        assert check(root) == CheckReport(), point
    subprocess.run(["rm", "-rf", root], check=True)
