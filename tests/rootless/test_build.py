"""Builds by an unprivileged user: RUN steps in the user's own namespace, without a cgroup."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

import pytest

from tests.rootless.conftest import NOBODY, as_user

DOCKERFILE = """\
FROM busybox
COPY greeting /greeting
RUN echo hi > /hi && mkdir /d && touch /d/f && id -u > /d/uid
RUN rm /hi && cat /proc/self/uid_map > /map
"""


def _layer_owners(backend: Any, image: str) -> list[tuple[str, int, int]]:
    """(name, uid, gid) of every entry of the image's layers but the base's, from `save`."""
    buf = io.BytesIO()
    backend.save([image], buf)
    buf.seek(0)
    found: list[tuple[str, int, int]] = []
    with tarfile.open(fileobj=buf) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        base = manifest[0]["Layers"][0]
        for layer in manifest[0]["Layers"]:
            if layer == base:
                continue
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                found += [(m.name, m.uid, m.gid) for m in inner.getmembers()]
    return found


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_an_unprivileged_user_builds_with_run_steps(nobody_dir: str, driver: str) -> None:
    context = os.path.join(nobody_dir, "context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(context, "greeting"), "w") as f:
        f.write("hello\n")
    for path in (context, *(os.path.join(context, n) for n in os.listdir(context))):
        os.chown(path, NOBODY, NOBODY)

    def work() -> dict[str, Any]:
        import warnings

        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store"), driver), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        events: list[str] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = backend.build(context, tags=["app"],
                                   progress=lambda e: events.append(e.text or ""))  # fmt: skip
        lines: list[str] = []
        opts = RunOptions("app", ("sh", "-c", "cat /greeting /d/uid /map; test -e /hi || "
                                  "echo gone"), auto_remove=True)  # fmt: skip
        code = backend.run(opts, output=lambda _s, text: lines.append(text)).exit_code
        return {
            "image": result.image_id,
            "history": [h.created_by for h in backend.history("app")],
            "warnings": [str(w.message) for w in caught],
            "run": (code, "".join(lines).split("\n")),
            "owners": _layer_owners(backend, "app"),
            "store_owner": os.stat(os.path.join(nobody_dir, "store")).st_uid,
            "driver": backend.info()["storage_driver"],
        }

    found = as_user(NOBODY, work)
    assert found["image"].startswith("sha256:")
    assert any("echo hi > /hi" in h for h in found["history"])
    assert found["warnings"] == []  # no limit asked for: nothing to warn about
    code, out = found["run"]
    assert code == 0
    greeting, uid, map_line, gone = out[:4]
    assert greeting == "hello" and uid == "0" and gone == "gone"
    assert map_line.split() == ["0", str(NOBODY), "1"]  # the step ran as nobody, root inside
    # the layers record the ids inside, not the user's: 0:0 as in docker's rootless mode
    assert found["owners"], "no layer entries"
    assert {(uid, gid) for _name, uid, gid in found["owners"]} == {(0, 0)}
    names = {name for name, _u, _g in found["owners"]}
    assert {"greeting", "d/f", ".wh.hi", "map"} <= names
    assert found["store_owner"] == NOBODY
    assert found["driver"] == driver


def test_an_unprivileged_user_loads_an_image_with_device_nodes(
    nobody_dir: str, busybox_tgz: str, tmp_path: Any
) -> None:
    """docker save of an image whose layer holds device nodes (made by root), loaded rootless."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store

    with_dev = tmp_path / "with-dev.tar"
    with tarfile.open(busybox_tgz) as src, tarfile.open(with_dev, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        node = tarfile.TarInfo("dev/null")
        node.type, node.devmajor, node.devminor, node.mode = tarfile.CHRTYPE, 1, 3, 0o666
        dst.addfile(node)
    root_backend = BundledBackend(Store(str(tmp_path / "root-store")), warm=False)
    root_backend.import_image(str(with_dev), "devs", changes=['CMD ["sh"]'])
    archive = os.path.join(nobody_dir, "devs.tar")
    root_backend.save(["devs"], archive)
    os.chown(archive, NOBODY, NOBODY)

    def work() -> dict[str, Any]:
        import warnings

        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = backend.load(archive)
        out: list[str] = []
        opts = RunOptions("devs", ("sh", "-c", "echo x > /dev/null && echo ok"), auto_remove=True)
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        return {"loaded": len(loaded), "warnings": [str(w.message) for w in caught],
                "run": [code, "".join(out)]}  # fmt: skip

    found = as_user(NOBODY, work)
    assert found["loaded"] == 1
    (warning,) = found["warnings"]
    assert "1 device node(s)" in warning and "/dev/null" in warning
    assert found["run"] == [0, "ok\n"]  # the engine's /dev/null
