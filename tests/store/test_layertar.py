"""Layer tars <-> directories: real tars (Python's tarfile, GNU tar), real directories, as root."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipydock.engine.store.layertar import (
    OPAQUE_XATTR,
    ApplyResult,
    apply_tar,
    diff_size,
    write_tar,
)
from ipydock.errors import ArchiveError, IPyDockWarning, NoSpace, UnsafeArchiveEntry
from tests.conftest import require

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    require(os.geteuid() == 0, "layer tests need root (owners, devices)")


T0 = 1_600_000_000
# security.capability v2 with the effective flag and cap_net_bind_service (bit 10) permitted
CAP_NET_BIND = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


# --------------------------------------------------------------------------- helpers


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = T0,
    link: str = "",
    dev: tuple[int, int] = (0, 0),
    xattrs: dict[str, bytes] | None = None,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    info.linkname, (info.devmajor, info.devminor) = link, dev
    info.size = len(data)
    for key, value in (xattrs or {}).items():
        info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return info, data


def reg(name: str, data: bytes = b"", **kw) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.REGTYPE, data, **kw)


def dir_(name: str, **kw) -> tuple[tarfile.TarInfo, bytes]:
    kw.setdefault("mode", 0o755)
    return member(name, tarfile.DIRTYPE, **kw)


def sym(name: str, target: str, **kw) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.SYMTYPE, link=target, mode=0o777, **kw)


def hard(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, tarfile.LNKTYPE, link=target)


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


class OneWay(io.RawIOBase):
    """A pipe-like stream: not seekable, and short reads of at most ``step`` bytes."""

    def __init__(self, data: bytes, step: int = 777) -> None:
        self._buf = io.BytesIO(data)
        self._len = len(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        chunk = self._buf.read(min(len(b), self._step))
        b[: len(chunk)] = chunk
        return len(chunk)

    @property
    def at_eof(self) -> bool:
        return self._buf.tell() == self._len


def apply(data: bytes, target: Path, whiteouts: str = "overlay", **kw) -> ApplyResult:
    return apply_tar(OneWay(data), str(target), source="test.tar", whiteouts=whiteouts, **kw)


def tar_of(src: Path, **kw) -> bytes:
    out = io.BytesIO()
    write_tar(str(src), out, **kw)
    return out.getvalue()


def names_of(data: bytes) -> list[str]:
    """Entry names exactly as stored (GNU tar lists dirs with their trailing '/')."""
    proc = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True, check=True)
    return proc.stdout.decode().splitlines()


def tree(path: Path) -> dict[str, tuple]:
    """Everything below ``path``: type+mode, owner, mtime, content digest or link, xattrs."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = st.st_rdev
            xattrs = tuple(sorted(os.listxattr(p, follow_symlinks=False)))
            rel = os.path.relpath(p, path)
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, what, xattrs)
    return out


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "target"
    t.mkdir()
    return t


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, unmounted even when the test fails."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], check=True)
    try:
        yield small
    finally:
        subprocess.run(["umount", str(small)], check=True)


# --------------------------------------------------------------------------- apply: entry kinds


