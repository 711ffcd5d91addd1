"""Build contexts: what ``COPY``/``ADD`` may read, as the engine is handed it.

When: at the start of every build. Docker's client packs a directory (leaving out what
``.dockerignore`` names, owners set to 0:0) and sends the tar to the daemon, which unpacks it.
A directory here is walked once at the start instead (its entries and their metadata, as the
client's tar would carry them); that walk is the context for the whole build. COPY/ADD read
it in place through a :class:`ContextView` over the walk: hashing reads the files where they
are, and a COPY that misses the cache copies them straight into its layer, checking each
file against the digest it was hashed with (a file that changed in between fails the build
rather than caching a layer under the wrong key; see ``filework``). No private copy of the
context is made, so a fully cached rebuild copies nothing and a cold one copies once. Tar
contexts are unpacked (safely) into a private temp dir.

::

    directory --(walk once: .dockerignore, no sockets)--> .source, .listing, ContextView
    tar / tar.gz file ------------------------------+--> unpack (safe) --> BuildContext.root
    http(s) URL of a tarball --(download)----------'                      .size (packed bytes)
    "-" on stdin: a tar (as above) or a Dockerfile with an empty context   .dockerfile (text)

The Dockerfile is read beside the context (``-f`` may point outside it, or be ``-``).
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO

from ipydock.commands.dockerignore import (
    IgnoreRules,
    is_tar,
    rules_for,
    walk,
)
from ipydock.engine.builder.rootview import ContextView, Entry, RootView
from ipydock.engine.store.compression import decompressed
from ipydock.engine.store.fsutil import owned_name, remove_tree
from ipydock.engine.store.layertar import apply_tar
from ipydock.errors import ArchiveError, BuildContextError

__all__ = ["BuildContext", "open_context"]


@dataclass
class BuildContext:
    """A context: its packed ``size`` and the Dockerfile's text and name. A tar context is
    unpacked in ``root`` (ours to delete); for a directory context, ``source`` is the
    directory, ``listing`` its walk and ``root`` stays empty."""

    root: str
    size: int
    dockerfile: str
    dockerfile_name: str
    ignore: IgnoreRules
    source: str = ""
    listing: list[Entry] = field(default_factory=list)
    _view: RootView | None = field(default=None, init=False, repr=False)

    def view(self) -> RootView:
        """What COPY/ADD read: the directory in place (as walked), or the unpacked tar."""
        if self._view is None:
            if self.source:
                self._view = ContextView(self.source, self.ignore, self.listing)
            else:
                self._view = RootView([self.root])
        return self._view

    def close(self) -> None:
        remove_tree(self.root)


def open_context(
    source: str,
    tmp_dir: str,
    *,
    dockerfile: str | None = None,
    stdin: BinaryIO | None = None,
) -> BuildContext:
    """Unpack ``source`` (directory, tar file, URL or ``-``) into a new dir under ``tmp_dir``.

    ``dockerfile``: a path (relative to the current directory for directory contexts, to the
    context root for tarballs), ``-`` for stdin, or None for ``Dockerfile`` in the context.
    """
    root = _new_dir(tmp_dir)
    try:
        return _open(source, root, dockerfile, stdin)
    except BaseException:
        remove_tree(root)
        raise


def _open(source: str, root: str, dockerfile: str | None, stdin: BinaryIO | None) -> BuildContext:
    if stdin is None and "-" in (source, dockerfile):
        stdin = os.fdopen(os.dup(0), "rb")
    text: str | None = None
    if dockerfile == "-":
        assert stdin is not None
        text, dockerfile = stdin.read().decode("utf-8", "surrogateescape"), None
    if source == "-":
        assert stdin is not None
        data = stdin.read()
        if is_tar(data):
            size = _unpack(io.BytesIO(data), root, "-")
        else:
            if text is not None:
                raise BuildContextError(
                    "-", "cannot read both the Dockerfile and the context from stdin"
                )
            text, size = data.decode("utf-8", "surrogateescape"), 0
        return _finish(root, size, text, dockerfile, in_context=True)
    if source.startswith(("http://", "https://")):
        size = _download(source, root)
        return _finish(root, size, text, dockerfile, in_context=True)
    if os.path.isdir(source):
        if text is None:
            name = dockerfile or os.path.join(source, "Dockerfile")
            text = _read_dockerfile(name, source)
        rules = rules_for(os.path.join(source, ".dockerignore"), _store_below(source, root))
        name = os.path.basename(dockerfile or "Dockerfile")
        size, listing = _measure(source, rules)
        return BuildContext(root, size, text, name, rules, source=source, listing=listing)
    if os.path.isfile(source):
        with open(source, "rb") as f:
            size = _unpack(f, root, source)
        return _finish(root, size, text, dockerfile, in_context=True)
    raise BuildContextError(source, "not a directory, a tarball, a URL or '-'")


def _finish(
    root: str, size: int, text: str | None, dockerfile: str | None, *, in_context: bool
) -> BuildContext:
    """For tar contexts: read the Dockerfile from the unpacked tree. As docker's daemon does
    with a tar (its client filters a directory before packing it, nobody filters a tar),
    ``.dockerignore`` removes only itself and the Dockerfile when it lists them; every other
    member stays."""
    name = dockerfile or "Dockerfile"
    if text is None:
        path = os.path.normpath(os.path.join(root, name.lstrip("/")))
        if not path.startswith(root + os.sep):
            raise BuildContextError(name, "the Dockerfile must be inside the context")
        text = _read_dockerfile(path, name)
    rules = rules_for(os.path.join(root, ".dockerignore"))
    for listed in (".dockerignore", name.lstrip("/")):
        path = os.path.join(root, listed)
        if rules and rules.excluded(os.path.normpath(listed)) and os.path.isfile(path):
            os.unlink(path)
    return BuildContext(root, size, text, os.path.basename(name), IgnoreRules([]))


def _read_dockerfile(path: str, label: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise BuildContextError(
            label, f"cannot read the Dockerfile {path}: {exc.strerror or exc}"
        ) from None


def _store_below(source: str, root: str) -> str | None:
    """The engine's own store, as a pattern, when it lies inside the context directory (e.g.
    IPYDOCK_ROOT in a notebook's folder): it is never part of the context, and walking it would
    take in the engine's own files. ``root`` is the new context dir, ``STORE/tmp/context-…``."""
    store = os.path.realpath(os.path.dirname(os.path.dirname(root)))
    rel = os.path.relpath(store, os.path.realpath(source))
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return "".join("\\" + c if c in "*?[\\" else c for c in rel)


