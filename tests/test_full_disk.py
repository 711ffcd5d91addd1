"""A full disk: one clear error line, nothing half-written, the store still consistent.

The store root is a small tmpfs mounted for the test (and unmounted after it), so the disk really
runs full in the middle of ``image load`` / ``image import``.
"""

from __future__ import annotations

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
