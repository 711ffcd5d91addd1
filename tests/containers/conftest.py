"""Fixtures for container tests: a store with busybox, and a leak check after every test.

Every test must leave nothing behind: after it, each container is removed with ``rm -f`` and
the check asserts there is no supervisor or container process of this store, no cgroup under
the test parent, no overlay mount naming the store, and no container directory.
"""

from __future__ import annotations

import itertools
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipydock import native_launcher
from ipydock.engine.runtime import cgroups
from tests.conftest import require

_counter = itertools.count()
#: The ``ipydock`` command as the Python client (``ipydock.launcher``).
PYTHON_CLIENT = [sys.executable, "-m", "ipydock"]


def processes_using(root: str) -> list[str]:
    """Live processes with a file, or their working directory, under ``root``: supervisors
    hold their container's log and ctl fifo open, whichever process forked them (the CLI, the
    command server's worker, a kernel's helper)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            targets = [os.readlink(f"/proc/{pid}/cwd")]
            targets += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:  # gone, or a zombie
            continue
        if any(t == root or t.startswith(root + "/") for t in targets):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append(f"{pid}: {cmdline}")
    return found


def settled_processes_using(root: str, timeout: float = 30) -> list[str]:
    """:func:`processes_using` once those processes had ``timeout`` seconds to exit: the
    supervisor of a ``--rm`` container deletes its files after its starter has gone on."""
    for entry in processes_using(root):
        try:
            fd = os.pidfd_open(int(entry.split(":")[0]))
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    return processes_using(root)


def leftovers(root: str, cgroup_parent: str) -> list[str]:
    found = settled_processes_using(root)
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET,OPTIONS"], capture_output=True,
                            text=True, check=False).stdout  # fmt: skip
    found += [f"mount: {line}" for line in mounts.splitlines() if root in line]
    for mount in set(cgroups.v1_mounts().values()) | {cgroups.CGROUP_ROOT}:
        parent = Path(mount) / cgroup_parent
        if parent.is_dir():
            found += [f"cgroup: {p}" for p in parent.iterdir() if p.is_dir()]
    containers = Path(root) / "containers"
    if containers.is_dir():
        found += [f"container dir: {p.name}" for p in containers.iterdir()]
    return found


@pytest.fixture
def engine(backend, busybox, root: str) -> Iterator:
    """The bundled backend with busybox:latest; every container is gone afterwards."""
    require(os.geteuid() == 0, "needs root")
    # A cgroup parent of this test's own: other sessions may run these tests at the same time.
    parent = f"ipydock-ctest-{os.getpid()}-{next(_counter)}"
    os.environ["IPYDOCK_CGROUP_PARENT"] = parent  # supervisors (and the warm helper) inherit it
    try:
        yield backend
        for row in backend.containers(all=True):
            backend.remove_container(row.id, force=True, volumes=True)
        backend.close()
        assert leftovers(root, parent) == []
    finally:
        backend.close()
        cgroups.remove_parent(parent)
        del os.environ["IPYDOCK_CGROUP_PARENT"]


@pytest.fixture(scope="session")
def native_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The native client, compiled for this interpreter (warnings-clean)."""
    require(native_launcher.compiler() is not None, "no C compiler (cc)")
    path = str(tmp_path_factory.mktemp("native") / "ipydock")
    assert native_launcher.build(path) == ""  # no warnings
    return path


@pytest.fixture(params=["python", "native"])
def client(request: pytest.FixtureRequest) -> list[str]:
    """The ``ipydock`` command: the Python client or the native one."""
    if request.param == "python":
        return PYTHON_CLIENT
    return [request.getfixturevalue("native_client")]
