"""Snapshot drivers: one conformance suite run against overlay and vfs, plus what is driver-only.

Views are checked through a real overlay mount of ``lower_dirs(chain)``, as the runtime mounts
them; every mount is undone in a ``finally``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipydock.engine.store.layertar import OPAQUE_XATTR, ApplyResult
from ipydock.engine.store.snapshots import (
    FuseOverlayDriver,
    OverlayDriver,
    SnapshotDriver,
    VfsDriver,
    choose_driver,
    copy_tree,
    default_driver,
    fuse_overlay_problem,
    get_driver,
    overlay_supported,
)
from tests.conftest import require

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    require(os.geteuid() == 0, "snapshot tests mount overlays: need root")


T0 = 1_600_000_000


# --------------------------------------------------------------------------- helpers


def entry(name: str, data: bytes | None = b"", **kw) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member: a file (``data``), or with ``type=`` a dir/symlink/link/device."""
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = kw.pop("mtime", T0), kw.pop("mode", 0o644)
    for key, value in kw.items():
        setattr(info, key, value)
    info.size = len(data or b"") if info.isreg() else 0
    return info, data or b""


def d(name: str, **kw) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, None, type=tarfile.DIRTYPE, mode=kw.pop("mode", 0o755), **kw)


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


BASE = tar_bytes(
    d("etc"),
    entry("etc/passwd", b"root:x:0:0\n"),
    entry("etc/shadow", b"root:*:1\n", mode=0o640),
    d("etc/conf.d"),
    entry("etc/conf.d/a", b"a"),
    entry("etc/conf.d/b", b"b"),
    d("var"),
    entry("var/lib/x", b"x"),
    entry("usr/lib/libfoo.so.1", b"ELF" * 100, mode=0o755),
    entry("usr/lib/libfoo.so", None, type=tarfile.LNKTYPE, linkname="usr/lib/libfoo.so.1"),
    entry(
        "usr/bin/ping", b"ping", mode=0o4755, uid=0, gid=0, pax_headers={"SCHILY.xattr.user.k": "v"}
    ),
    entry("dev/null", None, type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
    entry("home/u/f", b"mine", uid=1000, gid=1000),
    entry("bin", None, type=tarfile.SYMTYPE, linkname="usr/bin", mode=0o777),
)

LAYER = tar_bytes(
    d("etc", mtime=T0 + 1),
    entry("etc/.wh.shadow"),
    d("etc/conf.d", mtime=T0 + 1),
    entry("etc/conf.d/.wh..wh..opq"),
    entry("etc/conf.d/c", b"cc"),
    entry("etc/passwd", b"root:x:0:0:new\n", mtime=T0 + 1),
    d("var", mtime=T0 + 1),
    entry("var/.wh.lib"),
    entry("new/file", b"12345"),
)

# what a container sees on BASE + LAYER: path -> file content, link target or type
MERGED = {
    "bin": "-> usr/bin",
    "dev": "dir",
    "dev/null": "chr 1,3",
    "etc": "dir",
    "etc/conf.d": "dir",
    "etc/conf.d/c": b"cc",
    "etc/passwd": b"root:x:0:0:new\n",
    "home": "dir",
    "home/u": "dir",
    "home/u/f": b"mine",
    "new": "dir",
    "new/file": b"12345",
    "usr": "dir",
    "usr/bin": "dir",
    "usr/bin/ping": b"ping",
    "usr/lib": "dir",
    "usr/lib/libfoo.so": b"ELF" * 100,
    "usr/lib/libfoo.so.1": b"ELF" * 100,
    "var": "dir",
}


def view(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                what: object = Path(p).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                what = "dir"
            else:
                what = f"chr {os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            out[os.path.relpath(p, root)] = what
    return out


def meta(root: Path) -> dict[str, tuple]:
    """Everything but content: type+mode, owner, mtime, rdev, link target, xattrs, inode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
            xattrs = {
                k: os.getxattr(p, k, follow_symlinks=False)
                for k in os.listxattr(p, follow_symlinks=False)
            }
            out[os.path.relpath(p, root)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                st.st_rdev,
                link,
                sorted(xattrs.items()),
                st.st_ino,
            )
    return out


@contextlib.contextmanager
def overlay_view(lowers: list[str], scratch: Path) -> Iterator[Path]:
    """Mount ``lowers`` (bottom first) under a throwaway upper; unmounted even on failure."""
    for name in ("upper", "work", "merged"):
        (scratch / name).mkdir(parents=True)
    opts = f"lowerdir={':'.join(reversed(lowers))},upperdir={scratch}/upper,workdir={scratch}/work"
    merged = scratch / "merged"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def create(drv: SnapshotDriver, dest: Path, parent: Path | None, data: bytes) -> ApplyResult:
    parent_dir = str(parent) if parent else None
    return drv.create(str(dest), parent_dir, io.BytesIO(data), source=dest.name)


def export(drv: SnapshotDriver, dest: Path, parent: Path | None, **kw) -> bytes:
    out = io.BytesIO()
    drv.export(str(dest), str(parent) if parent else None, out, **kw)
    return out.getvalue()


def names_of(data: bytes) -> list[str]:
    proc = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True, check=True)
    return proc.stdout.decode().splitlines()


@pytest.fixture(params=["overlay", "vfs"])
def driver(request: pytest.FixtureRequest) -> SnapshotDriver:
    return get_driver(request.param)


@pytest.fixture
def chain(driver: SnapshotDriver, tmp_path: Path) -> tuple[Path, Path]:
    """BASE and LAYER as two snapshots of ``driver``."""
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    create(driver, s1, None, BASE)
    create(driver, s2, s1, LAYER)
    return s1, s2


# --------------------------------------------------------------------------- choosing a driver


def test_get_driver_knows_overlay_and_vfs() -> None:
    assert isinstance(get_driver("overlay"), OverlayDriver)
    assert isinstance(get_driver("vfs"), VfsDriver)
    assert isinstance(get_driver("fuse-overlayfs"), FuseOverlayDriver)
    with pytest.raises(ValueError, match="fuse-overlayfs, overlay, vfs"):
        get_driver("aufs")


def test_overlay_probe_works_and_leaves_nothing_behind(tmp_path: Path) -> None:
    assert overlay_supported(str(tmp_path))
    assert os.listdir(tmp_path) == []
    assert str(tmp_path) not in Path("/proc/self/mounts").read_text()
    assert default_driver(str(tmp_path)).name == "overlay"


def test_overlay_probe_fails_on_an_overlay(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with overlay_view([str(tmp_path / "empty")], tmp_path / "outer") as merged:
        probe = merged / "probe"
        assert not overlay_supported(str(probe))
        name, why = choose_driver(str(probe))
        if fuse_overlay_problem(str(probe)):  # no fuse-overlayfs here: vfs, and why
            assert name == "vfs" and "refuses overlayfs" in why and "full copy" in why
        else:  # the program mounts where the kernel will not
            assert name == "fuse-overlayfs" and "refuses overlayfs" in why
        assert default_driver(str(probe)).name == name
        assert os.listdir(probe) == []


def test_lower_dirs() -> None:
    assert get_driver("overlay").lower_dirs(["a", "b", "c"]) == ["a", "b", "c"]
    assert get_driver("vfs").lower_dirs(["a", "b", "c"]) == ["c"]
    assert get_driver("vfs").lower_dirs([]) == []


# --------------------------------------------------------------------------- conformance


def test_stack_shows_the_merged_filesystem(
    driver: SnapshotDriver, chain: tuple[Path, Path], tmp_path: Path
) -> None:
    with overlay_view(driver.lower_dirs([str(p) for p in chain]), tmp_path / "mnt") as merged:
        assert view(merged) == MERGED
        assert os.getxattr(merged / "usr/bin/ping", "user.k") == b"v"
        ping = os.lstat(merged / "usr/bin/ping")
        assert stat.S_IMODE(ping.st_mode) == 0o4755
        assert os.lstat(merged / "home/u/f").st_uid == 1000


def test_create_reports_the_layer_size(driver: SnapshotDriver, tmp_path: Path) -> None:
    base = create(driver, tmp_path / "s1", None, BASE)
    layer = create(driver, tmp_path / "s2", tmp_path / "s1", LAYER)
    assert base == ApplyResult(size=11 + 9 + 1 + 1 + 1 + 300 + 4 + 4 + len("usr/bin"), entries=14)
    assert layer == ApplyResult(size=2 + 15 + 5, entries=9)


def test_export_round_trips_and_is_deterministic(
    driver: SnapshotDriver, chain: tuple[Path, Path], tmp_path: Path
) -> None:
    s1, s2 = chain
    diff = export(driver, s2, s1)
    assert export(driver, s2, s1) == diff
    again = tmp_path / "again"
    assert create(driver, again, s1, diff).size == 2 + 15 + 5
    with overlay_view(driver.lower_dirs([str(s1), str(again)]), tmp_path / "mnt") as merged:
        assert view(merged) == MERGED
    assert export(driver, again, s1) == diff
    base = export(driver, s1, None)
    fresh = tmp_path / "fresh"
    create(driver, fresh, None, base)
    assert export(driver, fresh, None) == base


def test_export_clamps_mtimes(driver: SnapshotDriver, chain: tuple[Path, Path]) -> None:
    s1, s2 = chain
    with tarfile.open(fileobj=io.BytesIO(export(driver, s2, s1, mtime_clamp=T0 - 5))) as tf:
        assert {m.mtime for m in tf} <= {0, T0 - 5}


# --------------------------------------------------------------------------- overlay only


def test_overlay_snapshot_keeps_whiteouts_and_writes_them_back(tmp_path: Path) -> None:
    drv = get_driver("overlay")
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    create(drv, s1, None, BASE)
    create(drv, s2, s1, LAYER)
    shadow = os.lstat(s2 / "etc/shadow")
    assert stat.S_ISCHR(shadow.st_mode) and shadow.st_rdev == 0
    assert os.getxattr(s2 / "etc/conf.d", OPAQUE_XATTR) == b"y"
    assert (s1 / "etc/shadow").read_bytes() == b"root:*:1\n"  # the lower layer is untouched
    with overlay_view(drv.lower_dirs([str(s1), str(s2)]), tmp_path / "mnt") as merged:
        assert not os.path.lexists(merged / "etc/shadow")
        assert os.listdir(merged / "etc/conf.d") == ["c"]
    assert names_of(export(drv, s2, s1)) == [
        "etc/",
        "etc/.wh.shadow",
        "etc/conf.d/",
        "etc/conf.d/.wh..wh..opq",
        "etc/conf.d/c",
        "etc/passwd",
        "new/",
        "new/file",
        "var/",
        "var/.wh.lib",
    ]


# --------------------------------------------------------------------------- vfs only


def test_vfs_copy_is_exact_but_shares_nothing_with_its_parent(tmp_path: Path) -> None:
    drv = get_driver("vfs")
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    create(drv, s1, None, BASE)
    create(drv, s2, s1, tar_bytes())
    before, after = meta(s1), meta(s2)
    assert before.keys() == after.keys()
    for path in before:
        assert after[path][:-1] == before[path][:-1], path
        assert after[path][-1] != before[path][-1], f"{path} is shared with the parent"
    assert after["usr/lib/libfoo.so"][-1] == after["usr/lib/libfoo.so.1"][-1]  # hardlink kept
    assert names_of(export(drv, s2, s1)) == []


def test_vfs_export_finds_every_kind_of_change(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    create(get_driver("vfs"), old, None, BASE)
    copy_tree(str(old), str(new))
    passwd = new / "etc/passwd"
    st = os.lstat(passwd)
    passwd.write_bytes(b"ROOT:x:0:0\n")  # same size, same mtime: only the content differs
    os.utime(passwd, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(new / "etc/shadow", 0o600)
    os.chown(new / "usr/lib/libfoo.so.1", 1001, 1000)  # one inode, two names
    os.setxattr(new / "usr/bin/ping", "user.k", b"w")
    os.unlink(new / "bin")
    os.symlink("usr/BIN", new / "bin")  # same length target
    os.utime(new / "bin", ns=(0, os.lstat(old / "bin").st_mtime_ns), follow_symlinks=False)
    shutil.rmtree(new / "var/lib")
    shutil.rmtree(new / "etc/conf.d")
    (new / "etc/conf.d").write_bytes(b"dir became a file")
    os.unlink(new / "home/u/f")
    os.unlink(new / "dev/null")
    os.mknod(new / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    for p in ("dev", "etc", "home/u", "var"):
        os.utime(new / p, ns=(0, os.lstat(old / p).st_mtime_ns))
    (new / "home/u/f").mkdir()  # file became a dir with children
    (new / "home/u/f/g").write_bytes(b"g")
    os.utime(new / "home/u", ns=(0, os.lstat(old / "home/u").st_mtime_ns))
    drv = get_driver("vfs")
    diff = export(drv, new, old)
    assert names_of(diff) == [
        "bin",
        "dev/",
        "dev/null",
        "etc/",
        "etc/conf.d",
        "etc/passwd",
        "etc/shadow",
        "home/",
        "home/u/",
        "home/u/f/",
        "home/u/f/g",
        "usr/",
        "usr/bin/",
        "usr/bin/ping",
        "usr/lib/",
        "usr/lib/libfoo.so",
        "usr/lib/libfoo.so.1",
        "var/",
        "var/.wh.lib",  # one whiteout for the removed dir, none for var/lib/x
    ]
    with tarfile.open(fileobj=io.BytesIO(diff)) as tf:
        assert tf.getmember("usr/lib/libfoo.so.1").linkname == "usr/lib/libfoo.so"
    replay = tmp_path / "replay"
    create(drv, replay, old, diff)
    assert view(replay) == view(new)
    assert meta(replay).keys() == meta(new).keys()
    got = meta(replay)
    for path, m in meta(new).items():  # all but the inode, mtimes in whole seconds as in a tar
        seconds = (*m[:3], m[3] // 10**9, *m[4:-1])
        assert (*got[path][:3], got[path][3] // 10**9, *got[path][4:-1]) == seconds, path


def test_fuse_overlayfs_snapshots_keep_wh_files_and_export_as_overlay_does(tmp_path: Path) -> None:
    """The fuse driver writes whiteouts and opaque dirs as the tar has them (fuse-overlayfs
    reads them; no mknod), and gives back the same layer bytes as the overlay driver."""
    tars = {}
    for name in ("overlay", "fuse-overlayfs"):
        drv = get_driver(name)
        s1, s2 = tmp_path / name / "s1", tmp_path / name / "s2"
        s1.parent.mkdir()
        create(drv, s1, None, BASE)
        create(drv, s2, s1, LAYER)
        tars[name] = export(drv, s2, s1)
        kinds = {p.name: p.lstat().st_mode for p in s2.rglob("*")}
        whiteouts = [n for n, mode in kinds.items() if stat.S_ISCHR(mode)]
        files = [n for n, mode in kinds.items() if n.startswith(".wh.") and stat.S_ISREG(mode)]
        if name == "fuse-overlayfs":
            assert files and not whiteouts
        else:
            assert whiteouts and not files
    assert tars["fuse-overlayfs"] == tars["overlay"]
