"""Image rules of Docker Engine on the bundled store: ls, history, inspect, tag, rm, prune."""

from __future__ import annotations

import os

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.errors import (
    ImageHasChildren,
    ImageInUse,
    ImageMultiplyReferenced,
    ImageNotFound,
    InvalidReference,
    UsageError,
)
from ipydock.testing import add_step


def names(backend: BundledBackend, **kw) -> set[str]:
    return {f"{r.repository}:{r.tag}" for r in backend.images(**kw)}


def ids(backend: BundledBackend, **kw) -> set[str]:
    return {r.id for r in backend.images(**kw)}


def test_import_makes_a_one_layer_image_with_docker_config(backend, busybox, store) -> None:
    detail = backend.inspect_image("busybox")
    assert detail.id == busybox
    assert detail.repo_tags == ["busybox:latest"]
    assert detail.config["Cmd"] == ["sh"]
    assert detail.os == "linux"
    assert len(detail.rootfs["diff_ids"]) == 1
    # The image ID is the sha256 of the stored config bytes.
    assert store.blobs.get(busybox)
    # Size is regular-file bytes, as Docker's DiffSize: busybox itself plus /etc files.
    assert detail.size >= os.path.getsize("/usr/bin/busybox")
    assert detail.size < os.path.getsize("/usr/bin/busybox") + 4096


def test_one_row_per_tag_and_docker_io_library_normalisation(backend, busybox) -> None:
    backend.tag("busybox", "docker.io/library/busybox:1")
    backend.tag(busybox[7:19], "me/bb")
    rows = backend.images()
    assert {(r.repository, r.tag) for r in rows} == {
        ("busybox", "latest"),
        ("busybox", "1"),
        ("me/bb", "latest"),
    }
    assert {r.id for r in rows} == {busybox}
    assert backend.inspect_image("index.docker.io/library/busybox:1").id == busybox


def test_moving_a_tag_leaves_the_old_image_dangling(backend, store, busybox) -> None:
    old = add_step(store, "busybox", "echo v1 > /v", {"v": b"v1\n"}, tags=["app"])
    assert ids(backend, filters=["dangling=true"]) == set()
    new = add_step(store, "busybox", "echo v2 > /v", {"v": b"v2\n"}, tags=["app"])  # rebuild
    dangling = backend.images(filters=["dangling=true"])
    assert [(r.repository, r.tag, r.id) for r in dangling] == [("<none>", "<none>", old)]
    assert backend.inspect_image("app").id == new
    assert ids(backend, filters=["dangling=false"]) == {busybox, new}


def test_intermediate_images_hidden_unless_all(backend, store, busybox) -> None:
    mid = add_step(store, "busybox", "echo a > /a", {"a": b"a\n"})
    top = add_step(store, mid, "echo b > /b", {"b": b"b\n"}, tags=["app"])
    assert ids(backend) == {busybox, top}
    assert ids(backend, all=True) == {busybox, mid, top}
    # An intermediate image is not dangling: it has a child.
    assert ids(backend, filters=["dangling=true"]) == set()


def test_filters_reference_label_and_bad_filter(backend, store, busybox) -> None:
    backend.tag("busybox", "me/app:v1")
    assert names(backend, filters=["reference=me/*"]) == {"me/app:v1"}
    assert names(backend, filters=["reference=busybox"]) == {"busybox:latest"}
    assert names(backend, filters=["reference=*/app:v*"]) == {"me/app:v1"}
    assert names(backend, filters=["reference=*:v1"]) == set()  # * stops at /, as in docker
    with pytest.raises(UsageError, match="invalid filter"):
        backend.images(filters=["color=red"])


def test_history_rows_newest_first_with_sizes_and_missing(backend, store, busybox) -> None:
    mid = add_step(store, "busybox", "/bin/sh -c echo hello > /hello", {"hello": b"hello\n"})
    top = add_step(store, mid, '/bin/sh -c #(nop)  CMD ["sh"]', None, tags=["app"])
    rows = backend.history("app")
    assert [r.created_by for r in rows] == [
        '/bin/sh -c #(nop)  CMD ["sh"]',
        "/bin/sh -c echo hello > /hello",
        "",
    ]
    assert [r.id for r in rows] == [top, mid, busybox]
    assert [r.size for r in rows][:2] == [0, 6]
    assert rows[0].empty_layer and not rows[1].empty_layer
    assert rows[2].comment == "Imported from -"
    assert rows[0].tags == ("app:latest",)
    # Once the base image is gone from the store, its rows show <missing>.
    backend.save(["app"], os.path.join(store.root, "..", "app.tar"))
    other = BundledBackend(Store(os.path.join(store.root, "..", "other")))
    other.load(os.path.join(store.root, "..", "app.tar"))
    assert [r.id for r in other.history("app")] == [top, "<missing>", "<missing>"]