def test_apply_keeps_every_kind_of_entry(target: Path) -> None:
    data = tar_bytes(
        dir_("bin", mode=0o755, mtime=T0 - 100),
        reg("bin/su", b"#!su", mode=0o4755, uid=0, gid=0),
        reg("bin/ping", b"ping", mode=0o755, xattrs={"security.capability": CAP_NET_BIND}),
        dir_("tmp", mode=0o1777),
        reg("home/u/f", b"x" * 3000, mode=0o640, uid=1000, gid=1001, xattrs={"user.k": b"\xffb"}),
        sym("home/abs", "/etc/passwd", uid=1000),
        sym("home/up", "../../../../x"),
        hard("home/u/g", "home/u/f"),
        member("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        member("dev/loop0", tarfile.BLKTYPE, mode=0o660, dev=(7, 0), gid=6),
        member("run/fifo", tarfile.FIFOTYPE, mode=0o600),
        reg("x", b"trusted stays out", xattrs={"trusted.overlay.opaque": b"y"}),
    )
    result = apply(data, target)

    assert result == ApplyResult(size=4 + 4 + 3000 + len("/etc/passwd") + 13 + 17, entries=12)
    su = os.lstat(target / "bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_mtime == T0
    assert stat.S_IMODE(os.lstat(target / "tmp").st_mode) == 0o1777
    assert os.getxattr(target / "bin/ping", "security.capability") == CAP_NET_BIND
    f = os.lstat(target / "home/u/f")
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode), f.st_nlink) == (1000, 1001, 0o640, 2)
    assert os.getxattr(target / "home/u/f", "user.k") == b"\xffb"
    assert os.lstat(target / "home/u/g").st_ino == f.st_ino
    assert os.readlink(target / "home/abs") == "/etc/passwd"
    assert os.lstat(target / "home/abs").st_uid == 1000
    assert os.readlink(target / "home/up") == "../../../../x"
    null = os.lstat(target / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    loop = os.lstat(target / "dev/loop0")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_gid == 6
    assert stat.S_ISFIFO(os.lstat(target / "run/fifo").st_mode)
    assert os.listxattr(target / "x") == []
    assert os.lstat(target / "bin").st_mtime == T0 - 100  # set after its children were written


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_file_modes_are_the_archives_whatever_the_umask(target: Path, umask: int) -> None:
    """A file is created with its mode (no chmod when the umask takes nothing from it)."""
    modes = [0o644, 0o755, 0o666, 0o664, 0o777, 0o000, 0o400, 0o4755, 0o2750, 0o1644, 0o6711]
    data = tar_bytes(*(reg(f"f{m:o}", b"x", mode=m, uid=7, gid=8) for m in modes))
    old = os.umask(umask)
    try:
        apply(data, target)
    finally:
        os.umask(old)
    got = {m: stat.S_IMODE(os.lstat(target / f"f{m:o}").st_mode) for m in modes}
    assert got == {m: m for m in modes}
    assert {(os.lstat(target / f"f{m:o}").st_uid, os.lstat(target / f"f{m:o}").st_gid)
            for m in modes} == {(7, 8)}  # fmt: skip


def test_apply_normalises_names_and_root_entry(target: Path) -> None:
    data = tar_bytes(
        dir_("./", mode=0o700, mtime=T0 + 5),
        dir_("./a/", mode=0o711),
        reg("./a//b", b"1"),
        reg("c/../d", b"2"),
    )
    apply(data, target)
    assert sorted(os.listdir(target)) == ["a", "d"]
    assert (target / "a/b").read_bytes() == b"1"
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o700
    assert os.lstat(target).st_mtime == T0 + 5
    assert stat.S_IMODE(os.lstat(target / "a").st_mode) == 0o711


def test_later_entries_replace_earlier_ones_of_another_type(target: Path) -> None:
    data = tar_bytes(
        reg("x", b"file"),
        dir_("x"),
        reg("x/y", b"in dir"),
        dir_("y"),
        reg("y/z", b"gone with y"),
        reg("y", b"file over dir"),
        reg("s", b"file"),
        sym("s", "elsewhere"),
        dir_("m", mode=0o755),
        reg("m/keep", b"k"),
        dir_("m", mode=0o700),
        reg("h", b"old"),
        reg("src", b"new"),
        hard("h", "src"),
    )
    apply(data, target)
    assert (target / "x/y").read_bytes() == b"in dir"
    assert (target / "y").read_bytes() == b"file over dir"
    assert os.readlink(target / "s") == "elsewhere"
    assert stat.S_IMODE(os.lstat(target / "m").st_mode) == 0o700
    assert (target / "m/keep").exists()
    assert (target / "h").read_bytes() == b"new"


def test_apply_reads_a_sequential_stream_to_its_end(target: Path) -> None:
    data = tar_bytes(reg("a", b"a" * 100_000)) + b"\0" * 20_000  # extra padding after the end
    stream = OneWay(data, step=4096)
    apply_tar(stream, str(target), source="s", whiteouts="overlay")
    assert stream.at_eof
    assert (target / "a").read_bytes() == b"a" * 100_000


def test_empty_stream_is_an_empty_layer(target: Path) -> None:
    assert apply(b"", target) == ApplyResult(size=0, entries=0)
    assert apply(b"\0" * 1024, target) == ApplyResult(size=0, entries=0)


# --------------------------------------------------------------------------- whiteouts


def test_overlay_whiteouts_become_char_devices_and_opaque_xattrs(target: Path) -> None:
    data = tar_bytes(
        reg(".wh.gone", uid=5),
        dir_("d"),
        reg("d/.wh..wh..opq"),
        reg("d/new", b"n"),
        reg("e/sub/.wh.old"),
        reg(".wh..wh.plnk/123", b"aufs metadata"),
    )
    result = apply(data, target)
    gone = os.lstat(target / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(target / "d", OPAQUE_XATTR) == b"y"
    assert stat.S_ISCHR(os.lstat(target / "e/sub/old").st_mode)
    assert sorted(os.listdir(target)) == ["d", "e", "gone"]
    assert sorted(os.listdir(target / "d")) == ["new"]
    assert result == ApplyResult(size=1, entries=5)


def test_delete_whiteouts_remove_and_opaque_empties_older_entries(target: Path) -> None:
    parent = tar_bytes(
        reg("a", b"a"),
        reg("d/x", b"x"),
        reg("d/sub/y", b"y"),
        reg("e/old", b"o"),
        reg("f/sub/old", b"o"),
        reg("f/other", b"o"),
        reg("keep/z", b"z"),
        dir_("gone-dir"),
        reg("gone-dir/deep/file", b"f"),
    )
    apply(parent, target, "delete")
    layer = tar_bytes(
        reg(".wh.a"),
        reg(".wh.gone-dir"),
        reg(".wh.never-existed"),
        dir_("d"),
        reg("d/.wh..wh..opq"),  # Docker's order: marker right after its dir
        reg("d/new", b"n"),
        reg("e/added", b"a"),
        reg("e/.wh..wh..opq"),  # marker after an entry of the same layer: that entry stays
        reg("f/sub/new", b"n"),  # f/sub pre-existed: it stays, but only with what we wrote
        reg("f/.wh..wh..opq"),
    )
    result = apply(layer, target, "delete")
    assert sorted(os.listdir(target)) == ["d", "e", "f", "keep"]
    assert sorted(os.listdir(target / "d")) == ["new"]
    assert sorted(os.listdir(target / "e")) == ["added"]
    assert sorted(os.listdir(target / "f")) == ["sub"]
    assert sorted(os.listdir(target / "f/sub")) == ["new"]
    assert (target / "keep/z").read_bytes() == b"z"
    assert result == ApplyResult(size=3, entries=10)
    assert not any(n.startswith(".wh.") for _, ds, fs in os.walk(target) for n in ds + fs)


# --------------------------------------------------------------------------- safety


def _unsafe_cases(outside: str) -> list[tuple[str, str, bytes]]:
    return [
        ("absolute", "/etc/evil", tar_bytes(reg("/etc/evil", b"!"))),
        ("dotdot", "../evil", tar_bytes(reg("../evil", b"!"))),
        ("nested dotdot", "a/../../evil", tar_bytes(reg("a/../../evil", b"!"))),
        ("under abs symlink", "l/evil", tar_bytes(sym("l", outside), reg("l/evil", b"!"))),
        ("under rel symlink", "l/evil", tar_bytes(sym("l", "../outside"), reg("l/evil", b"!"))),
        ("deep under symlink", "d/l/x/e", tar_bytes(dir_("d"), sym("d/l", "/"), reg("d/l/x/e"))),
        ("./ under symlink", "./l/evil", tar_bytes(sym("l", outside), reg("./l/evil", b"!"))),
        (
            "symlink replaces a dir",
            "a/evil",
            tar_bytes(dir_("a"), reg("a/ok"), sym("a", outside), reg("a/evil", b"!")),
        ),
        (
            "whiteout under symlink",
            "l/.wh.secret",
            tar_bytes(sym("l", outside), reg("l/.wh.secret")),
        ),
        (
            "opaque under symlink",
            "l/.wh..wh..opq",
            tar_bytes(sym("l", outside), reg("l/.wh..wh..opq")),
        ),
        ("hardlink escapes", "h", tar_bytes(hard("h", "../outside/secret"))),
        ("hardlink absolute", "h", tar_bytes(hard("h", f"{outside}/secret"))),
        ("hardlink via symlink", "h", tar_bytes(sym("l", outside), hard("h", "l/secret"))),
        ("hardlink missing", "h", tar_bytes(hard("h", "nope"))),
        ("hardlink to dir", "h", tar_bytes(dir_("d"), hard("h", "d"))),
        ("whiteout of ..", ".wh...", tar_bytes(reg(".wh..."))),
        ("whiteout of .", "d/.wh..", tar_bytes(reg("d/.wh.."))),
        ("root replaced", "./", tar_bytes(sym("./", outside))),
    ]


@pytest.mark.parametrize("whiteouts", ["overlay", "delete"])
@pytest.mark.parametrize("case", range(len(_unsafe_cases("/x"))))
def test_unsafe_entries_are_refused_and_nothing_outside_changes(
    tmp_path: Path, target: Path, whiteouts: str, case: int
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (outside / "x").mkdir()
    why, entry, data = _unsafe_cases(str(outside))[case]
    before = tree(tmp_path / "outside"), sorted(os.listdir(tmp_path)), tree(Path("/etc"))

    with pytest.raises(UnsafeArchiveEntry) as err:
        apply(data, target, whiteouts)

    assert err.value.entry == entry, why
    assert err.value.source == "test.tar"
    assert (tree(tmp_path / "outside"), sorted(os.listdir(tmp_path)), tree(Path("/etc"))) == before
    assert not os.path.lexists(tmp_path / "evil")


#: Enough files before the entries under test that work done ahead (read-ahead, threads)
#: would still be pending.
MANY = [reg(f"pre/f{i:03d}", b"%d" % i) for i in range(100)]


@pytest.mark.parametrize("whiteouts", ["overlay", "delete"])
@pytest.mark.parametrize(
    ("entry", "tail"),
    [
        ("l/evil", lambda out: [sym("l", out), reg("l/evil", b"!")]),
        ("a/evil", lambda out: [dir_("a"), reg("a/ok"), sym("a", out), reg("a/evil", b"!")]),
        ("h", lambda out: [sym("l", out), hard("h", "l/secret")]),
        ("pre/f099/evil", lambda out: [sym("pre/f099", out), reg("pre/f099/evil", b"!")]),
    ],
)
def test_unsafe_entries_after_many_files_are_refused(
    tmp_path: Path, target: Path, whiteouts: str, entry: str, tail
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    before = tree(outside)

    with pytest.raises(UnsafeArchiveEntry) as err:
        apply(tar_bytes(*MANY, *tail(str(outside))), target, whiteouts)

    assert err.value.entry == entry
    assert tree(outside) == before


@pytest.mark.parametrize("whiteouts", ["overlay", "delete"])
def test_entries_that_meet_after_many_files_keep_their_order(target: Path, whiteouts: str) -> None:
    big = os.urandom(3 << 20)  # streamed in order, not held in memory
    layer = tar_bytes(
        *MANY,
        reg("x/twice", b"first"),
        reg("x/twice", b"second", mode=0o600),  # the later entry wins
        reg("x/becomes-dir", b"file"),
        dir_("x/becomes-dir", mode=0o700),
        reg("x/becomes-dir/in", b"in"),
        reg("x/linked", b"data", mode=0o4755, uid=7, gid=8, xattrs={"user.k": b"v"}),
        hard("x/hard", "x/linked"),
        sym("x/sym", "twice"),
        reg("x/sym", b"not a link any more"),
        reg("x/big", big, mtime=T0 + 5),
        reg("x/gone", b"g"),
        reg("x/.wh.gone"),
        dir_("x", mode=0o750, mtime=T0 + 9),  # a directory entry after its files
    )
    result = apply(layer, target, whiteouts)

    x = target / "x"
    assert (x / "twice").read_bytes() == b"second" and stat.S_IMODE(
        (x / "twice").stat().st_mode
    ) == 0o600
    assert (x / "becomes-dir/in").read_bytes() == b"in"
    assert stat.S_IMODE((x / "becomes-dir").stat().st_mode) == 0o700
    linked = (x / "linked").stat()
    assert (stat.S_IMODE(linked.st_mode), linked.st_uid, linked.st_gid) == (0o4755, 7, 8)
    assert os.getxattr(x / "linked", "user.k") == b"v"
    assert (x / "hard").stat().st_ino == linked.st_ino
    assert not (x / "sym").is_symlink() and (x / "sym").read_bytes() == b"not a link any more"
    assert (x / "big").read_bytes() == big and (x / "big").stat().st_mtime == T0 + 5
    if whiteouts == "overlay":
        assert stat.S_ISCHR(os.lstat(x / "gone").st_mode)
    else:
        assert not os.path.lexists(x / "gone")
    assert (x.stat().st_mtime, stat.S_IMODE(x.stat().st_mode)) == (T0 + 9, 0o750)
    assert [(target / f"pre/f{i:03d}").read_bytes() for i in range(100)] == [
        b"%d" % i for i in range(100)
    ]
    assert (target / "pre/f042").stat().st_mtime == T0
    assert result.entries == 100 + 13


def test_file_in_place_of_a_needed_dir_is_an_error_after_many_files(
    target: Path,
) -> None:
    with pytest.raises(ArchiveError, match="needs 'pre/f099' to be a directory"):
        apply(tar_bytes(*MANY, reg("pre/f099/x", b"x")), target)


def test_symlink_in_the_parent_snapshot_is_not_followed(tmp_path: Path, target: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), target / "pre")
    with pytest.raises(UnsafeArchiveEntry) as err:
        apply(tar_bytes(reg("pre/evil", b"!")), target, "delete")
    assert err.value.entry == "pre/evil"
    assert os.listdir(outside) == []


def test_entries_replace_symlinks_of_the_parent_snapshot_without_following(
    tmp_path: Path, target: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_bytes(b"secret")
    os.symlink(str(outside / "secret"), target / "file")
    os.symlink(str(outside / "dir"), target / "dir")
    apply(tar_bytes(reg("file", b"mine", mode=0o666), dir_("dir", mode=0o700)), target, "delete")
    assert (outside / "secret").read_bytes() == b"secret"
    assert stat.S_IMODE(os.lstat(outside / "secret").st_mode) != 0o666
    assert stat.S_IMODE(os.lstat(outside / "dir").st_mode) != 0o700
    assert (target / "file").read_bytes() == b"mine" and not (target / "dir").is_symlink()


def test_sockets_are_left_out_of_a_layer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"f")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        assert names_of(tar_of(src)) == ["f"]


def test_hardlink_to_a_file_of_the_parent_snapshot_is_allowed(target: Path) -> None:
    (target / "old").write_bytes(b"12345")
    result = apply(tar_bytes(hard("new", "old")), target, "delete")
    assert os.lstat(target / "new").st_ino == os.lstat(target / "old").st_ino
    assert result == ApplyResult(size=5, entries=1)


@pytest.mark.parametrize(
    "kind,dev", [(tarfile.CHRTYPE, (1, 3)), (tarfile.BLKTYPE, (7, 0))], ids=["char", "block"]
)
def test_devices_are_skipped_with_one_warning_when_rootless(
    target: Path, kind: bytes, dev: tuple
) -> None:
    data = tar_bytes(
        member("dev/x", kind, dev=dev),
        member("dev/y", kind, dev=dev),
        hard("dev/z", "dev/x"),
        member("fifo", tarfile.FIFOTYPE),
        member("f", data=b"abc"),
    )
    with pytest.warns(IPyDockWarning) as caught:
        result = apply(data, target, rootless=True)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "3 device node(s) of test.tar" in text and "/dev/x, /dev/y, /dev/z" in text
    assert sorted(os.listdir(target / "dev")) == []
    assert stat.S_ISFIFO(os.lstat(target / "fifo").st_mode)  # fifos are made
    assert (target / "f").read_bytes() == b"abc"
    assert result.entries == 5 and result.size == 3


# --------------------------------------------------------------------------- broken archives


def _two_files() -> bytes:
    return tar_bytes(reg("a", b"a" * 5000), reg("b", b"b" * 100))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda d: d[:3000], id="cut in data"),
        pytest.param(lambda d: d[: 512 * 11 + 100], id="cut in a header"),
        pytest.param(lambda d: d[:100], id="cut in the first header"),
        pytest.param(lambda d: d[: 512 * 11] + b"Z" * 512 + d[512 * 12 :], id="bad checksum"),
        pytest.param(lambda d: b"not a tar at all " * 100, id="garbage"),
    ],
)
def test_corrupt_or_truncated_tar_is_an_archive_error(target: Path, mangle) -> None:
    data = _two_files()
    assert len(data) > 512 * 12
    with pytest.raises(ArchiveError) as err:
        apply(mangle(data), target)
    assert type(err.value) is ArchiveError
    assert err.value.source == "test.tar"


