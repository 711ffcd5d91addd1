"""Content-addressed blobs in OCI image-layout form: ``ROOT/blobs/sha256/<hex>``.

::

    stream ──> sha256 while writing ──> ROOT/tmp/blob-XXXX ──fsync, rename──> blobs/sha256/<hex>
    blobs/sha256/<hex> ──read──> sha256 checked ──> bytes   (a mismatch raises DigestMismatch)
    stream ──BlobTee: read by a consumer (a layer unpacking), sha256 and a copy to the temp
             file on the way ──> at the end: checked (if the digest was known), fsync, rename
             (one pass, not two)

Writes are idempotent: a blob that exists already is not written again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import IO, BinaryIO, cast

from ipydock.engine.store.fsutil import TempFile, disk_errors
from ipydock.errors import BlobNotFound, DigestMismatch

__all__ = ["BlobStore", "BlobTee", "BlobWriter", "VerifiedReader", "sha256_digest"]

CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    import hashlib  # on use: its OpenSSL binding is a noticeable part of CLI start-up

    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: str, tmp_dir: str) -> None:
        self.dir = os.path.join(root, "blobs", "sha256")
        self.tmp_dir = tmp_dir

    def path(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64:
            raise BlobNotFound(digest)
        return os.path.join(self.dir, hexpart)

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc

    def get(self, digest: str) -> bytes:
        """The whole blob, checked against its digest."""
        try:
            with open(self.path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc
        actual = sha256_digest(data)
        if actual != digest:
            raise DigestMismatch(digest, actual)
        return data

    def open(self, digest: str) -> VerifiedReader:
        """A reader that raises :class:`DigestMismatch` at EOF if the bytes were not right."""
        try:
            f = open(self.path(digest), "rb")  # noqa: SIM115 - handed to the reader
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc
        return VerifiedReader(f, digest)

    def opener(self, digest: str) -> Callable[[], BinaryIO]:
        """A function that opens the blob (what :meth:`LayerStore.create` takes)."""
        return lambda: cast(BinaryIO, self.open(digest))

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has(digest):
            with disk_errors(self.dir), TempFile(self.tmp_dir) as tmp:
                tmp.file.write(data)
                tmp.commit(self.path(digest))
        return digest

    def put_stream(self, stream: IO[bytes], expected: str | None = None) -> tuple[str, int]:
        """Copy a stream into the store, digesting it on the way; return (digest, size).

        With ``expected``, a stream whose digest differs is refused and nothing is kept.
        """
        import hashlib

        h = hashlib.sha256()
        size = 0
        with disk_errors(self.dir), TempFile(self.tmp_dir) as tmp:
            while chunk := stream.read(CHUNK):
                h.update(chunk)
                tmp.file.write(chunk)
                size += len(chunk)
            digest = "sha256:" + h.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            if self.has(digest):
                return digest, size
            tmp.commit(self.path(digest))
        return digest, size

    def tee(
        self,
        stream: IO[bytes],
        expected: str | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> BlobTee:
        """A reader over ``stream`` that keeps what it reads as the blob ``expected`` (None:
        whatever digest it has, ``tee.digest`` once read to the end)."""
        return BlobTee(self, stream, expected, before_commit)

    def writer(self) -> BlobWriter:
        """A writable file that becomes a blob named by its digest on ``commit()``."""
        return BlobWriter(self)

    def remove(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))

    def digests(self) -> Iterator[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            yield "sha256:" + name


class VerifiedReader:
    """A file-like reader over a blob that checks the digest once the end is reached."""

    def __init__(self, f: BinaryIO, digest: str) -> None:
        self._f = f
        import hashlib

        self._digest = digest
        self._h = hashlib.sha256()
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        if not data or n < 0:
            self._check()
        return data

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = "sha256:" + self._h.hexdigest()
        if actual != self._digest:
            raise DigestMismatch(self._digest, actual)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobWriter:
    """Write a blob whose digest is not known in advance (a tar being generated).

    ``with store.writer() as w: w.write(...); digest = w.commit()``; leaving the block without
    ``commit()`` discards the data.
    """

    def __init__(self, store: BlobStore) -> None:
        import hashlib

        self._store = store
        self._h = hashlib.sha256()
        self.size = 0
        self._tmp = TempFile(store.tmp_dir)

    def write(self, data: bytes) -> int:
        self._h.update(data)
        self.size += len(data)
        with disk_errors(self._store.dir):
            return self._tmp.file.write(data)

    def commit(self) -> str:
        digest = "sha256:" + self._h.hexdigest()
        with disk_errors(self._store.dir):
            if self._store.has(digest):
                self._tmp.__exit__(None, None, None)
            else:
                self._tmp.commit(self._store.path(digest))
        return digest

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.__exit__(*exc)


class BlobTee:
    """A reader that stores what passes through it as the blob ``expected``: a layer unpacked
    from a stream (``image load``, ``image import``) is written as a blob in the same pass. At
    the end of the stream (the first empty read) the digest is checked if it was given
    (:class:`DigestMismatch`: nothing is kept) and set as :attr:`digest`, ``before_commit``
    runs (a check of its own, e.g. the compressed digest), and the blob is committed, before
    the reader returns its last empty read: the blob exists before whatever was made from the
    stream is put in place. Leaving the ``with`` block before the end discards the data.
    """

    def __init__(
        self,
        store: BlobStore,
        stream: IO[bytes],
        expected: str | None,
        before_commit: Callable[[], None] | None,
    ) -> None:
        import hashlib

        self._store, self._stream, self._expected = store, stream, expected
        self._before_commit = before_commit
        self._h = hashlib.sha256()
        self._tmp = TempFile(store.tmp_dir)
        self.done = False
        self.digest = ""  # the blob's digest, once the stream was read to its end

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._h.update(data)
            with disk_errors(self._store.dir):
                self._tmp.file.write(data)
        if not self.done and (not data or n < 0):
            self._finish()
        return data

    def _finish(self) -> None:
        self.done = True
        actual = "sha256:" + self._h.hexdigest()
        if self._expected is not None and actual != self._expected:
            raise DigestMismatch(self._expected, actual)
        if self._before_commit is not None:
            self._before_commit()
        with disk_errors(self._store.dir):
            if self._store.has(actual):
                self._tmp.__exit__(None, None, None)
            else:
                self._tmp.commit(self._store.path(actual))
        self.digest = actual

    def close(self) -> None:
        self._tmp.__exit__(None, None, None)  # removes the temp file unless committed

    def __enter__(self) -> BlobTee:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
