"""fuse-overlayfs where the kernel refuses overlayfs to the user: a store on overlayfs.

A store whose directory is itself on overlayfs (a notebook server in a container, a JupyterHub
pod) cannot hold the upper dirs of a kernel overlay mount: the kernel refuses it there. The
test makes that place for real, in a mount namespace of the test's child only (the host's
mount table is untouched): a tmpfs with an overlay mount on it, the user's store inside, and
``/dev/fuse`` readable and writable by everyone as Debian's udev rules leave it (this machine
has it 0600)::

    child (root): unshare(NEWNS) -> tmpfs B; overlay B/l,B/u -> B/merged (owned by the user)
                  tmpfs F; mknod F/fuse 0666; bind F/fuse -> /dev/fuse
    then as the user: Store(B/merged/store) -> probe: kernel overlay refused, fuse-overlayfs
                  mounts -> driver fuse-overlayfs; build (RUN with whiteouts, an opaque dir),
                  run --rm, diff, commit
"""

from __future__ import annotations

import os
import shutil
import stat
from typing import Any

import pytest

from tests.conftest import require
from tests.containers.conftest import settled_processes_using
from tests.rootless.conftest import NOBODY, as_user

STEPS = """\
FROM busybox
RUN mkdir -p /data/old && echo a > /data/old/a && echo b > /data/b && echo k > /data/k
RUN rm -rf /data/old && mkdir /data/old && echo new > /data/old/n && rm /data/b
RUN head -c 4096 /dev/zero > /data/blob && rm /bin/true
"""


def _store_on_overlayfs(base: str, uid: int, on_overlayfs: bool, fuse: bool = True) -> None:
    """In the calling (root) child: a mount namespace of its own with ``base/ovl/merged`` on
    overlayfs (else a plain dir), owned by ``uid``, and an everyone-may-use ``/dev/fuse``."""
    from ipydock.engine.runtime.plan import CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_REC
    from ipydock.engine.runtime.spawn import mount, unshare

    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    ovl, dev = os.path.join(base, "ovl"), os.path.join(base, "fusedev")
    merged = os.path.join(ovl, "merged")
    if on_overlayfs:
        mount("tmpfs", ovl, "tmpfs", 0, "mode=755")
        for name in ("l", "u", "w", "merged"):
            os.mkdir(os.path.join(ovl, name))
        data = f"lowerdir={ovl}/l,upperdir={ovl}/u,workdir={ovl}/w"
        mount("overlay", merged, "overlay", 0, data)
    else:
        os.mkdir(merged)
    os.chown(merged, uid, uid)
    mode = 0o666 if fuse else 0o600  # 0600: root's only, as on this machine
    mount("tmpfs", dev, "tmpfs", 0, "mode=755")
    os.mknod(os.path.join(dev, "fuse"), stat.S_IFCHR | mode, os.makedev(10, 229))
    os.chmod(os.path.join(dev, "fuse"), mode)
    mount(os.path.join(dev, "fuse"), "/dev/fuse", None, MS_BIND)


