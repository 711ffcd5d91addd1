"""The tar member reader against ``tarfile`` itself: the same members, field for field, and the
same error, for archives tarfile writes (ustar, GNU, PAX), hand-made headers in the forms other
writers use, and damaged archives."""

from __future__ import annotations

import contextlib
import io
import tarfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipydock.engine.store.tarread import TarMembers, _ForwardReader, _StrictTarInfo

FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname",
          "gname", "devmajor", "devminor", "offset", "offset_data", "pax_headers",
          "sparse")  # fmt: skip


def outcome(members: Any) -> tuple[list[tuple[Any, ...]], str]:
    """Every member's fields, then the error that ended the reading ("" for none)."""
    seen: list[tuple[Any, ...]] = []
    try:
        while (m := members()) is not None:
            seen.append(tuple(getattr(m, f) for f in FIELDS))
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return seen, f"{type(e).__name__}: {e}"
    return seen, ""


def ours(raw: bytes) -> tuple[list[tuple[Any, ...]], str]:
    return outcome(TarMembers(io.BytesIO(raw)).next)


def tarfiles(raw: bytes) -> tuple[list[tuple[Any, ...]], str]:
    """tarfile's reading, as apply_tar did it before the fast path."""
    try:
        tar = tarfile.TarFile(fileobj=_ForwardReader(io.BytesIO(raw)), mode="r",  # type: ignore[arg-type]
                              tarinfo=_StrictTarInfo, encoding="utf-8",
                              errors="surrogateescape")  # fmt: skip
    except Exception as e:  # noqa: BLE001
        return [], f"{type(e).__name__}: {e}"
    return outcome(tar.next)


def same(raw: bytes) -> None:
    assert ours(raw) == tarfiles(raw)


NAME = st.lists(
    st.sampled_from(["a", "b/", "/", ".", "..", "é", "x" * 60, "\udcff", " ", "dir/"]),
    min_size=1, max_size=4,
).map("".join)  # fmt: skip
KINDS = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.CONTTYPE, b"V",
         b"Z"]  # fmt: skip
MEMBER = st.fixed_dictionaries({
    "name": NAME, "type": st.sampled_from(KINDS), "link": NAME, "data": st.binary(max_size=700),
    "mode": st.integers(0, 0o7777), "uid": st.integers(0, 2**24), "gid": st.integers(0, 2**22),
    "mtime": st.one_of(st.integers(-(2**33), 2**34), st.floats(0, 2**31, allow_nan=False)),
    "dev": st.tuples(st.integers(0, 2**22), st.integers(0, 2**22)),
    "uname": st.sampled_from(["", "root", "é" * 40]),
    "pax": st.dictionaries(st.sampled_from(["comment", "SCHILY.xattr.user.a", "mtime", "uid"]),
                           st.sampled_from(["1", "x", "1.5", "é"]), max_size=2),
})  # fmt: skip
FORMAT = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


def build(members: list[dict[str, Any]], fmt: int, global_pax: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    pax = global_pax if fmt == tarfile.PAX_FORMAT else None
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax) as tf:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type, info.linkname, info.mode = m["type"], m["link"], m["mode"]
            info.uid, info.gid, info.mtime, info.uname = m["uid"], m["gid"], m["mtime"], m["uname"]
            info.devmajor, info.devminor = m["dev"]
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = dict(m["pax"])
            data = m["data"] if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else b""
            info.size = len(data)
            with contextlib.suppress(ValueError, UnicodeError):  # not in this format: left out
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@SETTINGS
@given(st.lists(MEMBER, max_size=5), FORMAT,
       st.dictionaries(st.sampled_from(["comment", "uid"]), st.just("7"), max_size=1))  # fmt: skip
def test_archives_tarfile_writes_read_the_same(members: list[dict[str, Any]], fmt: int,
                                               global_pax: dict[str, str]) -> None:  # fmt: skip
    same(build(members, fmt, global_pax))


@SETTINGS
@given(st.lists(MEMBER, min_size=1, max_size=3), FORMAT,
       st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, 4000))  # fmt: skip
