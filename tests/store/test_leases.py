"""Leases: what an operation in flight holds is never pruned; garbage is collected, not left.

The worst moments are made on purpose: a prune in another process after every step of a build
(where an untagged step image waits for its child), a prune while a lease holds an untagged
image, a lease whose process died.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store, images
from ipydock.engine.store.check import check
from ipydock.engine.store.fsutil import owner_tag, process_start
from ipydock.engine.store.leases import read_leases
from ipydock.testing import add_step


def prune_elsewhere(root: str) -> str:
    """``image prune -f`` in a process of its own (as another kernel would run it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ipydock", "--root", root, "image", "prune", "-f"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_prune_after_every_build_step_takes_nothing_the_build_uses(
    backend: BundledBackend, busybox: str, store: Store, tmp_path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a /a\nENV X=1\nCOPY a /b\nLABEL l=1\n")
    pruned: list[str] = []

    def between_steps(event) -> None:
        if event.kind == "done":
            pruned.append(prune_elsewhere(store.root))

    result = backend.build(str(ctx), tags=["app:1"], progress=between_steps)
    assert len(pruned) >= 5
    assert [r.tag for r in backend.images() if r.repository == "app"] == ["1"]
    rows = backend.history("app:1")
    assert "LABEL l=1" in rows[0].created_by and " in /b" in rows[1].created_by
    assert result.image_id == backend.inspect_image("app:1").id
    report = check(store)
    assert report.ok and report.garbage == [], report
    assert read_leases(store.root).images == set()  # released


def test_a_leased_untagged_image_survives_prune_and_goes_after_release(
    backend: BundledBackend, busybox: str, store: Store
) -> None:
    image = add_step(store, busybox, "/bin/sh -c step", {"f": b"data"}, tags=[])
    rec = store.index().images[image]
    lease = store.lease()
    with store.lock:
        lease.hold_image(rec)
    assert images.prune(store).deleted == []
    assert image in store.index().images
    assert check(store).garbage == []  # held: not garbage either
    lease.release()
    deleted = [e.target for e in images.prune(store).deleted if e.action == "deleted"]
    assert image in deleted
    assert check(store).garbage == []


def test_an_image_rm_while_leased_keeps_the_data_until_release(
    backend: BundledBackend, busybox: str, store: Store
) -> None:
    image = add_step(store, busybox, "/bin/sh -c step", {"f": b"data"}, tags=["app:1"])
    rec = store.index().images[image]
    with store.lease() as lease:
        with store.lock:
            lease.hold_image(rec)
        backend.remove_image("app:1")  # the user asked: it is unnamed at once
        assert image not in store.index().images
        assert store.blobs.has(image) and store.layers.has(rec.top_layer)  # data stays
    assert not store.blobs.has(image) and not store.layers.has(rec.top_layer)
    assert check(store) == check(store).__class__()


def test_the_lease_of_a_dead_process_expires_and_its_content_is_collected(
    backend: BundledBackend, busybox: str, store: Store, tmp_path
) -> None:
    # A process that made an untagged image under a lease, then died without releasing it.
    script = (
        "import os, signal, sys\n"
        "from ipydock.engine.store import Store\n"
        "from ipydock.testing import add_step\n"
        "store = Store(sys.argv[1])\n"
        "lease = store.lease()\n"
        "image = add_step(store, sys.argv[2], 'step', {'g': b'gone'}, tags=[])\n"
        "with store.lock:\n"
        "    lease.hold_image(store.index().images[image])\n"
        "print(image, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, store.root, busybox],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    image = proc.stdout.strip()
    assert image.startswith("sha256:"), proc.stderr
    held = read_leases(store.root)
    assert len(held.expired) == 1 and held.images == set()
    report = check(store)
    assert report.ok
    assert any(g.startswith("expired lease") for g in report.garbage), report.garbage
    # The untagged image itself is dangling: prune takes it, and the expired lease with it.
    images.prune(store)
    assert image not in store.index().images
    assert read_leases(store.root).expired == []
    assert check(store).garbage == []


def test_temp_entries_of_a_dead_process_are_collected_and_a_live_ones_are_not(
    store: Store, busybox: str
) -> None:
    mine = os.path.join(store.tmp_dir, f"step-{owner_tag()}-abcdef")
    os.mkdir(mine)
    dead = os.path.join(store.tmp_dir, "step-1_1-abcdef")  # pid 1 did not start at tick 1
    assert process_start(1) != 1
    os.mkdir(dead)
    report = check(store)
    assert [g for g in report.garbage if "temp" in g] == ["leftover temp step-1_1-abcdef"]
    images.prune(store)
    assert os.path.isdir(mine) and not os.path.exists(dead)
    os.rmdir(mine)
