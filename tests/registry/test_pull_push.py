"""pull and push against a real docker-registry, cross-checked with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.registry.client import Registry
from ipydock.engine.store import Store
from ipydock.engine.store.check import check
from ipydock.errors import (
    DigestMismatch,
    ImageNotFound,
    ManifestUnknown,
    RegistryError,
    RegistryUnreachable,
    UsageError,
)
from ipydock.models import TransferEvent
from ipydock.testing import LocalRegistry, add_step, free_port, layer_tar


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _skopeo_copy(skopeo: str, src: str, dest: str) -> None:
    tls = [f"--{side}-tls-verify=false" for side, ref in (("src", src), ("dest", dest))
           if ref.startswith("docker://")]  # fmt: skip
    proc = subprocess.run([skopeo, "copy", *tls, src, dest], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_pushed_image_is_read_by_skopeo_and_pulled_with_the_same_id(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend, skopeo: str, tmp_path
) -> None:
    add_step(backend.store, "busybox", "echo", layer=layer_tar({"hello": b"hi\n"}), tags=["app"])
    app_id = backend.inspect_image("app").id
    backend.tag("app", f"{repo}:1")
    events: list[TransferEvent] = []
    pushed = backend.push(f"{repo}:1", progress=events.append)

    assert pushed.tag == "1" and pushed.digest.startswith("sha256:")
    lines = [e.text for e in events if not e.id]
    assert lines[0] == f"The push refers to repository [{repo}]"
    assert lines[-1] == f"1: digest: {pushed.digest} size: {pushed.size}"
    assert sum(e.status == "Pushed" for e in events) == 2  # two layers
    assert backend.inspect_image(f"{repo}:1").repo_digests == [f"{repo}@{pushed.digest}"]

    inspect = [skopeo, "inspect", "--raw", "--tls-verify=false"]
    out = subprocess.run([*inspect, f"docker://{repo}:1"], check=True, capture_output=True).stdout
    assert _sha(out) == pushed.digest
    raw = json.loads(out)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert raw["config"]["digest"] == app_id
    config = subprocess.run(
        [*inspect, "--config", f"docker://{repo}:1"], check=True, capture_output=True
    ).stdout
    assert _sha(config) == app_id
    _skopeo_copy(skopeo, f"docker://{repo}:1", f"oci:{tmp_path}/oci:app")  # layers verified

    pulled = other.pull(f"{repo}:1")
    assert pulled.id == app_id
    assert pulled.digest == pushed.digest
    assert other.inspect_image(f"{repo}:1").repo_digests == [f"{repo}@{pushed.digest}"]
    [row] = other.images()
    assert (row.tag, row.digest) == ("1", pushed.digest)
    assert check(other.store).ok  # type: ignore[attr-defined]


def test_image_pushed_by_skopeo_is_pulled_with_its_docker_image_id(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend, skopeo: str, tmp_path
) -> None:
    tar = str(tmp_path / "bb.tar")
    backend.save(["busybox"], tar)
    _skopeo_copy(skopeo, f"docker-archive:{tar}", f"docker://{repo}:from-skopeo")
    events: list[TransferEvent] = []
    result = other.pull(f"{repo}:from-skopeo", progress=events.append)
    assert result.id == busybox
    assert result.status == f"Downloaded newer image for {repo}:from-skopeo"
    statuses = [e.status for e in events if e.id]
    assert statuses[0] == "Pulling fs layer" and statuses[-1] == "Pull complete"
    assert "Verifying Checksum" in statuses
    # again: nothing to fetch; by digest: the same image, named by that digest
    events.clear()
    again = other.pull(f"{repo}:from-skopeo", progress=events.append)
    assert again.status == f"Image is up to date for {repo}:from-skopeo"
    assert [e.status for e in events if e.id] == ["Already exists"]
    by_digest = other.pull(f"{repo}@{result.digest}")
    assert by_digest.id == busybox and by_digest.reference == f"{repo}@{result.digest}"
    assert other.inspect_image(f"{repo}@{result.digest}").id == busybox


def test_second_push_skips_layers_and_other_repository_mounts(
    backend: BundledBackend, busybox: str, repo: str
) -> None:
    backend.tag("busybox", f"{repo}:a")
    first = backend.push(f"{repo}:a")
    events: list[TransferEvent] = []
    backend.push(f"{repo}:a", progress=events.append)
    assert [e.status for e in events if e.id] == ["Preparing", "Layer already exists"]
    backend.tag("busybox", f"{repo}-copy:b")
    events.clear()
    second = backend.push(f"{repo}-copy:b", progress=events.append)
    assert [e.status for e in events if e.id][-1] == f"Mounted from {repo.split('/', 1)[1]}"
    assert second.digest == first.digest  # the same blobs, so the same manifest


def test_pull_picks_this_platform_from_an_index(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend
) -> None:
    backend.tag("busybox", f"{repo}:single")
    pushed = backend.push(f"{repo}:single")
    entry = {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": pushed.digest,
        "size": pushed.size,
    }
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**entry, "platform": {"os": "linux", "architecture": "s390x"}},
            {**entry, "platform": {"os": "linux", "architecture": _arch()}},
        ],
    }
    body = json.dumps(index).encode()
    with Registry(repo.split("/", 1)[0]) as reg:
        reg.put_manifest(repo.split("/", 1)[1], "multi", body, index["mediaType"])
    result = other.pull(f"{repo}:multi")
    assert result.id == busybox
    assert result.digest == _sha(body)  # RepoDigests name the index, as docker's do
    assert other.inspect_image(f"{repo}:multi").repo_digests == [f"{repo}@{_sha(body)}"]
    assert other.pull(f"{repo}:multi", platform="linux/s390x").id == busybox
    with pytest.raises(RegistryError, match=r"no image for linux/riscv64 \(it has: linux/s390x"):
        other.pull(f"{repo}:multi", platform="linux/riscv64")
    with pytest.raises(UsageError, match="OS/ARCH"):
        other.pull(f"{repo}:multi", platform="amd64")


def test_zstd_and_gzip_layers_in_an_oci_manifest(
    repo: str, other: BundledBackend, busybox_tgz: str
) -> None:
    import zstandard

    with open(busybox_tgz, "rb") as f:
        base = gzip.decompress(f.read())
    top = layer_tar({"etc/motd": b"zstd layer\n"})
    blobs = [gzip.compress(base), zstandard.ZstdCompressor().compress(top)]
    config = json.dumps({
        "architecture": _arch(), "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(base), _sha(top)]},
        "history": [{"created_by": "a"}, {"created_by": "b"}, {"created_by": "c"}],
    }).encode()  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha(config), "size": len(config)},  # fmt: skip
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": _sha(blobs[0]), "size": len(blobs[0])},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
             "digest": _sha(blobs[1]), "size": len(blobs[1])},
        ],
    }  # fmt: skip
    host, name = repo.split("/", 1)
    with Registry(host) as reg:
        for blob in [*blobs, config]:
            reg.upload(name, _sha(blob), len(blob), lambda b=blob: iter([b]))
        reg.put_manifest(name, "zstd", json.dumps(manifest).encode(), manifest["mediaType"])
    result = other.pull(f"{repo}:zstd")
    assert result.id == _sha(config)
    detail = other.inspect_image(result.id)
    assert detail.rootfs["diff_ids"] == [_sha(base), _sha(top)]
    assert [f.path for f in other.image_layers(result.id)[1].files] == ["etc/motd"]
    # three history steps for two layers (as some tools write it): shown, not a crash
    assert [r.created_by for r in other.history(result.id)] == ["c", "b", "a"]


def test_a_tampered_blob_is_refused_and_nothing_is_kept(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend,
    registry: LocalRegistry,
) -> None:  # fmt: skip
    backend.tag("busybox", f"{repo}:bad")
    backend.push(f"{repo}:bad")
    with Registry(registry.host) as reg:
        body, _ = reg.get_manifest(repo.split("/", 1)[1], "bad", "bad")
    layer = json.loads(body)["layers"][0]["digest"]
    path = registry.blob_path(layer)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(data)
    try:
        with pytest.raises(DigestMismatch) as info:
            other.pull(f"{repo}:bad")
        assert info.value.expected == layer
        assert f"layer {layer[7:19]} from 127.0.0.1" in str(info.value)
        assert other.images() == []
        assert not os.listdir(os.path.join(other.store.root, "tmp"))  # type: ignore[attr-defined]
        assert check(other.store).ok  # type: ignore[attr-defined]
    finally:
        data[len(data) // 2] ^= 0xFF
        with open(path, "wb") as f:
            f.write(data)


def test_bad_names_unknown_images_and_unreachable_registries(
    backend: BundledBackend, repo: str, registry: LocalRegistry
) -> None:
    with pytest.raises(ManifestUnknown, match=r"manifest for .*/ipdr/.*:nope not found"):
        backend.pull(f"{repo}:nope")
    with pytest.raises(ManifestUnknown):
        backend.pull(f"{registry.host}/ipdr/no-such-repo")
    with pytest.raises(ImageNotFound, match="tag it first"):
        backend.push(f"{repo}:never-tagged")
    with pytest.raises(UsageError, match="not a digest"):
        backend.push(f"{repo}@sha256:" + "0" * 64)
    with pytest.raises(RegistryUnreachable, match=r"cannot reach the registry 127\.0\.0\.1:\d+"):
        backend.pull(f"127.0.0.1:{free_port()}/ipdr/x")


def test_cli_prints_docker_pull_and_push_lines(ipd, busybox_tgz, repo: str) -> None:
    ipd("image", "import", "-c", 'CMD ["sh"]', busybox_tgz, f"{repo}:cli")
    push = ipd("push", f"{repo}:cli").stdout.splitlines()
    assert push[0] == f"The push refers to repository [{repo}]"
    assert push[1].endswith(": Preparing") and push[2].endswith(": Pushed")
    assert push[-1].startswith("cli: digest: sha256:") and " size: " in push[-1]
    ipd("rmi", f"{repo}:cli")
    pull = ipd("pull", f"{repo}:cli").stdout.splitlines()
    assert pull[0] == f"cli: Pulling from {repo.split('/', 1)[1]}"
    assert pull[-3].startswith("Digest: sha256:")
    assert pull[-2] == f"Status: Downloaded newer image for {repo}:cli"
    assert pull[-1] == f"{repo}:cli"
    digests = ipd("images", "--digests").stdout.splitlines()
    assert digests[0].split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert digests[1].split()[2] == pull[-3].split()[1]
    assert ipd("pull", "-q", f"{repo}:cli").stdout == f"{repo}:cli\n"
    bad = ipd("pull", f"{repo}:missing", check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: manifest for") and bad.stderr.count("\n") == 1


def _arch() -> str:
    from ipydock.engine.registry.pull import host_platform

    return host_platform()[1]


def test_chunked_upload_gives_the_same_blobs(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend, skopeo: str, tmp_path
) -> None:
    from ipydock.engine.registry.push import push

    backend.tag("busybox", f"{repo}:chunked")
    events: list[TransferEvent] = []
    result = push(backend.store, f"{repo}:chunked", progress=events.append, chunk_size=256 << 10)  # type: ignore[attr-defined]
    pushing = [e for e in events if e.status == "Pushing"]
    assert len(pushing) >= 4 and pushing[-1].current == pushing[-1].total
    _skopeo_copy(skopeo, f"docker://{repo}:chunked", f"oci:{tmp_path}/oci:c")
    assert other.pull(f"{repo}:chunked").id == busybox
    assert other.pull(f"{repo}@{result.digest}").id == busybox


def test_from_pulls_a_missing_base_image(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend, tmp_path
) -> None:
    from ipydock.models import BuildEvent

    backend.tag("busybox", f"{repo}:base")
    backend.push(f"{repo}:base")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {repo}:base\nENV GREETING=hi\n")
    events: list[BuildEvent] = []
    result = other.build(str(tmp_path / "ctx"), tags=["app"], progress=events.append)
    output = [e.text for e in events if e.kind == "output" and e.step == 1]
    assert output[0] == f"base: Pulling from {repo.split('/', 1)[1]}"
    assert output[-1] == f"Status: Downloaded newer image for {repo}:base"
    assert other.inspect_image(f"{repo}:base").id == busybox
    assert other.history("app")[-1].id == busybox
    assert result.image_id == other.inspect_image("app").id


def test_offline_means_no_registry_beyond_this_machine(backend: BundledBackend) -> None:
    assert os.environ["IPYDOCK_OFFLINE"] == "1"  # set for the whole suite by tests/conftest.py
    with pytest.raises(RegistryUnreachable, match="offline"):
        backend.pull("busybox")


def test_rmi_of_digest_references_as_docker_does(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend
) -> None:
    backend.tag("busybox", f"{repo}:rmi")
    digest = backend.push(f"{repo}:rmi").digest
    other.pull(f"{repo}:rmi")
    by_digest = f"{repo}@{digest}"
    events = other.remove_image(by_digest)
    assert [(e.action, e.target) for e in events] == [("untagged", by_digest)]
    assert other.inspect_image(f"{repo}:rmi").repo_digests == []  # the tag keeps the image
    other.pull(f"{repo}:rmi")
    events = other.remove_image(f"{repo}:rmi")  # the last tag: its digest goes with it
    assert [(e.action, e.target) for e in events][:2] == [
        ("untagged", f"{repo}:rmi"), ("untagged", by_digest),
    ]  # fmt: skip
    assert ("deleted", busybox) in [(e.action, e.target) for e in events]
    assert other.images() == []


def test_cli_push_all_tags(ipd, busybox_tgz, repo: str) -> None:
    ipd("image", "import", busybox_tgz, f"{repo}:one")
    ipd("tag", f"{repo}:one", f"{repo}:two")
    out = ipd("push", "-a", repo).stdout.splitlines()
    assert [line.split(":")[0] for line in out if ": digest: " in line] == ["one", "two"]
    assert ipd("push", "--all-tags", "-q", repo).stdout == f"{repo}:one\n{repo}:two\n"
    bad = ipd("push", "-a", f"{repo}:one", check=False)
    assert bad.returncode == 1 and "can't be used with --all-tags" in bad.stderr


def test_an_image_pulled_by_digest_is_listed_and_not_dangling(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend
) -> None:
    backend.tag("busybox", f"{repo}:d")
    digest = backend.push(f"{repo}:d").digest
    other.pull(f"{repo}@{digest}")
    [row] = other.images()
    assert (row.repository, row.tag, row.digest, row.id) == (repo, "<none>", digest, busybox)
    assert other.images(filters=["dangling=true"]) == []
    assert other.prune_images().deleted == []  # named by its digest: prune keeps it
    events = other.remove_image(f"{repo}@{digest}")
    assert [(e.action, e.target) for e in events][:2] == [
        ("untagged", f"{repo}@{digest}"), ("deleted", busybox),
    ]  # fmt: skip
    assert other.images() == []


def test_a_pulled_image_runs(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend
) -> None:
    from ipydock.models.containers import RunOptions
    from tests.conftest import require

    require(os.geteuid() == 0, "runs a container as root")
    backend.tag("busybox", f"{repo}:run")
    backend.push(f"{repo}:run")
    other.pull(f"{repo}:run")
    lines: list[str] = []
    opts = RunOptions(f"{repo}:run", ("sh", "-c", "echo pulled and running"), auto_remove=True)
    try:
        result = other.run(opts, output=lambda _stream, text: lines.append(text))
    finally:
        other.close()  # type: ignore[attr-defined]
    assert result.exit_code == 0
    assert "".join(lines) == "pulled and running\n"
    assert not os.listdir(os.path.join(other.store.root, "containers"))  # type: ignore[attr-defined]


def test_a_pulled_image_is_pushed_with_the_blobs_it_came_in(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend, skopeo: str, tmp_path
) -> None:
    """skopeo gzips the layer its own way; the pull keeps that blob, and a push to another
    registry sends it unchanged: the same layer digests, media types and config."""
    tar = str(tmp_path / "bb.tar")
    backend.save(["busybox"], tar)
    _skopeo_copy(skopeo, f"docker-archive:{tar}", f"docker://{repo}:src")
    with Registry(repo.split("/")[0]) as reg:
        body, _ = reg.get_manifest(repo.split("/", 1)[1], "src", "src")
    source = json.loads(body)
    other.pull(f"{repo}:src")

    store = other.store  # type: ignore[attr-defined]
    [layer] = store.layer_chain(store.resolve(f"{repo}:src"))
    assert (layer.blob, layer.media_type) == (
        source["layers"][0]["digest"],
        source["layers"][0]["mediaType"],
    )
    assert store.blobs.has(layer.blob) and not store.blobs.has(layer.diff_id)  # kept as it came
    assert [f.path for f in other.image_layers(f"{repo}:src")[0].files][:1]  # readable tar
    assert check(store).ok

    second = LocalRegistry(prefix="ipdr-registry-").start()  # nothing there: a real upload
    try:
        target = f"{second.host}/ipdr/again:1"
        other.tag(f"{repo}:src", target)
        events: list[TransferEvent] = []
        pushed = other.push(target, progress=events.append)
        assert [e.status for e in events if e.id][-1] == "Pushed"
        with Registry(second.host) as reg:
            body, _ = reg.get_manifest("ipdr/again", "1", "again")
            again = json.loads(body)
            blob = reg.open_blob("ipdr/again", layer.blob)
            assert _sha(blob.read()) == layer.blob
            blob.close()
        assert _sha(body) == pushed.digest
        assert again["layers"] == [{k: source["layers"][0][k]
                                    for k in ("mediaType", "size", "digest")}]  # fmt: skip
        assert again["config"]["digest"] == source["config"]["digest"] == busybox
        # a store that pulls it back verifies both digests and has the same image
        third = BundledBackend(Store(str(tmp_path / "third")))
        assert third.pull(target).id == busybox
    finally:
        second.stop()


def test_check_finds_a_damaged_kept_blob_and_repair_extracts_nothing_from_it(
    busybox: str, backend: BundledBackend, repo: str, other: BundledBackend
) -> None:
    backend.tag("busybox", f"{repo}:1")
    backend.push(f"{repo}:1")
    other.pull(f"{repo}:1")
    store = other.store  # type: ignore[attr-defined]
    [layer] = store.layer_chain(store.resolve(f"{repo}:1"))
    assert layer.blob and check(store).ok
    with open(store.blobs.path(layer.blob), "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    report = check(store)
    assert any(layer.blob in p for p in report.problems), report.problems


def test_repair_extracts_a_lost_snapshot_from_the_kept_compressed_blob(
    busybox: str, backend: BundledBackend, repo: str, other: BundledBackend
) -> None:
    backend.tag("busybox", f"{repo}:1")
    backend.push(f"{repo}:1")
    other.pull(f"{repo}:1")
    store = other.store  # type: ignore[attr-defined]
    [layer] = store.layer_chain(store.resolve(f"{repo}:1"))
    snapshot = store.layers.snapshot(layer.chain_id)
    before = sorted(os.listdir(os.path.join(snapshot, "bin")))
    subprocess.run(["rm", "-rf", snapshot], check=True)
    assert not check(store).ok
    assert check(store, repair=True).repaired
    assert check(store).ok and sorted(os.listdir(os.path.join(snapshot, "bin"))) == before
    assert store.layers.get(layer.chain_id).blob == layer.blob  # still kept compressed


def test_a_pulled_image_saves_with_its_compressed_layer_and_loads_again(
    busybox: str, backend: BundledBackend, repo: str, other: BundledBackend, skopeo: str, tmp_path
) -> None:
    backend.tag("busybox", f"{repo}:1")
    backend.push(f"{repo}:1")
    other.pull(f"{repo}:1")
    tar = str(tmp_path / "pulled.tar")
    other.save([f"{repo}:1"], tar)
    third = BundledBackend(Store(str(tmp_path / "third")))
    [loaded] = third.load(tar)
    assert loaded.id == busybox and check(third.store).ok  # type: ignore[attr-defined]
    # skopeo reads both views of the tarball, and checks every layer blob it copies
    _skopeo_copy(skopeo, f"docker-archive:{tar}", f"oci:{tmp_path}/from-docker-archive:x")
    _skopeo_copy(skopeo, f"oci-archive:{tar}:1", f"oci:{tmp_path}/from-oci-archive:x")
