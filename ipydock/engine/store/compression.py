"""Recognise and undo the compressions layer and image tarballs come in (gzip, bzip2, xz,
zstd).

Detection reads the magic bytes through a buffered reader, so it works on pipes and HTTP bodies.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import BinaryIO, Protocol, cast

from ipydock.errors import ArchiveError

__all__ = ["Reader", "decompressed", "detect"]


class Reader(Protocol):
    """Anything with ``read``: files, tar members, HTTP bodies, digest-checking wrappers."""

    def read(self, n: int = -1, /) -> bytes: ...


_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


def detect(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``none`` from the first bytes of a stream."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return "none"


def decompressed(stream: Reader, source: str) -> BinaryIO:
    """A reader of the uncompressed bytes of ``stream`` (returned as is when uncompressed)."""
    buffered = (
        stream
        if isinstance(stream, io.BufferedReader)
        else io.BufferedReader(cast(io.RawIOBase, _Raw(stream)), 1 << 16)
    )
    kind = detect(buffered.peek(6)[:6])
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=buffered, mode="rb"))
    if kind == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(buffered, "rb"))
    if kind == "xz":
        return cast(BinaryIO, lzma.LZMAFile(buffered, "rb"))
    if kind == "zstd":
        try:
            import zstandard
        except ImportError as exc:
            raise ArchiveError(source, "zstd data needs the zstandard package") from exc
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return cast(BinaryIO, reader)
    return cast(BinaryIO, buffered)


class _Raw(io.RawIOBase):
    """Adapt any object with ``read`` to the RawIOBase interface BufferedReader wants."""

    def __init__(self, f: Reader) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    # close() is inherited and leaves the wrapped stream open: its opener owns it.
