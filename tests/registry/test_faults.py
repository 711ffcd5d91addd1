"""Faults a registry or the network can show, served by a hostile registry: each gives a
retry where one makes sense, or one clear error, and never a corrupt or half image."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store.check import check
from ipydock.errors import ArchiveError, DigestMismatch, ManifestUnknown, RegistryError
from ipydock.testing import layer_tar
from tests.registry.hostile import HostileRegistry


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry(layer_tar({"data": os.urandom(3 << 20), "etc/x": b"x\n"}))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh(hostile: HostileRegistry) -> HostileRegistry:
    hostile.faults.clear()
    hostile.log.clear()
    return hostile


def _clean(backend: BundledBackend) -> None:
    """No image, no temp file left, and a store that check calls consistent."""
    assert backend.images() == []
    assert not os.listdir(os.path.join(backend.store.root, "tmp"))  # type: ignore[attr-defined]
    assert check(backend.store).ok  # type: ignore[attr-defined]


def _image_id(hostile: HostileRegistry) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(hostile.config).hexdigest()


def test_a_dropped_connection_resumes_with_range(backend, fresh: HostileRegistry) -> None:
    fresh.faults.add("drop")
    result = backend.pull(f"{fresh.host}/ipdr/img:1")
    assert result.id == _image_id(fresh)
    gets = [line for line in fresh.log if "/blobs/" in line and "GET" in line]
    assert len(gets) == 3  # config, the dropped layer, its rest
    assert gets[-1].endswith("-") and "bytes=" in gets[-1]  # resumed where it stopped


def test_a_dropped_connection_restarts_when_range_is_ignored(backend, fresh) -> None:
    fresh.faults.update({"drop", "no-range"})
    assert backend.pull(f"{fresh.host}/ipdr/img:1").id == _image_id(fresh)


def test_a_server_error_is_retried(backend, fresh: HostileRegistry) -> None:
    fresh.faults.add("500")
    assert backend.pull(f"{fresh.host}/ipdr/img:1").id == _image_id(fresh)
    assert sum("/manifests/1" in line for line in fresh.log) == 2


def test_too_many_requests_gives_up_with_one_error(backend, fresh: HostileRegistry) -> None:
    fresh.faults.add("429")
    with pytest.raises(RegistryError, match="too many requests; try again later") as info:
        backend.pull(f"{fresh.host}/ipdr/img:1")
    assert info.value.status == 429
    _clean(backend)


def test_an_endless_blob_is_cut_at_its_size(backend, fresh: HostileRegistry) -> None:
    fresh.faults.add("endless")
    with pytest.raises(RegistryError, match=r"blob sha256:\w+ is longer than its \d+ bytes"):
        backend.pull(f"{fresh.host}/ipdr/img:1")
    _clean(backend)


def test_unknown_or_huge_manifests_are_refused(backend, fresh: HostileRegistry) -> None:
    fresh.faults.add("bad-media")
    with pytest.raises(RegistryError, match="unsupported manifest type 'application/x-strange'"):
        backend.pull(f"{fresh.host}/ipdr/img:1")
    fresh.faults = {"huge"}
    with pytest.raises(RegistryError, match="larger than 4 MiB"):
        backend.pull(f"{fresh.host}/ipdr/img:1")
    with pytest.raises(ManifestUnknown):
        backend.pull(f"{fresh.host}/ipdr/img:2")
    _clean(backend)


@pytest.mark.parametrize("lie", ["diff ID", "corrupt gzip", "truncated gzip"])
def test_a_layer_that_is_not_what_its_config_says_is_refused(backend, lie: str) -> None:
    """The blob's digest matches the manifest, but what it decompresses to does not match the
    config's diff ID, or it does not decompress: the unpack (which reads the blob as it
    downloads, a thread ahead of the files it writes) fails with that, nothing is kept."""
    import gzip

    tar = layer_tar({"data": os.urandom(2 << 20), "etc/x": b"x\n"})
    packed = gzip.compress(tar, mtime=0)
    if lie == "diff ID":
        server = HostileRegistry(tar, diff_id="sha256:" + "0" * 64)
        error, match = DigestMismatch, r"layer \w+ \(diff ID\) digest mismatch"
    elif lie == "corrupt gzip":
        middle = len(packed) // 2
        server = HostileRegistry(tar, blob=packed[:middle] + b"\xff" * 64 + packed[middle + 64 :])
        error, match = ArchiveError, "corrupt compressed data"
    else:
        server = HostileRegistry(tar, blob=packed[: len(packed) // 2])
        error, match = ArchiveError, "compressed data ends early"
    try:
        with pytest.raises(error, match=match):
            backend.pull(f"{server.host}/ipdr/img:1")
    finally:
        server.stop()
    _clean(backend)


def test_a_layer_that_compresses_a_thousandfold_is_unpacked_whole(backend, store) -> None:
    """1 MB of gzip that is 48 MB of files (the read-ahead's pieces are many times the chunks
    they came from; what waits is bounded in bytes): every byte lands, the blob is kept."""
    data = {"zeros": b"\0" * (40 << 20), "text": b"the same line, again and again\n" * 262144}
    server = HostileRegistry(layer_tar(data))
    try:
        image = backend.pull(f"{server.host}/ipdr/img:1").id
    finally:
        server.stop()
    (layer,) = store.layer_chain(store.index().images[image])
    snapshot = store.layers.snapshot(layer.chain_id)
    for name, content in data.items():
        with open(os.path.join(snapshot, name), "rb") as f:
            assert f.read() == content
    assert store.blobs.size(layer.blob) < 1 << 20


def test_sigkill_during_a_pull_leaves_a_consistent_store_and_the_next_pull_finishes(
    root: str, fresh: HostileRegistry
) -> None:
    import signal
    import subprocess
    import sys
    import time

    from ipydock.engine.store import Store

    fresh.faults.add("slow")
    code = (
        "import sys; from ipydock.engine.store import Store; "
        "from ipydock.engine.registry.pull import pull; pull(Store(sys.argv[1]), sys.argv[2])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, root, f"{fresh.host}/ipdr/img:1"])
    tmp = os.path.join(root, "tmp")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the layer is half-way in its temp file
        parts = [os.path.join(tmp, n) for n in os.listdir(tmp) if n.startswith("pull-")] if \
            os.path.isdir(tmp) else []  # fmt: skip
        if parts and os.path.getsize(parts[0]) > len(fresh.layer) // 4:
            break
        assert proc.poll() is None, "the pull ended before it could be killed"
        time.sleep(0.01)
    else:
        raise AssertionError("the pull never started writing the layer")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(root)
    report = check(store)
    assert report.ok and report.garbage  # the temp file: harmless, removable
    assert BundledBackend(store).images() == []
    fresh.faults.clear()
    assert BundledBackend(store).pull(f"{fresh.host}/ipdr/img:1").id == _image_id(fresh)
    assert check(store, repair=True).ok
    assert not os.listdir(tmp)
