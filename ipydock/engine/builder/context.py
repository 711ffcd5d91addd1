"""Build contexts: what ``COPY``/``ADD`` may read, packed once and handed to the engine.

When: at the start of every build. Docker's client packs a directory (leaving out what
``.dockerignore`` names, owners set to 0:0) and sends the tar to the daemon, which unpacks it;
we do the same into a private temp dir, so a layer is never made from files that change under
the build and never follows a symlink out of the context. A directory is only measured at the
start: COPY/ADD hash their sources in place through a :class:`ContextView` (which shows what
the tar would carry), and the snapshot is made when a COPY first misses the cache, so a fully
cached rebuild copies nothing. That COPY re-hashes from the snapshot: a context that changed
in between fails the build rather than caching a layer under the wrong key.

::

    directory --(measure)--> .source, ContextView --first COPY miss: materialise()--.
                                                      (.dockerignore, walk, 0:0)     |
    tar / tar.gz file ------------------------------+--> unpack (safe) --> BuildContext.root
    http(s) URL of a tarball --(download)----------'                      .size (packed bytes)
    "-" on stdin: a tar (as above) or a Dockerfile with an empty context   .dockerfile (text)

The Dockerfile is read beside the context (``-f`` may point outside it, or be ``-``).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from dataclasses import dataclass
from typing import BinaryIO

from ipydock.commands.dockerignore import (
    IgnoreRules,
    is_tar,
    rules_for,
    walk,
)
from ipydock.engine.builder.rootview import ContextView, RootView
from ipydock.engine.store.compression import decompressed
from ipydock.engine.store.fsutil import owned_name, remove_tree
from ipydock.engine.store.idmap import host_root
from ipydock.engine.store.layertar import apply_tar
from ipydock.errors import ArchiveError, BuildContextError, NoSpace

__all__ = ["BuildContext", "open_context"]

#: Above this many packed bytes the build warns (Docker users know the slow "Sending ..." line).


@dataclass
class BuildContext:
    """A context: its private copy in ``root`` (ours to delete), its packed ``size`` and the
    Dockerfile's text and name. For a directory context, ``source`` is the directory and
    ``root`` stays empty until :meth:`materialise`."""

    root: str
    size: int
    dockerfile: str
    dockerfile_name: str
    ignore: IgnoreRules
    source: str = ""
    packed: bool = True

    def view(self) -> RootView:
        """What COPY/ADD read: the directory in place until packed, then the private copy."""
        if self.source:
            return ContextView(self.root if self.packed else self.source, self.ignore)
        return RootView([self.root])

    def materialise(self) -> None:
        """Pack a directory context into ``root`` (once; a no-op for other contexts)."""
        if not self.packed:
            _pack_dir(self.source, self.root, self.ignore)
            self.packed = True

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
        size = _measure(source, rules)
        return BuildContext(root, size, text, name, rules, source=source, packed=False)
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
    IPYDOCK_ROOT in a notebook's folder): it is never part of the context, and packing it would
    copy the context into itself. ``root`` is the new context dir, ``STORE/tmp/context-…``."""
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


def _measure(source: str, rules: IgnoreRules) -> int:
    """The size the client's tar of ``source`` would have (headers, padded files, end)."""
    size = 1024  # the tar's end-of-archive blocks
    try:
        for _, _, st in walk(source, rules):
            if not stat.S_ISSOCK(st.st_mode):
                size += 512 + (-(-st.st_size // 512) * 512 if stat.S_ISREG(st.st_mode) else 0)
    except OSError as exc:
        raise BuildContextError(source, f"cannot read it: {exc.strerror or exc}") from None
    return size


def _pack_dir(source: str, root: str, rules: IgnoreRules) -> int:
    """Snapshot the kept entries into ``root`` as the docker client's tar would carry them
    (owners 0:0, modes, mtimes, symlinks as links); returns the size that tar would have.

    Copying directly gives the same tree as packing and unpacking, at a fraction of the cost
    (the cached rebuild is dominated by this step); a remote engine would get the tar itself.
    """
    size = 1024  # the tar's end-of-archive blocks
    dirs: list[tuple[str, os.stat_result]] = []
    for rel, path, st in walk(source, rules):
        target = os.path.join(root, rel)
        size += 512 + (-(-st.st_size // 512) * 512 if stat.S_ISREG(st.st_mode) else 0)
        try:
            if not os.path.isdir(os.path.dirname(target)):  # under an excluded dir, re-included
                os.makedirs(os.path.dirname(target), 0o755)
            _copy_one(path, target, st)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the store's disk, not the context
                raise NoSpace(root) from exc
            raise BuildContextError(path, f"cannot read it: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            dirs.append((target, st))
    for target, st in reversed(dirs):  # directory mtimes last: copying into them changes them
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    return size


def _copy_one(path: str, target: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        os.mkdir(target)
    elif stat.S_ISREG(mode):
        shutil.copyfile(path, target)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(path), target)
        os.lchown(target, *host_root())
        return
    elif stat.S_ISSOCK(mode):
        return  # a tar cannot hold a socket: the client leaves it out
    else:
        os.mknod(target, mode, st.st_rdev)
    os.chmod(target, stat.S_IMODE(mode))
    os.lchown(target, *host_root())
    if not stat.S_ISDIR(mode):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


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