def test_rm_by_name_untags_and_deletes_only_with_the_last_name(backend, busybox) -> None:
    backend.tag("busybox", "other")
    events = backend.remove_image("other")
    assert [(e.action, e.target) for e in events] == [("untagged", "other:latest")]
    assert backend.inspect_image(busybox).id == busybox
    events = backend.remove_image("busybox")
    assert ("untagged", "busybox:latest") in [(e.action, e.target) for e in events]
    assert ("deleted", busybox) in [(e.action, e.target) for e in events]
    with pytest.raises(ImageNotFound):
        backend.inspect_image(busybox)


def test_rm_deletes_only_unshared_layers_and_blobs(backend, store, busybox) -> None:
    child = add_step(store, "busybox", "add f", {"f": b"data"}, tags=["child"])
    base_layer = store.layer_chain(store.resolve("busybox"))[0]
    child_layer = store.layer_chain(store.resolve("child"))[1]
    backend.remove_image("busybox")  # untag only: it has a child
    assert store.blobs.has(busybox)
    backend.remove_image("child")  # deletes child, then its now-bare parent
    assert not store.blobs.has(child)
    assert not store.blobs.has(busybox)
    assert not store.layers.has(child_layer.chain_id)
    assert not store.layers.has(base_layer.chain_id)
    assert not store.blobs.has(base_layer.diff_id)
    assert list(store.blobs.digests()) == []


def test_rm_refuses_image_with_children(backend, store, busybox) -> None:
    child = add_step(store, "busybox", "add f", {"f": b"data"}, tags=["child"])
    with pytest.raises(ImageHasChildren) as info:
        backend.remove_image(busybox, force=True)
    assert info.value.children == [child]
    assert child[7:19] in str(info.value)


def test_rm_by_id_with_several_names_needs_force(backend, busybox) -> None:
    backend.tag("busybox", "other:1")
    with pytest.raises(ImageMultiplyReferenced) as info:
        backend.remove_image(busybox[7:19])
    assert sorted(info.value.tags) == ["busybox:latest", "other:1"]
    events = backend.remove_image(busybox[7:19], force=True)
    assert {(e.action, e.target) for e in events} >= {
        ("untagged", "busybox:latest"),
        ("untagged", "other:1"),
        ("deleted", busybox),
    }


def test_rm_refuses_images_used_by_containers(backend, store, busybox) -> None:
    users = {busybox: [("c0ffee" * 8, True)]}
    store.container_use = lambda image_id: users.get(image_id, [])
    with pytest.raises(ImageInUse) as info:
        backend.remove_image(busybox, force=True)
    assert info.value.running and info.value.container_ids == ["c0ffee" * 8]
    assert "running container c0ffeec0ffee" in str(info.value)
    users[busybox] = [("dead" * 16, False)]
    with pytest.raises(ImageInUse) as info:
        backend.remove_image(busybox)
    assert not info.value.running
    events = backend.remove_image(busybox, force=True)
    assert ("deleted", busybox) in [(e.action, e.target) for e in events]


def test_prune_removes_dangling_and_with_all_every_unused(backend, store, busybox) -> None:
    newer = add_step(store, "busybox", "x", {"x": b"12345"})
    lonely = add_step(store, newer, "y", {"y": b"1"})  # untagged head: dangling
    result = backend.prune_images()
    assert ("deleted", lonely) in [(e.action, e.target) for e in result.deleted]
    assert ("deleted", newer) in [(e.action, e.target) for e in result.deleted]
    assert result.space_reclaimed == 6
    assert ids(backend, all=True) == {busybox}
    store.container_use = lambda image_id: [("c" * 64, False)] if image_id == busybox else []
    assert backend.prune_images(all=True).deleted == []
    store.container_use = lambda image_id: []
    result = backend.prune_images(all=True)
    assert ("untagged", "busybox:latest") in [(e.action, e.target) for e in result.deleted]
    assert backend.images(all=True) == []


def test_unknown_and_invalid_names(backend, busybox) -> None:
    with pytest.raises(ImageNotFound, match="No such image: nothere"):
        backend.history("nothere")
    with pytest.raises(InvalidReference):
        backend.tag("busybox", "Bad Name")
    with pytest.raises(InvalidReference):
        backend.inspect_image("UPPER")


def test_two_store_objects_share_one_root(root, backend, busybox) -> None:
    """Two kernels on one root: one tags, the other sees it at once."""
    other = BundledBackend(Store(root))
    other.tag("busybox", "seen:1")
    assert "seen:1" in names(backend)
