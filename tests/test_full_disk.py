"""A full disk: one clear error line, nothing half-written, the store still consistent.

The store root is a small tmpfs mounted for the test (and unmounted after it), so the disk really
runs full in the middle of ``image load``, ``image import``, a build's COPY, or, with the disk
filled up first, of a commit, a tag, a volume or a network create.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.engine.store.check import check
from ipydock.errors import NoSpace
from ipydock.testing import layer_tar, make_docker_archive
from tests.conftest import require

pytestmark = pytest.mark.root


@pytest.fixture
def tiny_root(tmp_path):
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield str(mnt / "store")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_load_on_a_full_disk_fails_cleanly(tiny_root, tmp_path, ipd_for) -> None:
    small = make_docker_archive([layer_tar({"a": b"a"})], tags=["small:1"])
    big = make_docker_archive([layer_tar({"big": os.urandom(3_000_000)})], tags=["big:1"])
    (tmp_path / "small.tar").write_bytes(small)
    (tmp_path / "big.tar").write_bytes(big)
    backend = BundledBackend(Store(tiny_root))
    backend.load(str(tmp_path / "small.tar"))

    proc = ipd_for(tiny_root, "image", "load", "-i", str(tmp_path / "big.tar"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: no space left on the device holding")
    assert proc.stderr.count("\n") == 1

    with pytest.raises(NoSpace):
        backend.load(str(tmp_path / "big.tar"))
    assert [r.repository for r in backend.images()] == ["small"]
    report = check(Store(tiny_root), repair=True)
    assert report.problems == []
    assert check(Store(tiny_root)).garbage == []
    backend.history("small:1")  # the old image is whole


@pytest.fixture
def ipd_for():
    import sys

    def run(root: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ipydock", "--root", root, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


# -- every writing operation -----------------------------------------------------------------


def fill(mnt: str) -> str:
    """Write a filler file on the tmpfs until it is full; returns its path."""
    path = os.path.join(mnt, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def state(backend: BundledBackend) -> tuple:
    return (
        sorted((i.repository, i.tag, i.id) for i in backend.images(all=True)),
        sorted(v.name for v in backend.volumes()),
        sorted(n.name for n in backend.networks()),
        sorted(c.id for c in backend.containers(all=True)),
    )


def _ctx(work: str) -> list[str]:
    os.makedirs(f"{work}/ctx", exist_ok=True)
    with open(f"{work}/ctx/big", "wb") as f:
        f.write(os.urandom(3_000_000))
    with open(f"{work}/ctx/Dockerfile", "w") as f:
        f.write("FROM small:1\nCOPY big /big\n")
    return ["build", "-t", "built:1", f"{work}/ctx"]


def _big_tar(work: str) -> list[str]:
    with open(f"{work}/big.tar", "wb") as f:
        f.write(layer_tar({"big": os.urandom(3_000_000)}))
    return ["image", "import", f"{work}/big.tar", "imported:1"]


def _commit(backend: BundledBackend, work: str) -> list[str]:
    from ipydock.models import RunOptions

    cid = backend.create_container(RunOptions(image="small:1", name="c1", network="none"))
    with open(os.path.join(backend.store.root, "containers", cid, "upper", "f"), "wb") as f:
        f.write(os.urandom(100_000))
    return ["container", "commit", "c1", "committed:1"]


# name: (make the arguments, fill the disk first); big writes need no filler
WRITES = {
    "image import": (lambda b, w: _big_tar(w), False),
    "build": (lambda b, w: _ctx(w), False),
    "container commit": (_commit, True),
    "image tag": (lambda b, w: ["image", "tag", "small:1", "other:1"], True),
    "volume create": (lambda b, w: ["volume", "create", "v1"], True),
    "network create": (lambda b, w: ["network", "create", "fullnet"], True),
}


@pytest.mark.parametrize("op", list(WRITES))
def test_each_writing_operation_on_a_full_disk(op, tiny_root, tmp_path, ipd_for) -> None:
    backend = BundledBackend(Store(tiny_root))
    backend.load(io.BytesIO(make_docker_archive([layer_tar({"a": b"a"})], tags=["small:1"])))
    make, full = WRITES[op]
    args = make(backend, str(tmp_path))
    before = state(backend)
    filler = fill(os.path.dirname(tiny_root)) if full else None
    try:
        proc = ipd_for(tiny_root, *args)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert proc.stderr.startswith("Error: no space left on the device holding"), proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert state(backend) == before  # the old state kept, nothing half-made listed
        assert check(Store(tiny_root)).problems == []
    finally:
        if filler:
            os.unlink(filler)
    report = check(Store(tiny_root), repair=True)
    assert report.problems == []
    assert check(Store(tiny_root)).garbage == []
    for net in backend.networks():
        if net.name == "fullnet":
            backend.remove_network("fullnet")
    for c in backend.containers(all=True):
        backend.remove_container(c.id, force=True)
    backend.close()
