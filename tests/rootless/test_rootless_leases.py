"""Leases as an ordinary user: a prune between every build step takes nothing the build uses,
and the lease of a process that died is expired and collected."""

from __future__ import annotations

import os
from typing import Any

from tests.rootless.conftest import NOBODY, as_user


def test_leases_as_an_unprivileged_user(nobody_dir: str) -> None:
    context = os.path.join(nobody_dir, "context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY a /a\nENV X=1\nCOPY a /b\n")
    with open(os.path.join(context, "a"), "w") as f:
        f.write("a")
    for path in (context, *(os.path.join(context, n) for n in os.listdir(context))):
        os.chown(path, NOBODY, NOBODY)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store, images
        from ipydock.engine.store.check import check
        from ipydock.engine.store.leases import read_leases

        root = os.path.join(nobody_dir, "store")
        backend = BundledBackend(Store(root), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox")
        pruned = []

        def between(event: Any) -> None:
            if event.kind == "done":  # another Store object: reads the lease files, as a
                pruned.append(len(images.prune(Store(root)).deleted))  # kernel would

        backend.build(context, tags=["app:1"], progress=between)
        tags = [f"{i.repository}:{i.tag}" for i in backend.images()]
        # A process that holds an untagged image and dies without releasing its lease.
        child = os.fork()
        if child == 0:
            store = Store(root)
            lease = store.lease()
            with store.lock:
                lease.hold_image(store.index().images[store.resolve("app:1").id])
            os._exit(0)
        os.waitpid(child, 0)
        expired = len(read_leases(root).expired)
        garbage = check(Store(root)).garbage
        images.prune(Store(root))
        after, left = check(Store(root)).garbage, len(read_leases(root).expired)
        return {"pruned": pruned, "tags": tags, "expired": expired, "garbage": garbage,
                "after": after, "left": left}  # fmt: skip

    result = as_user(NOBODY, work)
    assert sorted(result["tags"]) == ["app:1", "busybox:latest"]
    assert len(result["pruned"]) >= 4 and set(result["pruned"]) == {0}
    assert result["expired"] == 1
    assert [g for g in result["garbage"] if g.startswith("expired lease")]
    assert result["after"] == [] and result["left"] == 0
