"""``system check`` on stores broken on purpose: each break is reported, and ``--repair`` fixes
what it says it fixed (afterwards the store checks clean and still works)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

import pytest

from ipydock.engine.store import Store
from ipydock.testing import add_step


def _image(store: Store, name: str) -> tuple[str, dict]:
    """(manifest digest, manifest) of the image tagged ``name``."""
    with open(os.path.join(store.root, "index.json")) as f:
        index = json.load(f)
    for entry in index["manifests"]:
        if entry["annotations"]["org.opencontainers.image.ref.name"].endswith(name):
            with open(store.blobs.path(entry["digest"])) as f:
                return entry["digest"], json.load(f)
    raise AssertionError(f"no {name} in the index")


def lose_a_layer_blob(store: Store) -> None:
    _, manifest = _image(store, "app:latest")
    os.unlink(store.blobs.path(manifest["layers"][-1]["digest"]))


def lose_a_manifest(store: Store) -> None:
    digest, _ = _image(store, "app:latest")
    os.unlink(store.blobs.path(digest))


def lose_a_snapshot(store: Store) -> None:
    chain = sorted(store.layers.all())[0]
    shutil.rmtree(store.layers.snapshot(chain))


def leave_a_layer_without_its_image(store: Store) -> None:
    os.makedirs(os.path.join(store.layers.dir, "ab" * 32, "diff"))


def leave_an_orphan_blob(store: Store) -> None:
    with open(os.path.join(store.blobs.dir, "cd" * 32), "wb") as f:
        f.write(b"left behind")


def leave_a_half_written_temp_dir(store: Store) -> None:
    os.makedirs(os.path.join(store.tmp_dir, "extract-1234", "usr"))


BROKEN: dict[str, tuple[Callable[[Store], None], str]] = {
    "layer blob": (lose_a_layer_blob, "problem"),
    "manifest": (lose_a_manifest, "problem"),
    "snapshot": (lose_a_snapshot, "problem"),
    "layer record": (leave_a_layer_without_its_image, "garbage"),
    "blob": (leave_an_orphan_blob, "garbage"),
    "temp dir": (leave_a_half_written_temp_dir, "garbage"),
}


@pytest.mark.root
@pytest.mark.parametrize("case", list(BROKEN))
def test_each_break_is_reported_and_repaired(backend, busybox, store: Store, case: str) -> None:
    add_step(store, busybox, "/bin/sh -c make", {"app/bin": b"built"}, tags=["app"])
    assert backend.check().ok and not backend.check().garbage
    breaker, kind = BROKEN[case]
    breaker(store)
    report = backend.check()
    if kind == "problem":
        assert not report.ok and report.problems
    else:
        assert report.ok and report.garbage
    repaired = backend.check(repair=True)
    assert repaired.repaired  # it says what it did
    after = backend.check()
    assert after.ok and not after.garbage, (after.problems, after.garbage)
    assert backend.history("busybox")  # what was whole is still there and readable
    if case == "snapshot":  # extracted again from its blob: nothing was lost
        assert any("extracted the snapshot" in line for line in repaired.repaired)
        assert backend.history("app")