@pytest.mark.parametrize("place", ["on-overlayfs", "by-setting"])
def test_fuse_overlayfs_serves_builds_and_runs(
    nobody_dir: str, place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on-overlayfs: chosen because the kernel refuses (whiteouts in upper dirs are .wh.
    files there); by-setting: ``IPYDOCK_STORAGE_DRIVER=fuse-overlayfs`` on a filesystem
    where the kernel would mount (0/0 device whiteouts)."""
    on_overlayfs = place == "on-overlayfs"
    if not on_overlayfs:
        monkeypatch.setenv("IPYDOCK_STORAGE_DRIVER", "fuse-overlayfs")
    require(shutil.which("fuse-overlayfs") is not None, "fuse-overlayfs is not installed")
    require(os.path.exists("/dev/fuse"), "no /dev/fuse")
    for name in ("ovl", "fusedev", "context"):
        os.mkdir(os.path.join(nobody_dir, name))
    context = os.path.join(nobody_dir, "context")
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(STEPS)
    for path in (context, os.path.join(context, "Dockerfile")):
        os.chown(path, NOBODY, NOBODY)
    store = os.path.join(nobody_dir, "ovl", "merged", "store")

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.engine.store.snapshots import overlay_supported
        from ipydock.models.containers import RunOptions

        out: dict[str, Any] = {"kernel": overlay_supported(os.path.join(store, "..", "probe"))}
        backend = BundledBackend(Store(store), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        info = backend.info()
        out["driver"] = (info["storage_driver"], info["storage_driver_reason"])
        os.environ["SOURCE_DATE_EPOCH"] = "0"  # the same build on the kernel's overlay too:
        backend.build(context, tags=["steps"], reproducible=True)
        os.environ.pop("IPYDOCK_STORAGE_DRIVER", None)
        kernel = BundledBackend(Store(os.path.join(nobody_dir, "kernel-store")), warm=False)
        kernel.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                            changes=['CMD ["sh"]'])  # fmt: skip
        kernel.build(context, tags=["steps"], reproducible=True)
        out["kernel_driver"] = kernel.info()["storage_driver"]
        out["ids"] = [[layer.diff_id for layer in b.store.layer_chain(b.store.resolve("steps"))]
                      for b in (backend, kernel)]  # fmt: skip
        lines: list[str] = []
        script = ("ls /data; ls /data/old; wc -c < /data/blob; test -e /bin/true || echo gone; "
                  "echo more > /data/k; rm /data/blob")  # fmt: skip
        opts = RunOptions("steps", ("sh", "-c", script), name="ipdu-fuse")
        code = backend.run(opts, output=lambda _s, text: lines.append(text)).exit_code
        out["run"] = (code, "".join(lines).split())
        out["diff"] = sorted((c.kind, c.path) for c in backend.diff("ipdu-fuse"))
        backend.commit("ipdu-fuse", "committed")
        backend.remove_container("ipdu-fuse")
        lines.clear()
        opts = RunOptions("committed", ("sh", "-c", "cat /data/k; ls /data"), auto_remove=True)
        code = backend.run(opts, output=lambda _s, text: lines.append(text)).exit_code
        out["committed"] = (code, "".join(lines).split())
        out["history"] = [h.size for h in backend.history("steps")][:3]
        return out

    def place_store() -> None:
        _store_on_overlayfs(nobody_dir, NOBODY, on_overlayfs)

    found = as_user(NOBODY, work, as_root_first=place_store)
    assert (
        settled_processes_using(nobody_dir) == []
    )  # no fuse-overlayfs daemon outlives its container
    assert found["kernel"] is not on_overlayfs  # the kernel really refuses overlayfs there
    assert found["kernel_driver"] == "overlay"
    fuse_layers, kernel_layers = found["ids"]
    assert (
        len(fuse_layers) == 4 and fuse_layers == kernel_layers
    )  # the kernel's layers, byte for byte
    driver, why = found["driver"]
    assert driver == "fuse-overlayfs"
    assert ("refuses overlayfs" if on_overlayfs else "IPYDOCK_STORAGE_DRIVER") in why, why
    code, words = found["run"]
    assert code == 0 and words == ["blob", "k", "old", "n", "4096", "gone"]  # whiteouts, opaque
    assert found["diff"] == [["C", "/data"], ["C", "/data/k"], ["D", "/data/blob"]]
    assert found["committed"] == [0, ["more", "k", "old"]]


def test_vfs_where_neither_overlay_works_runs_on_a_copy_and_says_why(nobody_dir: str) -> None:
    """The store on overlayfs and /dev/fuse root's only (0600): vfs, with the reason; RUN
    steps and containers run on copies; diff says why it cannot."""
    for name in ("ovl", "fusedev", "context"):
        os.mkdir(os.path.join(nobody_dir, name))
    context = os.path.join(nobody_dir, "context")
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(STEPS)
    for path in (context, os.path.join(context, "Dockerfile")):
        os.chown(path, NOBODY, NOBODY)
    store = os.path.join(nobody_dir, "ovl", "merged", "store")

    def work() -> dict[str, Any]:
        import io
        import tarfile

        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import NotSupported
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(store), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        info = backend.info()
        out: dict[str, Any] = {"driver": [info["storage_driver"], info["storage_driver_reason"]]}
        backend.build(context, tags=["steps"])
        lines: list[str] = []
        script = "ls /data; ls /data/old; test -e /bin/true || echo gone; echo more > /data/k"
        opts = RunOptions("steps", ("sh", "-c", script), name="ipdu-vfs")
        code = backend.run(opts, output=lambda _s, text: lines.append(text)).exit_code
        out["run"] = [code, "".join(lines).split()]
        try:
            backend.diff("ipdu-vfs")
            out["diff"] = ""
        except NotSupported as exc:
            out["diff"] = str(exc)
        buf = io.BytesIO()
        backend.copy_from("ipdu-vfs", "/data/k", buf)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            member = tar.extractfile("k")
            out["cp"] = member.read().decode() if member else ""
        backend.remove_container("ipdu-vfs")
        return out

    def place_store() -> None:
        _store_on_overlayfs(nobody_dir, NOBODY, on_overlayfs=True, fuse=False)

    found = as_user(NOBODY, work, as_root_first=place_store)
    assert settled_processes_using(nobody_dir) == []
    driver, why = found["driver"]
    assert driver == "vfs" and "refuses overlayfs" in why and "/dev/fuse" in why, why
    assert found["run"] == [0, ["blob", "k", "old", "n", "gone"]]
    assert "changes are not tracked" in found["diff"]
    assert found["cp"] == "more\n"  # cp reads the copy the container ran on


def test_fuse_overlayfs_serves_the_ranges_ids_too(
    ranged_user: tuple[int, str], busybox_tgz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With id ranges, uid 1000 inside builds and runs on a fuse-overlayfs root."""
    monkeypatch.setenv("IPYDOCK_STORAGE_DRIVER", "fuse-overlayfs")
    uid, home = ranged_user
    base = os.path.join(home, "fuse-ranges")
    os.mkdir(base)
    for name in ("ovl", "fusedev", "context"):
        os.mkdir(os.path.join(base, name))
    with open(os.path.join(base, "context", "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN mkdir /home/u && chown 1000:1000 /home/u\nUSER 1000\n"
                "RUN echo hi > /home/u/f && id -u > /home/u/id\n")  # fmt: skip
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    for dirpath, _dirs, files in os.walk(base):
        for path in [dirpath, *(os.path.join(dirpath, n) for n in files)]:
            os.chown(path, uid, uid)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(base, "ovl", "merged", "store")), warm=False)
        backend.import_image(os.path.join(base, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        backend.build(os.path.join(base, "context"), tags=["u"])
        lines: list[str] = []
        script = "cat /home/u/f /home/u/id; stat -c %u /home/u/f; echo again >> /home/u/f"
        opts = RunOptions("u", ("sh", "-c", script), auto_remove=True)
        code = backend.run(opts, output=lambda _s, text: lines.append(text)).exit_code
        backend.remove_image("u")
        backend.remove_image("busybox")
        return {"driver": backend.info()["storage_driver"], "run": [code, "".join(lines).split()]}

    def place_store() -> None:
        _store_on_overlayfs(base, uid, on_overlayfs=False)

    found = as_user(uid, work, as_root_first=place_store)
    assert settled_processes_using(base) == []
    assert found["driver"] == "fuse-overlayfs"
    assert found["run"] == [0, ["hi", "1000", "1000"]]
