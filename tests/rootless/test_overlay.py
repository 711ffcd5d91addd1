"""The overlay driver for an ordinary user: mounted in the user's namespace (``userxattr``)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.rootless.conftest import NOBODY, as_user

STEPS = """\
FROM busybox
RUN mkdir -p /data/old && echo a > /data/old/a && echo b > /data/b
RUN rm -rf /data/old && mkdir /data/old && echo new > /data/old/n && rm /data/b
RUN head -c 4096 /dev/zero > /data/blob
"""


def _du(path: str) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return int(out.split()[0])


def test_overlay_is_the_default_driver_and_layers_hold_only_their_deltas(nobody_dir: str) -> None:
    context = os.path.join(nobody_dir, "context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(STEPS)
    for path in (context, os.path.join(context, "Dockerfile")):
        os.chown(path, NOBODY, NOBODY)
    store = os.path.join(nobody_dir, "store")

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(store), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        layers = os.path.join(store, "layers")
        before = set(os.listdir(layers))
        backend.build(context, tags=["steps"])
        added = sorted(set(os.listdir(layers)) - before)
        out: list[str] = []
        opts = RunOptions("steps", ("sh", "-c", "ls /data; ls /data/old; wc -c < /data/blob"),
                          auto_remove=True)  # fmt: skip
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        return {"driver": backend.info()["storage_driver"], "run": (code, "".join(out).split()),
                "base": [os.path.join(layers, n) for n in before],
                "added": [os.path.join(layers, n) for n in added]}  # fmt: skip

    found = as_user(NOBODY, work)
    assert found["driver"] == "overlay"
    code, words = found["run"]
    assert code == 0 and words == ["blob", "old", "n", "4096"]  # opaque dir, whiteouts
    assert len(found["added"]) == 3
    base = sum(_du(p) for p in found["base"])
    added = [_du(p) for p in found["added"]]
    print(f"rootless overlay: base layer {base} B on disk, 3 steps add {added} B")
    assert base > 500_000  # busybox
    assert all(size < 64 * 1024 for size in added)  # deltas, not copies of the root
