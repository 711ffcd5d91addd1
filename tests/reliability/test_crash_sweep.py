"""SIGKILL at store writes during every writing operation: the store stays consistent.

Each operation is run once through ``crasher.py`` to count its store writes (a file opened for
writing, a rename, mkdir, remove... under the store root: crasher.py), then again on a fresh
copy of the same store, killed before write N, for N over a sample (the first and last writes,
spread points, a rename and a seeded random one) or, in the slow test, over every other write
(``IPYDOCK_CRASH_STRIDE=K``: every Kth): the two tests together kill at every write once.
After each crash:

- ``system check`` finds no problem (garbage is allowed: a crash leaves temp files);
- nothing half-made is listed: every image, container, volume and network listed inspects;
- the operation run again succeeds (or its effect was complete before: rm of a removed image);
- ``system check --repair`` then leaves a store with neither problems nor garbage.

The counts are printed ("crash points: N") and summed into the run's reliability line. Only
writes under the store root are counted: a network's kernel objects and its host-wide state
(``IPYDOCK_NET_RUN``) are not the store's.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.models import RunOptions
from ipydock.testing import LocalRegistry, add_step, layer_tar
from tests.conftest import require
from tests.reliability.counts import record

CRASHER = str(Path(__file__).with_name("crasher.py"))
STRIDE = int(os.environ.get("IPYDOCK_CRASH_STRIDE", "1"))  # the full sweep: every Nth write
REPO = str(Path(__file__).parents[2])


@dataclass(frozen=True)
class Op:
    name: str
    args: Callable[[Path], list[str]]  # the CLI words, given the test's work dir
    setup: Callable[[BundledBackend, Path], None]
    done: Callable[[BundledBackend], bool]  # its effect is there (whole)
    root_only: bool = False


def _tags(b: BundledBackend) -> set[str]:
    return {f"{i.repository}:{i.tag}" for i in b.images()}


def _nothing(b: BundledBackend, work: Path) -> None:
    pass


def _context(b: BundledBackend, work: Path) -> None:
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "a").write_bytes(b"a" * 3000)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a /a\nENV X=1\nCOPY a /b\n")


def _run_context(b: BundledBackend, work: Path) -> None:
    ctx = work / "runctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo made > /made && mkdir /d\n")


def _container(b: BundledBackend, work: Path) -> None:
    cid = b.create_container(RunOptions(image="busybox", name="c1", network="none"))
    upper = os.path.join(b.store.root, "containers", cid, "upper")
    with open(os.path.join(upper, "made"), "w") as f:
        f.write("in the container")


def _tagged(b: BundledBackend, work: Path) -> None:
    add_step(b.store, "busybox", "/bin/sh -c make", {"app/x": b"x" * 2000}, tags=["app:r"])


def _dangling(b: BundledBackend, work: Path) -> None:
    for n in range(2):
        add_step(b.store, "busybox", f"/bin/sh -c step{n}", {f"f{n}": b"y" * 1000})


def _running(b: BundledBackend, work: Path) -> None:
    b.create_network("crashnet")
    b.run(RunOptions(image="busybox", name="c1", command=("sleep", "600"), network="bridge"),
          detach=True)  # fmt: skip


def _connected(b: BundledBackend) -> bool:
    return [e.name for e in b.inspect_network("crashnet").containers] == ["c1"]


def _volume(b: BundledBackend, work: Path) -> None:
    b.create_volume("v2")
    with open(os.path.join(b.inspect_volume("v2").mountpoint, "data"), "w") as f:
        f.write("kept")


OPS = [
    Op("build", lambda w: ["build", "-t", "app:b", str(w / "ctx")], _context,
       lambda b: "app:b" in _tags(b)),
    Op("build RUN", lambda w: ["build", "-t", "app:run", str(w / "runctx")], _run_context,
       lambda b: "app:run" in _tags(b), root_only=True),
    Op("commit", lambda w: ["container", "commit", "c1", "app:c"], _container,
       lambda b: "app:c" in _tags(b), root_only=True),
    Op("image rm", lambda w: ["image", "rm", "app:r"], _tagged,
       lambda b: "app:r" not in _tags(b)),
    Op("image prune", lambda w: ["image", "prune", "-f"], _dangling,
       lambda b: not b.images(filters=["dangling=true"])),
    Op("image import", lambda w: ["image", "import", str(w / "small.tar"), "imp:1"],
       _nothing, lambda b: "imp:1" in _tags(b)),
    Op("image pull", lambda w: ["image", "pull", (w / "ref").read_text()], _nothing,
       lambda b: any(t.endswith("/ipdr/crash:1") for t in _tags(b))),
    Op("volume create", lambda w: ["volume", "create", "v1"], _nothing,
       lambda b: "v1" in {v.name for v in b.volumes()}),
    Op("volume rm", lambda w: ["volume", "rm", "v2"], _volume,
       lambda b: "v2" not in {v.name for v in b.volumes()}),
    Op("network create", lambda w: ["network", "create", "crashnet"], _nothing,
       lambda b: "crashnet" in {n.name for n in b.networks()}, root_only=True),
    Op("network connect", lambda w: ["network", "connect", "crashnet", "c1"], _running,
       _connected, root_only=True),
]  # fmt: skip


def crash(root: str, args: list[str], kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, CRASHER, str(kill_at), root, *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip


def ipd(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydock", "--root", root, *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def sample(writes: list[str], seed: str) -> list[int]:
    """The points a default run kills at: the first and last write, four spread ones, a rename
    (a commit point) and a random one, both seeded (the same on every run of the same code)."""
    n = len(writes)
    rnd = random.Random(seed)
    renames = [i + 1 for i, e in enumerate(writes) if e == "os.rename"]
    picked = {1, n, rnd.randint(1, n)} | {1 + k * (n - 1) // 5 for k in range(1, 5)}
    if renames:
        picked.add(rnd.choice(renames))
    return sorted(picked)


def store_problems(b: BundledBackend, problems: list[str]) -> list[str]:
    """The problems but one state network create leaves by design when killed between its
    record and its bridge: a network nobody is on, whose bridge and rules are made at first
    use (or by ``check --repair``, asserted after). Host objects, not the store's files."""
    unused = {n.name for n in b.networks() if not n.containers}
    return [p for p in problems
            if not (p.startswith("network ") and p.split(":")[0][8:] in unused
                    and p.endswith(("is missing", "are missing")))]  # fmt: skip


