"""Layer compression for transfers: fast gzip (ISA-L through ``isal`` when installed, else
zlib) and push-style decoders that turn compressed chunks into tar bytes as they arrive.

::

    pull:  HTTP chunks ──Decoder.feed──> tar bytes ──sha256 (diff ID)──> blob temp file
    push:  stored tar ──gzip_compressor (level 1, no name, mtime 0)──> the same blob every time
"""

from __future__ import annotations

import zlib
from typing import Any

from ipydock.engine.store.compression import detect
from ipydock.errors import ArchiveError

__all__ = ["Decoder", "gzip_compressor"]


def _zlib() -> Any:
    try:
        from isal import isal_zlib  # ISA-L: several times faster than zlib at level 1

        return isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        return zlib


def gzip_compressor() -> Any:
    """A compressobj writing gzip (wbits 31: a header with no name and mtime 0)."""
    z = _zlib()
    return z.compressobj(1, z.DEFLATED, 31)


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
            return _zlib().decompressobj(31)
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