def test_negative_pax_size_is_an_archive_error(target: Path) -> None:
    info, _ = reg("a")
    info.pax_headers = {"size": "-1"}  # found by the fuzz suite
    with pytest.raises(ArchiveError, match="invalid size -1"):
        apply(tar_bytes((info, b"")), target)


def test_full_disk_is_no_space(mount_tmpfs: Path) -> None:
    target = mount_tmpfs / "target"
    target.mkdir()
    with pytest.raises(NoSpace) as err:
        apply(tar_bytes(reg("big", os.urandom(1 << 20))), target)
    assert err.value.path == str(target)


# --------------------------------------------------------------------------- sizes


def test_size_counts_hardlinked_inodes_once_and_whiteouts_zero(target: Path) -> None:
    data = tar_bytes(
        reg("a", b"a" * 100),
        hard("b", "a"),
        hard("c", "a"),
        sym("s", "12345"),  # Docker counts a symlink's target length (pkg/directory)
        reg("empty"),
        dir_("d"),
        reg(".wh.gone"),
        member("fifo", tarfile.FIFOTYPE),
    )
    result = apply(data, target)
    assert result == ApplyResult(size=105, entries=8)
    assert diff_size(str(target)) == 105
    out = io.BytesIO()
    assert write_tar(str(target), out).size == 105


