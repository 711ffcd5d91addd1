"""Fixtures for runtime tests: a busybox root filesystem, throwaway container dirs, a Runtime.

The root filesystem is Debian's static busybox with applet symlinks, used as a single overlay
lower dir (the test image of DESIGN.md section 4 before the store can build it). Every test that
uses ``runtime`` is checked afterwards for leaks: no overlay mount of its dirs, no process left
under the helper, no cgroup dir left under the test parent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ipydock.engine.runtime import Rootfs, Runtime, Spec, Stdio, cgroups
from ipydock.engine.runtime.process import ExitStatus
from tests.conftest import require

BUSYBOX = "/usr/bin/busybox"
APPLETS = (
    *("sh", "ls", "cat", "echo", "true", "false", "id", "hostname", "sleep", "ps", "mount"),
    *("grep", "touch", "rm", "mkdir", "dd", "head", "tail", "seq", "wc", "env", "pwd", "ip"),
    *("stat", "readlink", "kill", "test", "chmod", "printf"),
)
CGROUP_PARENT = "ipydock-test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "root: needs root (mounts, namespaces)")


def make_busybox_rootfs(path: Path) -> Path:
    """A minimal image root at ``path``: /bin/busybox, applet links, /etc/passwd, /tmp."""
    (path / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    for applet in APPLETS:
        (path / "bin" / applet).symlink_to("busybox")
    (path / "etc").mkdir()
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "tmp").mkdir(mode=0o1777)
    (path / "root").mkdir(mode=0o700)
    (path / "data").mkdir()
    (path / "data" / "image.txt").write_text("from the image\n")
    return path


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(os.path.exists(BUSYBOX), "busybox-static is not installed")
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@dataclass(frozen=True)
class ContainerDirs:
    lower: Path
    upper: Path
    work: Path
    merged: Path

    def rootfs(self) -> Rootfs:
        return Rootfs.overlay([str(self.lower)], str(self.upper), str(self.work), str(self.merged))


@pytest.fixture
def container_dirs(busybox_rootfs: Path, tmp_path: Path) -> ContainerDirs:
    dirs = ContainerDirs(busybox_rootfs, tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
    for d in (dirs.upper, dirs.work, dirs.merged):
        d.mkdir()
    return dirs


@pytest.fixture
def spec(container_dirs: ContainerDirs) -> Spec:
    """``true`` in the busybox root; tests ``replace()`` what they need."""
    return Spec(rootfs=container_dirs.rootfs(), args=("true",), env=("PATH=/bin",), hostname="box")


@pytest.fixture(scope="session")
def session_runtime() -> Iterator[Runtime]:
    require(os.geteuid() == 0, "needs root")
    runtime = Runtime(cgroup_parent=CGROUP_PARENT)
    yield runtime
    runtime.close()
    cgroups.remove_parent(CGROUP_PARENT)


def helper_children(runtime: Runtime) -> list[str]:
    proc = runtime.forkserver._proc  # noqa: SLF001 - the test looks at the helper's children
    if proc is None:
        return []
    path = f"/proc/{proc.pid}/task/{proc.pid}/children"
    return Path(path).read_text().split()


def leftovers(runtime: Runtime, marker: str) -> list[str]:
    """What a finished test must not leave: overlay mounts, children, cgroup dirs."""
    found = []
    mounts = subprocess.run(
        ["findmnt", "-rn", "-t", "overlay", "-o", "TARGET,OPTIONS"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found += [f"mount: {line}" for line in mounts.splitlines() if marker in line]
    found += [f"process: {pid}" for pid in helper_children(runtime)]
    for mount in set(cgroups.v1_mounts().values()) | {cgroups.CGROUP_ROOT}:
        parent = Path(mount) / CGROUP_PARENT
        if parent.is_dir():
            found += [f"cgroup: {p}" for p in parent.iterdir() if p.is_dir()]
    return found


@pytest.fixture
def runtime(session_runtime: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    """The session's Runtime, with a leak check after the test."""
    yield session_runtime
    assert leftovers(session_runtime, str(tmp_path)) == []


def run_to_end(runtime: Runtime, spec: Spec, *args: str, stdin: bytes | None = None,
               **changes: object) -> tuple[ExitStatus, str]:  # fmt: skip
    """Run ``args`` (default: the spec's) to the end; (status, stdout+stderr)."""
    if args:
        changes["args"] = args
    spec = replace(spec, **changes)  # type: ignore[arg-type]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        stdio = Stdio(stdin=inp.fileno() if stdin is not None else None,
                      stdout=out.fileno(), stderr=out.fileno())  # fmt: skip
        with runtime.run(spec, stdio) as running:
            status = running.wait()
        assert status is not None
        out.seek(0)
        return status, out.read().decode()


@pytest.fixture
def run(runtime: Runtime):  # noqa: ANN201 - returns the helper below, bound to ``runtime``
    """``run(spec, *args, stdin=b"", **spec_changes) -> (ExitStatus, output)``."""
    return lambda spec, *args, **kw: run_to_end(runtime, spec, *args, **kw)


@pytest.fixture
def leaks(session_runtime: Runtime):  # noqa: ANN201
    """``leaks(marker) -> list`` of mounts/processes/cgroups left (mounts matched by marker)."""
    return lambda marker: leftovers(session_runtime, marker)


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def probes():  # noqa: ANN201
    """(helper_children, open_fds) for tests that watch the fork server's resources; a
    fixture, because `from conftest import` picks whichever conftest.py comes first."""
    return helper_children, open_fds