def listed_whole(b: BundledBackend) -> None:
    """Everything a listing shows can be opened: nothing half-made is listed."""
    for image in b.images(all=True):
        b.history(image.id)
    for c in b.containers(all=True):
        b.inspect_container(c.id)
    for v in b.volumes():
        assert os.path.isdir(b.inspect_volume(v.name).mountpoint), v
    for n in b.networks():
        b.inspect_network(n.name)


@pytest.fixture(scope="module")
def template(tmp_path_factory, busybox_tgz) -> Iterator[Path]:
    """A store with busybox, and the work files the operations read; copied for each point.
    Imported and pulled images are small (a few files of each kind): the sweep is about the
    store's commit points, not about one more file of a large layer."""
    work = tmp_path_factory.mktemp("crash")
    small = {"bin": None, "bin/tool": b"#!/bin/sh\n", "etc": None, "etc/conf": b"c" * 5000,
             "etc/empty": b""}  # fmt: skip
    (work / "small.tar").write_bytes(layer_tar(small))
    b = BundledBackend(Store(str(work / "template")))
    b.import_image(busybox_tgz, "busybox", changes=['CMD ["sh"]'])
    b.close()
    yield work


@pytest.fixture(scope="module")
def pushed(template: Path) -> Iterator[None]:
    """A two-layer image in a local docker-registry, for the pull: a kill can fall between
    one layer's kept blob or snapshot and the other's, and the next pull reuses what is
    there."""
    from tests.registry.conftest import need_registry

    need_registry()
    reg = LocalRegistry(prefix="ipdr-crash-").start()
    try:
        ref = f"{reg.host}/ipdr/crash:1"
        b = BundledBackend(Store(str(template / "pushing")))
        b.import_image(str(template / "small.tar"), "crash-base")
        add_step(b.store, "crash-base", "RUN make", {"opt": None, "opt/made": b"m" * 3000},
                 tags=[ref])  # fmt: skip
        b.push(ref)
        (template / "ref").write_text(ref)
        yield
    finally:
        reg.stop()


def fresh(template: Path, name: str) -> str:
    root = template / name
    if root.exists():
        cleanup(str(root))
    subprocess.run(["cp", "-a", str(template / "template"), str(root)], check=True)
    return str(root)


def cleanup(root: str) -> None:
    """What a point made outside its store: bridges and rules of its networks."""
    b = BundledBackend(Store(root))
    if os.geteuid() == 0:
        for c in b.containers(all=True):
            b.remove_container(c.id, force=True)
        for net in b.networks():
            if net.name == "crashnet":
                b.remove_network(net.name)
    b.close()
    subprocess.run(["rm", "-rf", root], check=True)


def sweep(op: Op, work: Path, full: bool) -> int:
    if op.root_only:
        require(os.geteuid() == 0, f"{op.name} needs root")
    root = fresh(work, "count")
    op.setup(BundledBackend(Store(root)), work)
    counted = crash(root, op.args(work), 0)
    assert counted.returncode == 0, counted.stderr
    writes = counted.stderr.rsplit("WRITES ", 1)[1].strip().split(",")
    cleanup(root)
    points = sample(writes, op.name)
    if full:  # the rest: the default test has killed at the sample (CI runs both)
        points = [p for p in range(1, len(writes) + 1, STRIDE) if p not in points]
    for point in points:
        root = fresh(work, "point")
        b = BundledBackend(Store(root))
        op.setup(b, work)
        proc = crash(root, op.args(work), point)
        assert proc.returncode in (0, -signal.SIGKILL), (op.name, point, proc.stderr)
        report = b.check()
        assert store_problems(b, report.problems) == [], (op.name, point, report)
        listed_whole(b)
        done_before = op.done(b)
        again = ipd(root, *op.args(work))
        assert again.returncode == 0 or done_before, (op.name, point, again.stderr)
        assert op.done(b), (op.name, point)
        assert b.check(repair=True).problems == [], (op.name, point)
        assert b.check().garbage == [], (op.name, point)
        assert [n for n in os.listdir(root) if n.endswith(".tmp")] == [], (op.name, point)
        b.close()
        cleanup(root)
    print(f"{op.name}: {len(writes)} store writes, crash points: {len(points)}")
    record("crash points", len(points))
    return len(points)


@pytest.mark.root
@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_sigkill_at_sampled_store_writes(op: Op, template: Path, request) -> None:
    if op.name == "image pull":
        request.getfixturevalue("pushed")
    sweep(op, template, full=False)


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_sigkill_at_every_store_write(op: Op, template: Path, request) -> None:
    if op.name == "image pull":
        request.getfixturevalue("pushed")
    sweep(op, template, full=True)
