"""The push's gzip: any reader inflates it back, incompressible parts go as stored blocks
(their bytes verbatim in the blob, as Go's and zlib's deflate store them), the same input
gives the same blob however it is fed."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import zlib

import pytest

from ipydock.engine.registry.codec import PIECE, gzip_compressor
from ipydock.engine.store.compression import Decoder


def _gzip(data: bytes, step: int) -> bytes:
    comp = gzip_compressor()
    out = [comp.compress(data[i : i + step]) for i in range(0, len(data), step)]
    return b"".join([*out, comp.flush()])


def _mixed() -> bytes:
    rng = random.Random(7)
    noise = rng.randbytes
    return noise(300_000) + b"a" * 500_000 + noise(70_000) + b"xyz" * 100_000 + noise(PIECE)


@pytest.mark.parametrize("data", [b"", b"hello", b"line of text\n" * 100_000, _mixed()],
                         ids=["empty", "small", "text", "mixed"])  # fmt: skip
def test_every_reader_inflates_it(data: bytes) -> None:
    blob = _gzip(data, 1 << 20)
    assert gzip.decompress(blob) == data
    assert zlib.decompress(blob, 31) == data
    decoder = Decoder("test")
    assert decoder.feed(blob) + decoder.finish() == data
    assert subprocess.run(["gzip", "-t"], input=blob).returncode == 0  # GNU gzip checks CRC


def test_incompressible_pieces_are_stored() -> None:
    noise = os.urandom(3 * PIECE)
    blob = _gzip(noise, 1 << 20)
    assert noise[PIECE : PIECE + 60_000] in blob  # its bytes as they are: a stored block
    assert len(blob) < len(noise) * 1.001
    text = b"compresses well\n" * 100_000
    assert len(_gzip(text, 1 << 20)) < len(text) // 20


def test_same_input_same_blob_whatever_the_reads() -> None:
    data = _mixed()
    blobs = {_gzip(data, step) for step in (1 << 20, 4096, 100_003, len(data) or 1)}
    assert len(blobs) == 1