# --------------------------------------------------------------------------- writing


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A snapshot dir with every kind of entry, overlay whiteouts and an opaque dir."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "b").mkdir()
    (src / "b/z").write_bytes(b"z")
    (src / "a-b").write_bytes(b"ab")
    (src / "a").mkdir()
    (src / "a/x").write_bytes(b"x" * 10)
    (src / "B").write_bytes(b"upper case sorts first")
    (src / "h1").write_bytes(b"hard")
    os.link(src / "h1", src / "h2")
    os.symlink("/target/of/link", src / "link")
    os.mkfifo(src / "fifo")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "gone", stat.S_IFCHR, 0)
    (src / "o").mkdir()
    (src / "o/k").write_bytes(b"k")
    os.setxattr(src / "o", OPAQUE_XATTR, b"y")
    (src / "cap").write_bytes(b"c")
    os.chown(src / "cap", 1000, 1000)
    os.chmod(src / "cap", 0o4750)
    os.setxattr(src / "cap", "security.capability", CAP_NET_BIND)
    os.setxattr(src / "cap", "user.note", b"\xff\x00binary")
    os.setxattr(src / "cap", "trusted.private", b"never")
    (src / "caf\u00e9").write_bytes(b"utf8")
    Path(os.fsdecode(bytes(src) + b"/raw\xff")).write_bytes(b"not UTF-8: must survive as bytes")
    for p in [*src.rglob("*"), src]:
        os.utime(p, (T0, T0), follow_symlinks=False)
    return src


