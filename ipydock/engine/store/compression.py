"""Recognise and undo the compressions layer and image tarballs come in (gzip, bzip2, xz,
zstd).

Detection reads the magic bytes through a buffered reader, so it works on pipes and HTTP bodies.
Layer blobs kept compressed (as a pull got them) are read through :class:`LayerTar`::

    blobs/sha256/<compressed> ──sha256 (blob digest)──> Decoder (ISA-L gzip | zstd)
        ──sha256 (diff ID)──> tar bytes        both digests checked at the end of the stream
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import zlib
from typing import Any, BinaryIO, Protocol, cast

from ipydock.errors import ArchiveError

__all__ = ["Decoder", "LayerTar", "Reader", "decompressed", "detect", "fast_zlib"]


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


def fast_zlib() -> Any:
    """``isal_zlib`` (ISA-L: several times faster than zlib, GIL released), else ``zlib``."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        return zlib


class Decoder:
    """Decompress a layer blob fed in pieces; the format is recognised from its first bytes
    (gzip, zstd, or a plain tar). Multi-member gzip and multi-frame zstd are followed."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.kind = ""
        self._head = b""
        self._d: Any = None

    def _new(self) -> Any:
        if self.kind == "gzip":
            return fast_zlib().decompressobj(31)
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> bytes:
        if not self.kind:
            self._head += data
            if len(self._head) < 6 and data:
                return b""
            data, self._head = self._head, b""
            self.kind = detect(data[:6])
            if self.kind not in ("gzip", "zstd", "none"):
                raise ArchiveError(self.label, f"unsupported layer compression {self.kind}")
            if self.kind != "none":
                self._d = self._new()
        if self.kind == "none":
            return data
        out = []
        try:
            while data:
                out.append(self._d.decompress(data))
                data = self._d.unused_data if self._d.eof else b""
                if data:  # another gzip member / zstd frame follows
                    self._d = self._new()
        except Exception as exc:  # zlib.error, isal error, zstd.ZstdError: one meaning
            raise ArchiveError(self.label, f"corrupt compressed data ({exc})") from exc
        return b"".join(out)

    def finish(self) -> bytes:
        """What is left; a stream that stopped mid-way is an error."""
        if not self.kind:
            return self.feed(b"")
        if self._d is not None and not self._d.eof:
            raise ArchiveError(self.label, "compressed data ends early (truncated layer)")
        return b""


class LayerTar:
    """The tar of a layer kept as a compressed blob, read forward: decompressed as it is read;
    at the end of the stream the blob's digest and the tar's (its diff ID) are checked, so a
    reader that reads to EOF (``apply_tar`` does) has used nothing unchecked once it returns.

    ``raw`` may be a file that is still being written (a pull unpacks while it downloads):
    whatever gives ``read`` the compressed bytes, returning ``b""`` only at their end.
    """

    def __init__(self, raw: Reader, blob: str, diff_id: str, label: str) -> None:
        import hashlib

        self._raw = raw
        self.blob, self.diff_id, self.label = blob, diff_id, label
        self._blob_h = hashlib.sha256() if blob else None
        self._diff_h = hashlib.sha256()
        self._decoder = Decoder(label)
        self._parts: collections.deque[bytes] = collections.deque()  # decoded, not yet read
        self._off = 0  # how much of the first part was read
        self._have = 0  # bytes in the parts, past the offset
        self._eof = False

    def _fill(self, want: int) -> None:
        while self._have < want and not self._eof:
            raw = self._raw.read(1 << 19)
            try:
                if raw:
                    if self._blob_h is not None:
                        self._blob_h.update(raw)
                    plain = self._decoder.feed(raw)
                else:
                    self._eof = True
                    self._check(self._blob_h, self.blob, self.label)
                    plain = self._decoder.finish()
            except ArchiveError:
                self._drain_and_check()  # a wrong blob says more than "corrupt data"
                raise
            self._diff_h.update(plain)
            if plain:
                self._parts.append(plain)
                self._have += len(plain)
            if self._eof:
                self._check(self._diff_h, self.diff_id, f"{self.label} (diff ID)")

    def _drain_and_check(self) -> None:
        if self._blob_h is None or self._eof:
            return
        while raw := self._raw.read(1 << 19):
            self._blob_h.update(raw)
        self._eof = True
        self._check(self._blob_h, self.blob, self.label)

    @staticmethod
    def _check(h: Any, expected: str, what: str) -> None:
        from ipydock.errors import DigestMismatch

        if h is not None and expected and "sha256:" + h.hexdigest() != expected:
            raise DigestMismatch(expected, "sha256:" + h.hexdigest(), what)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self._eof:
                self._fill(self._have + (1 << 20))
            n = self._have
        else:
            self._fill(n)
        out = []
        while n > 0 and self._parts:  # whole parts are handed on as they are (no copy)
            head = self._parts[0]
            take = min(n, len(head) - self._off)
            if self._off == 0 and take == len(head):
                out.append(self._parts.popleft())
            else:
                out.append(head[self._off : self._off + take])
                self._off += take
                if self._off == len(head):
                    self._parts.popleft()
                    self._off = 0
            n -= take
            self._have -= take
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> LayerTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
