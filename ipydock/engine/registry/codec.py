"""Layer compression for transfers: fast gzip (ISA-L through ``isal`` when installed, else
zlib) and push-style decoders that turn compressed chunks into tar bytes as they arrive.

::

    pull:  the blob is kept as it came; store.compression.LayerTar decompresses it to unpack
    push:  a kept compressed blob is sent as it is; a layer kept only as a tar (built here) is
           gzipped: gzip_compressor (level 1, no name, mtime 0) -> the same blob every time
"""

from __future__ import annotations

from typing import Any

from ipydock.engine.store.compression import Decoder, fast_zlib

__all__ = ["Decoder", "gzip_compressor"]


def gzip_compressor() -> Any:
    """A compressobj writing gzip (wbits 31: a header with no name and mtime 0)."""
    z = fast_zlib()
    return z.compressobj(1, z.DEFLATED, 31)