def test_write_tar_normalises_entries(sample: Path) -> None:
    data = tar_of(sample)
    assert names_of(data) == [
        ".wh.gone",
        "B",
        "a/",
        "a/x",
        "a-b",
        "b/",
        "b/z",
        "caf\u00e9",
        "cap",
        "fifo",
        "h1",
        "h2",
        "link",
        "null",
        "o/",
        "o/.wh..wh..opq",
        "o/k",
        "raw\\377",
    ]
    with tarfile.open(fileobj=io.BytesIO(data), errors="surrogateescape") as tf:
        members = {m.name: m for m in tf}
    for m in members.values():
        assert (m.uname, m.gname) == ("", "")
        assert not {"atime", "ctime", "mtime"} & set(m.pax_headers)
    cap = members["cap"]
    assert (cap.uid, cap.gid, cap.mode, cap.mtime) == (1000, 1000, 0o4750, T0)
    xattrs = {k: v.encode("utf-8", "surrogateescape") for k, v in cap.pax_headers.items()}
    assert xattrs["SCHILY.xattr.security.capability"] == CAP_NET_BIND
    assert xattrs["SCHILY.xattr.user.note"] == b"\xff\x00binary"
    assert not any("trusted" in k for m in members.values() for k in m.pax_headers)
    assert (members["h2"].type, members["h2"].linkname, members["h2"].size) == (
        tarfile.LNKTYPE,
        "h1",
        0,
    )
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (
        1,
        3,
    )
    assert members["link"].linkname == "/target/of/link"
    assert members[".wh.gone"].isreg() and members[".wh.gone"].size == 0
    assert members["o"].pax_headers == {}  # the opaque xattr is not recorded


