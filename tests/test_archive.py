"""image save / load / import with real tarballs: formats, compression, bad input."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import stat
import tarfile

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.errors import ArchiveError, DigestMismatch, UnsafeArchiveEntry
from ipydock.testing import add_step, layer_tar, make_docker_archive


def consistent(store: Store) -> bool:
    from ipydock.engine.store.check import check

    return check(store).ok


def test_save_writes_docker_archive_and_oci_layout(backend, store, busybox, tmp_path) -> None:
    add_step(store, "busybox", "rm /etc/group", layer=_whiteout_layer("etc/group"), tags=["app"])
    out = str(tmp_path / "app.tar")
    backend.save(["app"], out)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert manifest[0]["RepoTags"] == ["app:latest"]
    assert all(p in names for p in manifest[0]["Layers"])
    assert (
        index["manifests"][0]["annotations"]["io.containerd.image.name"]
        == "docker.io/library/app:latest"
    )
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".ipydock-save")]


def test_save_then_load_round_trip_keeps_ids_history_and_whiteouts(
    backend, store, busybox, tmp_path
) -> None:
    app = add_step(
        store, "busybox", "rm /etc/group", layer=_whiteout_layer("etc/group"), tags=["app:1"]
    )
    out = str(tmp_path / "app.tar")
    backend.save(["app:1"], out)
    other = BundledBackend(Store(str(tmp_path / "other")))
    loaded = other.load(out)
    assert [(i.id, i.tags) for i in loaded] == [(app, ["app:1"])]
    assert [r.created_by for r in other.history("app:1")] == [
        r.created_by for r in backend.history("app:1")
    ]
    top = other.store.layer_chain(other.store.resolve("app:1"))[-1]
    if other.store.layers.driver.name == "overlay":
        wh = os.lstat(os.path.join(other.store.layers.snapshot(top.chain_id), "etc", "group"))
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0


@pytest.mark.parametrize("compress", [None, "gz", "xz"])
def test_load_accepts_compressed_archives(store, backend, tmp_path, compress) -> None:
    data = make_docker_archive([layer_tar({"hello": b"hi\n"})], tags=["hello:1"])
    if compress == "gz":
        data = gzip.compress(data)
    elif compress == "xz":
        data = lzma.compress(data)
    path = tmp_path / "in.tar"
    path.write_bytes(data)
    (loaded,) = backend.load(str(path))
    assert loaded.tags == ["hello:1"]
    assert backend.history("hello:1")[0].size == 3


def test_load_from_a_stream(backend) -> None:
    data = make_docker_archive([layer_tar({"a": b"a"})], tags=["s:1"])
    (loaded,) = backend.load(io.BytesIO(data))
    assert loaded.tags == ["s:1"]


def test_load_follows_symlinked_layers_of_the_old_layout(backend, tmp_path) -> None:
    layer = layer_tar({"f": b"1"})
    archive = make_docker_archive([layer], tags=["a:1"])
    # Rewrite as docker 1.x/20.10 does for a shared layer: the layer.tar is a symlink.
    buf = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as src,
        tarfile.open(fileobj=buf, mode="w") as out,
    ):
        for m in src.getmembers():
            if m.name.endswith("/layer.tar"):
                real = tarfile.TarInfo("shared/layer.tar")
                real.size = m.size
                out.addfile(real, src.extractfile(m))
                link = tarfile.TarInfo(m.name)
                link.type = tarfile.SYMTYPE
                link.linkname = "../shared/layer.tar"
                out.addfile(link)
            else:
                out.addfile(m, src.extractfile(m))
    (tmp_path / "sym.tar").write_bytes(buf.getvalue())
    (loaded,) = backend.load(str(tmp_path / "sym.tar"))
    assert loaded.tags == ["a:1"]


def test_load_moves_a_tag_and_reports_the_renamed_image(backend, tmp_path) -> None:
    first = make_docker_archive([layer_tar({"v": b"1"})], tags=["app:1"])
    second = make_docker_archive([layer_tar({"v": b"2"})], tags=["app:1"])
    (a,) = backend.load(io.BytesIO(first))
    (b,) = backend.load(io.BytesIO(second))
    assert b.replaced == [("app:1", a.id)]
    assert [r.id for r in backend.images(filters=["dangling=true"])] == [a.id]


def test_truncated_archive_is_refused_and_store_stays_consistent(store, backend, tmp_path) -> None:
    data = make_docker_archive([layer_tar({"big": os.urandom(100_000)})], tags=["t:1"])
    manifest_at = data.index(b"manifest.json")
    for cut in (100, len(data) // 2, manifest_at + 600):
        path = tmp_path / f"cut{cut}.tar"
        path.write_bytes(data[:cut])
        with pytest.raises(ArchiveError):
            backend.load(str(path))
        assert backend.images(all=True) == []
        assert consistent(store)


def test_corrupt_gzip_is_an_archive_error(backend, tmp_path) -> None:
    data = bytearray(gzip.compress(make_docker_archive([layer_tar({"a": b"a"})])))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.tar.gz").write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        backend.load(str(tmp_path / "bad.tar.gz"))


@pytest.mark.parametrize("files", [0, 300])
def test_layer_digest_mismatch_is_refused(backend, store, files: int) -> None:
    good = layer_tar({"a": b"a", **{f"many/f{i:03d}": b"%d" % i for i in range(files)}})
    archive = make_docker_archive([good], tags=["m:1"])
    # Same length, other bytes: the config's diff_id no longer matches the layer.
    tampered = archive.replace(b"a" * 1 + b"\0" * 511, b"b" + b"\0" * 511, 1)
    assert tampered != archive
    with pytest.raises(DigestMismatch) as info:
        backend.load(io.BytesIO(tampered))
    assert info.value.expected.startswith("sha256:")
    assert backend.images(all=True) == []
    assert list(store.blobs.digests()) == [] and list(store.layers.all()) == []  # unpacked
    assert consistent(store)  # and kept in one pass: neither stays
    assert [i.id for i in backend.load(io.BytesIO(archive))] != []
    assert store.blobs.has(info.value.expected)


def test_unsafe_layer_is_refused_naming_the_entry(backend, store, tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchiveEntry) as err:
        backend.load(io.BytesIO(make_docker_archive([buf.getvalue()], tags=["evil:1"])))
    assert "escape" in err.value.entry
    assert not os.path.exists(tmp_path / "escape")
    assert backend.images(all=True) == []
    assert consistent(store)


def test_not_an_image_archive(backend, tmp_path) -> None:
    (tmp_path / "x.tar").write_bytes(layer_tar({"readme": b"hi"}))
    with pytest.raises(ArchiveError, match="manifest.json nor index.json"):
        backend.load(str(tmp_path / "x.tar"))


def test_import_refuses_unsafe_tarball_and_keeps_nothing(backend, store, tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("etc")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc"
        tf.addfile(link)
        f = tarfile.TarInfo("etc/passwd-evil")
        f.size = 1
        tf.addfile(f, io.BytesIO(b"x"))
    (tmp_path / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveEntry):
        backend.import_image(str(tmp_path / "evil.tar"), "evil")
    assert not os.path.exists("/etc/passwd-evil")
    assert backend.images(all=True) == []
    assert list(store.blobs.digests()) == []


def test_import_is_normalised_and_reproducible(tmp_path, busybox_tgz, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = BundledBackend(Store(str(tmp_path / "a"))).import_image(busybox_tgz, "bb")
    b = BundledBackend(Store(str(tmp_path / "b"))).import_image(busybox_tgz, "bb")
    assert a == b


def _whiteout_layer(path: str) -> bytes:
    d, _, name = path.rpartition("/")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        wh = tarfile.TarInfo(f"{d}/.wh.{name}" if d else f".wh.{name}")
        tf.addfile(wh, io.BytesIO(b""))
    return buf.getvalue()


def test_concurrent_loads_from_several_processes(root, tmp_path) -> None:
    """Several kernels on one root: writers wait for each other, nothing is lost."""
    import subprocess
    import sys

    paths = []
    for i in range(4):
        data = make_docker_archive([layer_tar({f"f{i}": os.urandom(200_000)})], tags=[f"c:{i}"])
        paths.append(tmp_path / f"c{i}.tar")
        paths[-1].write_bytes(data)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ipydock", "--root", root, "load", "-i", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in paths
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = Store(root)
    assert {r.tag for r in BundledBackend(store).images()} == {"0", "1", "2", "3"}
    assert consistent(store)
