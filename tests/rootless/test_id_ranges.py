"""Subordinate id ranges: a rootless user's containers and build steps get 65537 ids."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from typing import Any

from tests.rootless.conftest import as_user

DOCKERFILE = """\
FROM busybox
RUN echo "u1:x:1000:1000::/home/u1:/bin/sh" >> /etc/passwd && mkdir -p /data /home/u1 \\
    && chown 1000:1000 /data /home/u1 && cat /proc/self/uid_map
COPY --chown=1000:1000 greeting /home/u1/greeting
USER 1000
RUN id && touch /data/mine && chmod 600 /data/mine && cat /home/u1/greeting >> /data/mine
"""


def _owners(backend: Any, image: str) -> dict[str, tuple[int, int]]:
    buf = io.BytesIO()
    backend.save([image], buf)
    buf.seek(0)
    found: dict[str, tuple[int, int]] = {}
    with tarfile.open(fileobj=buf) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"][1:]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                found.update({m.name.rstrip("/"): (m.uid, m.gid) for m in inner.getmembers()})
    return found


def _store_files_owned_by(store: str, low: int, high: int) -> int:
    count = 0
    for dirpath, dirnames, filenames in os.walk(store):
        for name in dirnames + filenames:
            if low <= os.lstat(os.path.join(dirpath, name)).st_uid <= high:
                count += 1
    return count


def test_a_user_with_a_range_builds_and_runs_as_uid_1000(
    ranged_user: tuple[int, str], busybox_tgz: str
) -> None:
    uid, home = ranged_user
    context = os.path.join(home, "context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    tarball = os.path.join(home, "busybox.tar.gz")
    shutil.copy(busybox_tgz, tarball)
    with open(os.path.join(context, "greeting"), "w") as f:
        f.write("hi\n")
    for path in (context, os.path.join(context, "Dockerfile"), tarball,
                 os.path.join(context, "greeting")):  # fmt: skip
        os.chown(path, uid, uid)
    store = os.path.join(home, "store")

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.runtime.idranges import find
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(store), warm=False)
        backend.import_image(tarball, "busybox", changes=['CMD ["sh"]'])
        lines: list[str] = []
        backend.build(context, tags=["u"], progress=lambda e: lines.append(e.text or ""))
        out: list[str] = []
        opts = RunOptions("u", ("sh", "-c", "id -u; stat -c '%u:%g' /data /data/mine "
                                "/home/u1/greeting; cat /data/mine"), auto_remove=True)  # fmt: skip
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        ranges = find()
        return {"info": backend.info(), "build": lines, "run": (code, "".join(out).split()),
                "owners": _owners(backend, "u"), "start": ranges.uid_start,
                "on_host": _store_files_owned_by(store, ranges.uid_start,
                                                 ranges.uid_start + 65535)}  # fmt: skip

    found = as_user(uid, work)
    start = found["start"]
    assert found["info"]["mode"] == "rootless"
    assert f"1-65536 -> {start}-{start + 65535}" in found["info"]["id_mapping"]
    assert "uid=1000(u1) gid=1000" in found["build"]
    code, words = found["run"]
    assert code == 0 and words == ["1000", "1000:1000", "1000:1000", "1000:1000", "hi"]
    owners = found["owners"]  # the layer tars record the ids inside
    assert owners["data"] == [1000, 1000] and owners["data/mine"] == [1000, 1000]  # JSON
    assert owners["etc/passwd"] == [0, 0] and owners["home/u1/greeting"] == [1000, 1000]
    assert found["on_host"] > 0  # the store holds files of the range on the host

    def remove() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(store), warm=False)
        # a directory only its owner (uid 1000 inside, the range outside) may read
        script = "mkdir -m 700 /secret && touch /secret/x && chown -R 1000:1000 /secret"
        cid = backend.run(RunOptions("u", ("sh", "-c", script), user="0"), detach=True).id
        backend.wait_container(cid)
        out = {"diff": [[c.kind, c.path] for c in backend.diff(cid)],
               "df": {u.type: u.size for u in backend.disk_usage()}}  # fmt: skip
        backend.commit(cid, "u:secret")
        backend.remove_container(cid)
        backend.remove_image("u:secret")
        backend.remove_image("u")
        backend.remove_image("busybox")
        out["left"] = _store_files_owned_by(store, start, start + 65535)
        return out

    done = as_user(uid, remove)
    assert ["A", "/secret/x"] in done["diff"]  # read in the user's namespace
    assert all(size >= 0 for size in done["df"].values())
    assert done["left"] == 0  # the range's files went with the images and the container


def test_without_a_range_user_1000_is_refused_with_how_to_add_one(nobody_dir: str) -> None:
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        try:
            backend.run(RunOptions("busybox", ("id",), user="1000", auto_remove=True))
        except IPyDockError as exc:
            return {"refused": str(exc), "info": backend.info()["id_mapping"]}
        return {"refused": ""}

    from tests.rootless.conftest import NOBODY

    found = as_user(NOBODY, work)
    assert "usermod --add-subuids" in found["refused"] and "1000" in found["refused"]
    assert found["info"].startswith("uid 0 -> 65534 only")
