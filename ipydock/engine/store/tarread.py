"""Tar members from a forward-only stream, as ``tarfile`` reads them but faster.

::

    stream --_ForwardReader (buffered, forward seeks, tell)--> 512-byte header
        one block, plain type (file, link, symlink, device, dir, fifo), plain octal numbers,
        right unsigned checksum, no global PAX header seen --> parsed here (a few us)
        anything else (PAX 'x'/'g', GNU long names 'L'/'K', sparse, base-256 numbers, signed
        checksum, broken or end blocks) --> pushed back, and tarfile's own code reads it

A layer of 10,000 small files is mostly headers: ``tarfile`` spends ~40 us on each (checksums
summed twice through ``struct``, every field decoded through ``nts``/``nti``), a third of an
``image import``. The fast path gives the same :class:`tarfile.TarInfo` for the same block,
field for field (``tests/store/test_tarread.py`` checks it against ``tarfile`` on generated and
damaged archives); whatever it does not know is left to ``tarfile``, so the rules stay
tarfile's (with one change, as apply_tar always had it: a truncated or corrupt header is an
error, :class:`BadHeader`, not the end): an all-zero block or the end of the stream between
members ends the archive, an empty stream is :class:`tarfile.ReadError` with ``tell() == 0``.
"""

from __future__ import annotations

import errno
import os
import tarfile
from typing import BinaryIO
from zlib import adler32

from ipydock.engine.store.layerfmt import CHUNK

__all__ = ["BadHeader", "TarMembers"]

_BLOCK = tarfile.BLOCKSIZE
_FILL = 1 << 16  # the reader's buffer: many headers and small files per read of the stream
# one-block members of these types carry everything in their header
_PLAIN = frozenset(b"01234567\0")
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)  # data follows (not sparse)
_NUMBER_BYTES = b"01234567 \0"  # octal digits, padding: what the fast path reads as numbers

# not in typeshed, but public in tarfile since 3.2
_TRUNCATED: type[Exception] = tarfile.TruncatedHeaderError  # type: ignore[attr-defined]
_INVALID: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]
_EOF: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_SUBSEQUENT: type[Exception] = tarfile.SubsequentHeaderError  # type: ignore[attr-defined]


class BadHeader(Exception):
    """A header in the middle of the stream is cut short or fails its checksum."""


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile treats a broken header after the first one as the end of the archive;
    we want a truncated or corrupt layer to fail instead."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _StrictTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except (_TRUNCATED, _INVALID) as e:
            raise BadHeader(str(e)) from e


