"""Fixtures shared by the whole suite: a throwaway store, the busybox test image, a real dockerd."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.testing import BUSYBOX, Dockerd, busybox_tarball

IN_CI = os.environ.get("CI") == "true"
# The suite talks to registries on this machine only (FROM of a missing image pulls, as docker's
# builder does: offline, it fails at once instead of reaching out to Docker Hub).
os.environ["IPYDOCK_OFFLINE"] = "1"


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; in CI nothing may be skipped."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI must run this test: {why}")
        pytest.skip(why)


CGROUP_ROOT = "/sys/fs/cgroup"


def _ipydock_cgroups() -> set[str]:
    """Every cgroup directory named ipydock* (any depth below a controller's top)."""
    found: set[str] = set()
    if not os.path.isdir(CGROUP_ROOT):
        return found
    for controller in os.listdir(CGROUP_ROOT):
        top = os.path.join(CGROUP_ROOT, controller)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for name in os.listdir(top):
            if name.startswith("ipydock"):
                for dirpath, _dirs, _files in os.walk(os.path.join(top, name)):
                    found.add(dirpath)
    return found


@pytest.fixture(scope="session", autouse=True)
def no_cgroups_left_behind() -> Iterator[None]:
    """The engine creates parent cgroups (ipydock, ipydock-build, test parents) on first use;
    a test run removes the empty parents it created. Containers' own cgroups are the leak
    fixtures' business (tests/containers, builder, runtime): never swept here, so that this
    run cannot take the cgroup of a container another test run on this machine just made."""
    before = _ipydock_cgroups()
    yield
    made = _ipydock_cgroups() - before
    parents = {p for p in made if os.path.dirname(os.path.dirname(p)) == CGROUP_ROOT}
    for path in sorted(parents):
        with contextlib.suppress(OSError):
            os.rmdir(path)


@pytest.fixture(scope="session")
def busybox_tgz(tmp_path_factory: pytest.TempPathFactory) -> str:
    require(os.path.exists(BUSYBOX), "busybox-static is not installed")
    return busybox_tarball(str(tmp_path_factory.mktemp("busybox") / "rootfs.tar.gz"))


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def store(root: str) -> Store:
    return Store(root)


@pytest.fixture
def backend(store: Store) -> BundledBackend:
    return BundledBackend(store)


@pytest.fixture
def busybox(backend: BundledBackend, busybox_tgz: str) -> str:
    """The busybox test image, imported as ``busybox:latest``; returns its ID."""
    return backend.import_image(busybox_tgz, "busybox", changes=['CMD ["sh"]'])


@pytest.fixture(scope="session", autouse=True)
def private_default_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Containers run on the default bridge, as in docker: the suite's is its own (a bridge
    named for this run, its state in a temp dir), removed at the end if nothing uses it."""
    os.environ["IPYDOCK_DEFAULT_BRIDGE"] = f"ipdn-t{os.getpid() % 100000}"
    os.environ["IPYDOCK_NET_RUN"] = str(tmp_path_factory.mktemp("netrun"))
    os.environ["IPYDOCK_LINK_PREFIX"] = f"ipdns{os.getpid() % 1000:03d}"  # bridges, veths
    yield
    if os.geteuid() == 0:
        from ipydock.engine.network.bridge import drop_default_bridge

        drop_default_bridge()


@pytest.fixture(scope="session", autouse=True)
def command_server_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's CLI calls go through a command server of its own (``ipydock.launcher``),
    in a private runtime dir; it is stopped at the end (its commands finish first)."""
    from ipydock.cli import server

    path = str(tmp_path_factory.mktemp("runtime"))
    old = os.environ.get("IPYDOCK_RUNTIME_DIR")
    os.environ["IPYDOCK_RUNTIME_DIR"] = path
    try:
        yield path
    finally:
        server.stop(path)  # every one: a source change mid-run makes a caller start another
        if old is None:
            del os.environ["IPYDOCK_RUNTIME_DIR"]
        else:
            os.environ["IPYDOCK_RUNTIME_DIR"] = old


Ipd = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ipd(root: str) -> Ipd:
    """Run the real CLI (``python -m ipydock --root ROOT …``) in a subprocess."""

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "ipydock", "--root", root, *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ipydock {' '.join(args)} failed: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def skopeo() -> str:
    path = shutil.which("skopeo")
    require(path is not None, "skopeo is not installed")
    return str(path)


@contextlib.contextmanager
def private_dockerd() -> Iterator[Dockerd]:
    """A real dockerd (Debian's docker.io, 20.10) with its own data root, in a network
    namespace of its own (``unshare --net``): the bridges of the networks tests create there
    never touch the host. Stopped, and its mounts undone, on exit."""
    require(os.geteuid() == 0, "dockerd needs root")
    require(
        shutil.which("dockerd") is not None or os.path.exists("/usr/sbin/dockerd"),
        "docker.io is not installed",
    )
    require(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    d = Dockerd()
    try:
        d.start()
    except RuntimeError as exc:
        require(False, f"dockerd did not start: {exc}")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """The session's dockerd, for side-by-side builds and interop."""
    with private_dockerd() as d:
        yield d


@pytest.fixture(scope="session")
def cluster(busybox_tgz: str) -> Iterator[object]:
    """A real two-node Docker Swarm in namespaces of its own (tests/engines/swarm.py), for the
    swarm tests and the cluster notebook; one per session."""
    from tests.engines.swarm import two_node_swarm

    with two_node_swarm(busybox_tgz) as c:
        yield c


# -- reliability: counts printed at the end of a run (tests/reliability) --------------------


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    from tests.reliability.counts import summary

    line = summary()
    if line:
        terminalreporter.write_line(f"reliability: {line}")


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After every test module: no mount, process, link, netns, firewall rule, cgroup, DNS
    record or store temp entry that this run made is left (tests/reliability/leaks.py)."""
    from tests.reliability import leaks
    from tests.reliability.counts import record

    base = str(tmp_path_factory.getbasetemp())
    before = leaks.snapshot(base)
    yield
    found = leaks.new_leaks(before, base)
    record("leaked objects", sum(len(v) for v in found.values()))
    left = {kind: items for kind, items in found.items() if items}
    if left:
        pytest.fail(f"left behind by this module: {left}", pytrace=False)