def test_damaged_archives_fail_or_end_the_same(
    members: list[dict[str, Any]], fmt: int, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(build(members, fmt, {}))
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    same(bytes(raw[:cut]))


def header(fields: dict[str, bytes], *, signed: bool = False) -> bytes:
    """A header block with these raw fields, its checksum right (unsigned, or signed)."""
    spans = {"name": (0, 100), "mode": (100, 108), "uid": (108, 116), "gid": (116, 124),
             "size": (124, 136), "mtime": (136, 148), "type": (156, 157), "link": (157, 257),
             "magic": (257, 265), "uname": (265, 297), "gname": (297, 329),
             "major": (329, 337), "minor": (337, 345), "prefix": (345, 500)}  # fmt: skip
    block = bytearray(512)
    for key, value in {"mode": b"0000644\0", "magic": b"ustar\x0000", **fields}.items():
        a, b = spans[key]
        block[a : a + len(value)] = value[: b - a]
    block[148:156] = b" " * 8
    total = sum((x - 256 if x > 127 else x) if signed else x for x in block)
    block[148:156] = b"%06o\0 " % (total % 8**6)
    return bytes(block)


OCTAL = st.sampled_from([b"0000644\0", b"644 \0", b"  644\0", b"0000644 ", b"00000644",
                         b"\0\0\0\0\0\0\0\0", b"7 7\0", b"\0 644", b"-1\0", b"1_0\0",
                         b"\x80\0\0\0\0\0\1\0", b"\xff\xff\xff\xff\xff\xff\xff\xff",
                         b"0o17\0", b"99\0", b"\x1c7\0", b" \t7\0"])  # fmt: skip
SIZE = st.sampled_from([b"00000000012\0", b"12 \0", b"000000000000", b"\0" * 12, b"1 2\0",
                        b"\x80" + b"\0" * 10 + b"\x0c"])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(name=st.sampled_from([b"a", b"d/", b"d//", b"\xc3\xa9", b"\xff", b"x" * 100, b""]),
       kind=st.sampled_from([b"0", b"\0", b"5", b"2", b"1", b"3", b"7", b"S", b"g", b"x", b"L",
                             b"?"]),
       mode=OCTAL, uid=OCTAL, size=SIZE, major=OCTAL,
       prefix=st.sampled_from([b"", b"p", b"p/", b"\xc3\xa9", b"q" * 155]),
       signed=st.booleans(), data=st.binary(max_size=30))  # fmt: skip
def test_headers_in_other_writers_forms(name: bytes, kind: bytes, mode: bytes, uid: bytes,
                                        size: bytes, major: bytes, prefix: bytes, signed: bool,
                                        data: bytes) -> None:  # fmt: skip
    block = header({"name": name, "type": kind, "mode": mode, "uid": uid, "size": size,
                    "major": major, "prefix": prefix, "uname": b"r\xc3\xa9"},
                   signed=signed)  # fmt: skip
    rest = data.ljust(512, b"\0") + header({"name": b"next", "size": b"0\0"}) + bytes(1024)
    same(block + rest)


@pytest.mark.parametrize("raw", [b"", b"\0" * 1024, b"x" * 100, b"\0" * 300, b"y" * 512],
                         ids=["empty", "zeros", "short", "short-zeros", "garbage"])  # fmt: skip
def test_edges(raw: bytes) -> None:
    same(raw)


def test_a_layer_of_each_kind_and_its_data() -> None:
    """The fast path's members carry what apply_tar reads, and the data is where they say."""
    members = [{"name": "etc", "type": tarfile.DIRTYPE}, {"name": "etc/f", "data": b"x" * 700},
               {"name": "etc/l", "type": tarfile.SYMTYPE, "link": "f"}]  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type = m.get("type", tarfile.REGTYPE)
            info.linkname = m.get("link", "")
            data = m.get("data", b"")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tar = TarMembers(io.BytesIO(buf.getvalue()))
    got = []
    while (m := tar.next()) is not None:
        data = b""
        if m.isreg():
            tar.fileobj.seek(m.offset_data)
            data = tar.fileobj.read(m.size)
        got.append((m.name, m.type, m.linkname, data))
    assert got == [("etc", tarfile.DIRTYPE, "", b""), ("etc/f", tarfile.REGTYPE, "", b"x" * 700),
                   ("etc/l", tarfile.SYMTYPE, "f", b"")]  # fmt: skip
    tar.fileobj.drain()
    assert tar.fileobj.tell() == len(buf.getvalue())