def test_write_tar_gives_the_same_bytes_and_survives_a_round_trip(
    sample: Path, tmp_path: Path
) -> None:
    first = tar_of(sample)
    assert tar_of(sample) == first
    copy = tmp_path / "copy"
    copy.mkdir()
    apply(first, copy)
    assert tar_of(copy) == first
    got, want = tree(copy), tree(sample)
    assert got.pop("gone")[:3] == want.pop("gone")[:3]  # a whiteout keeps no mtime
    want["cap"] = (*want["cap"][:5], ("security.capability", "user.note"))  # no trusted.*
    assert got == want


def test_write_tar_gives_the_bytes_tarfile_gives(sample: Path) -> None:
    """The headers made by hand for plain entries are those ``tarfile`` (PAX) makes; long and
    non-ASCII names, long link targets and xattrs keep its PAX records."""
    (sample / ("long-" * 30)).write_bytes(b"long name")
    os.symlink("t" * 150, sample / "long-link")
    (sample / "d").mkdir()
    (sample / "d" / ("n" * 99)).write_bytes(b"a name of 101 bytes with d/")
    (sample / "big-id").write_bytes(b"x" * 513)
    os.chown(sample / "big-id", 3_000_000, 3_000_000)
    data = tar_of(sample)
    again = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), errors="surrogateescape") as src,
        tarfile.open(fileobj=again, mode="w", format=tarfile.PAX_FORMAT,
                     errors="surrogateescape") as dst,
    ):  # fmt: skip
        for m in src:
            m.pax_headers.pop("hdrcharset", None)  # the reader's note on binary xattr values
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    assert again.getvalue() == data
    assert len(data) % (20 * 512) == 0