class _ForwardReader:
    """Gives tarfile the file it wants over a sequential stream: ``tell`` counts bytes,
    ``seek`` only moves forward (reading the gap), ``read`` returns short only at EOF.
    Reads the stream in large pieces (a header is 512 bytes; a layer has thousands)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = b""
        self._at = 0  # the next byte of _buf to hand out
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        at, buf = self._at, self._buf
        if 0 <= size <= len(buf) - at:
            self._at = at + size
            self._pos += size
            return buf[at : at + size]
        parts = [buf[at:]]
        self._buf, self._at = b"", 0
        if size < 0:
            parts.append(self._stream.read())
        want = size - len(parts[0])
        while want > 0:
            chunk = self._stream.read(max(want, _FILL))
            if not chunk:
                break
            if len(chunk) > want:  # keep the rest for the next reads
                self._buf, self._at = chunk, want
                chunk = chunk[:want]
            parts.append(chunk)
            want -= len(chunk)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def copy_to(self, fd: int, size: int) -> int:
        """Write the next ``size`` bytes to ``fd`` without copying them on the way (a file's
        data); returns how many there were (fewer at EOF)."""
        done = 0
        while done < size:
            at, left = self._at, len(self._buf) - self._at
            if not left:
                self._buf, self._at = self._stream.read(min(max(size - done, _FILL), CHUNK)), 0
                if not self._buf:
                    break
                continue
            n = min(left, size - done)
            view = memoryview(self._buf)[at : at + n]
            while view:
                view = view[os.write(fd, view) :]
            self._at = at + n
            self._pos += n
            done += n
        return done

    def unread(self, data: bytes) -> None:
        """Put back ``data``, the bytes last read: the next read starts with them again."""
        self._buf, self._at = data + self._buf[self._at :], 0
        self._pos -= len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self._pos:
            raise OSError(errno.ESPIPE, "layer streams are read forward only")
        while self._pos < pos and self.read(min(CHUNK, pos - self._pos)):
            pass
        return self._pos

    def drain(self) -> None:
        """Read to EOF so a digesting wrapper around the stream sees every byte."""
        while self.read(CHUNK):
            pass


class TarMembers:
    """The members of the tar stream ``stream``, in order (:meth:`next`, None at the end).

    It stands for the :class:`tarfile.TarFile` that tarfile's header code expects (the
    attributes ``fileobj``, ``encoding``, ``errors``, ``pax_headers``, ``offset``), so a
    member the fast path leaves alone is read by ``TarInfo.fromtarfile`` exactly as
    ``TarFile.next`` reads it, with the same errors.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.fileobj = _ForwardReader(stream)
        self.encoding = "utf-8"
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}  # global PAX headers (type 'g'), tarfile's own
        self.offset = 0  # where the next header starts

    def next(self) -> tarfile.TarInfo | None:
        """The next member, or None after the last; as ``TarFile.next`` (not ignoring zeros)."""
        reader = self.fileobj
        if self.offset != reader.tell():  # skip what is left of the last member's data
            reader.seek(self.offset - 1)
            if not reader.read(1):
                raise tarfile.ReadError("unexpected end of data")
        buf = reader.read(_BLOCK)
        if not self.pax_headers:
            member = self._plain(buf)
            if member is not None:
                return member
        reader.unread(buf)
        try:
            return _StrictTarInfo.fromtarfile(self)  # type: ignore[arg-type]
        except _EOF:
            return None
        except (_INVALID, _EMPTY, _TRUNCATED) as e:  # after the first member: the end
            if self.offset == 0:
                raise tarfile.ReadError("empty file" if isinstance(e, _EMPTY) else str(e)) from None
            return None
        except _SUBSEQUENT as e:
            raise tarfile.ReadError(str(e)) from None

    def extractfile(self, member: tarfile.TarInfo) -> BinaryIO:
        """A regular member's data (a sparse file's with its holes), read from the stream."""
        return tarfile.ExFileObject(self, member)  # type: ignore[arg-type, return-value]

    def _plain(self, buf: bytes) -> tarfile.TarInfo | None:
        """``TarInfo.frombuf`` and ``_proc_builtin`` for the common header, None for others."""
        if len(buf) != _BLOCK or buf[156] not in _PLAIN:
            return None
        numbers = _numbers(buf)
        if numbers is None:
            return None
        mode, uid, gid, size, mtime, chksum, devmajor, devminor = numbers
        if chksum != _unsigned_sum(buf) - sum(buf[148:156]) + 8 * 32:  # the field as spaces
            return None  # a signed checksum, a bad one, or an all-zero block
        kind = buf[156:157]
        name = _text(buf[0:100])
        if kind == tarfile.AREGTYPE and name.endswith("/"):
            kind = tarfile.DIRTYPE
        if kind == tarfile.DIRTYPE:
            name = name.rstrip("/")
        if buf[345]:  # the ustar prefix
            name = _text(buf[345:500]) + "/" + name
            if kind == tarfile.DIRTYPE:
                name = name.rstrip("/")
        m = _StrictTarInfo(name)
        m.mode, m.uid, m.gid, m.size, m.mtime = mode, uid, gid, size, mtime
        m.chksum, m.type, m.devmajor, m.devminor = chksum, kind, devmajor, devminor
        if buf[157]:
            m.linkname = _text(buf[157:257])
        if buf[265]:
            m.uname = _text(buf[265:297])
        if buf[297]:
            m.gname = _text(buf[297:329])
        m.offset_data = self.fileobj.tell()
        m.offset = m.offset_data - _BLOCK
        self.offset = m.offset_data
        if kind in _REGULAR:  # (not a V7 directory: no data skipped, as tarfile)
            self.offset += -(-size // _BLOCK) * _BLOCK
        return m


def _unsigned_sum(buf: bytes) -> int:
    """The sum of a header's 512 bytes, in C: Adler-32's first half is 1 + the sum of the
    bytes modulo 65521, exact for 256 bytes (at most 65280)."""
    return (adler32(buf[:256]) & 0xFFFF) + (adler32(buf[256:]) & 0xFFFF) - 2


def _numbers(buf: bytes) -> tuple[int, ...] | None:
    """mode, uid, gid, size, mtime, chksum, devmajor, devminor as tarfile's ``nti`` reads
    them, for fields of octal digits, spaces and NULs; None for any other (base-256, a sign,
    stray bytes, "7 7": tarfile decides)."""
    fields, devices = buf[100:156], buf[329:345]
    if (
        fields.translate(None, _DIGITS) == _TERMINATORS
        and devices.translate(None, _DIGITS) == b"\0\0"
        and buf[107] == buf[115] == buf[123] == buf[135] == buf[147] == buf[154] == 0
        and buf[155] == 32
        and buf[336] == buf[344] == 0
    ):  # the usual form (tarfile, GNU tar, Go): zero-padded digits, a NUL after each
        return (
            int(buf[100:107], 8), int(buf[108:115], 8), int(buf[116:123], 8),
            int(buf[124:135], 8), int(buf[136:147], 8), int(buf[148:154], 8),
            int(buf[329:336], 8), int(buf[337:344], 8),
        )  # fmt: skip
    if fields.translate(None, _NUMBER_BYTES) or devices.translate(None, _NUMBER_BYTES):
        return None
    try:
        return tuple(_octal(buf[a:b]) for a, b in _FIELDS)
    except ValueError:  # tarfile's InvalidHeaderError
        return None


_DIGITS = b"01234567"
_TERMINATORS = b"\0\0\0\0\0\0 "  # after mode, uid, gid, size, mtime; the checksum's "\0 "
_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156),
           (329, 337), (337, 345))  # fmt: skip


def _octal(field: bytes) -> int:
    """tarfile's ``nti`` for a field of octal digits, spaces and NULs (ValueError as it)."""
    end = field.find(0)
    digits = (field if end < 0 else field[:end]).strip()
    return int(digits, 8) if digits else 0


def _text(field: bytes) -> str:
    """tarfile's ``nts``: up to the first NUL, UTF-8 with undecodable bytes kept."""
    end = field.find(0)
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")