def _new_dir(tmp_dir: str) -> str:
    path = os.path.join(tmp_dir, owned_name("context-"))
    os.mkdir(path, 0o700)
    os.chmod(path, 0o755)  # what `COPY . /dest` gives a new /dest, as with Docker
    return path


def _measure(source: str, rules: IgnoreRules) -> tuple[int, list[Entry]]:
    """The kept entries of ``source`` (no sockets: a tar cannot hold them) and the size the
    client's tar of them would have (headers, padded files, end)."""
    size = 1024  # the tar's end-of-archive blocks
    listing = []
    try:
        for rel, path, st in walk(source, rules):
            if not stat.S_ISSOCK(st.st_mode):
                size += 512 + (-(-st.st_size // 512) * 512 if stat.S_ISREG(st.st_mode) else 0)
                listing.append((rel, path, st))
    except OSError as exc:
        raise BuildContextError(source, f"cannot read it: {exc.strerror or exc}") from None
    return size, listing


def _unpack(stream: BinaryIO, root: str, label: str) -> int:
    counted = _Counting(stream)
    try:
        apply_tar(decompressed(counted, label), root, source=label, whiteouts="delete")
    except ArchiveError as exc:
        raise BuildContextError(label, exc.why) from None
    return counted.count


def _download(url: str, root: str) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            return _unpack(resp, root, url)
    except OSError as exc:
        raise BuildContextError(url, f"download failed ({exc})") from None


class _Counting:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.count += len(data)
        return data