def test_mtime_clamp_makes_different_mtimes_identical(sample: Path, tmp_path: Path) -> None:
    before = tar_of(sample, mtime_clamp=T0 - 1000)
    for p in [*sample.rglob("*"), sample]:
        os.utime(p, (T0 + 77, T0 + 77), follow_symlinks=False)
    assert tar_of(sample, mtime_clamp=T0 - 1000) == before
    with tarfile.open(fileobj=io.BytesIO(before)) as tf:
        assert {m.mtime for m in tf} == {0, T0 - 1000}  # whiteout markers carry mtime 0
    assert tar_of(sample) != before


def test_whiteouts_none_writes_char_devices_as_they_are(sample: Path) -> None:
    names = names_of(tar_of(sample, whiteouts="none"))
    assert "gone" in names and ".wh.gone" not in names and "o/.wh..wh..opq" not in names


# --------------------------------------------------------------------------- GNU tar interop


def test_gnu_tar_archive_applies(tmp_path: Path, target: Path) -> None:
    src = tmp_path / "gnu"
    deep = src / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("f" * 60)).write_bytes(b"long name")
    os.link(deep / ("f" * 60), src / "hl")
    os.setxattr(deep / ("f" * 60), "user.gnu", b"v")
    subprocess.run(
        [
            "tar",
            "--format=posix",
            "--xattrs",
            "--xattrs-include=*",
            "-cf",
            "g.tar",
            "-C",
            str(src),
            ".",
        ],
        cwd=tmp_path,
        check=True,
    )
    with open(tmp_path / "g.tar", "rb") as f:
        apply_tar(f, str(target), source="g.tar", whiteouts="overlay")
    got = target / ("d" * 60) / ("e" * 60) / ("f" * 60)
    assert got.read_bytes() == b"long name"
    assert os.getxattr(got, "user.gnu") == b"v"
    assert os.lstat(target / "hl").st_ino == os.lstat(got).st_ino


def test_gnu_tar_reads_what_we_write(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", str(out)],
        input=tar_of(sample, whiteouts="none"),
        check=True,
    )
    assert (out / "a/x").read_bytes() == b"x" * 10
    assert os.readlink(out / "link") == "/target/of/link"
    assert os.getxattr(out / "cap", "security.capability") == CAP_NET_BIND
    assert os.lstat(out / "h2").st_ino == os.lstat(out / "h1").st_ino
