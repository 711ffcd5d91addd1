"""COPY, ADD and WORKDIR: layers written directly, without running a container.

When: the builder dispatches COPY/ADD (and WORKDIR, which creates its directory as Docker's
classic builder does). Sources are read through a :class:`RootView` (the unpacked context, or
another stage's or image's layers for ``--from``); the layer is written into an empty staging
dir that holds exactly what an overlay upper dir would after the copy: the copied entries,
the directories created for them, and the existing ancestors of the destination (copied up with
their metadata; the one that gained entries gets a new mtime).

::

    sources (context | --from)        destination view (parent image)
          |   resolve, wildcards            |   resolve symlinks, ancestors
          v                                 v
    plan: [(source path, dest rel)]  --> staging/  --write_tar--> layer

Rules as Docker's: a directory source copies its contents; a file goes *into* a destination
ending in ``/`` or naming an existing directory, else *to* it; several sources need a
destination ending in ``/``; a relative destination is relative to WORKDIR; new files belong
to 0:0 unless ``--chown``; ADD unpacks a local tar (gzip, bzip2, xz too) and downloads an http(s)
URL without unpacking it (mode 0600).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from ipydock.engine.builder.cache import content_hash
from ipydock.engine.builder.filework import CopyJob, Digest, SourceChanged, copy_all, digests
from ipydock.engine.builder.rootview import RootView, lookup_user
from ipydock.engine.store.compression import decompressed
from ipydock.engine.store.idmap import current as current_ids
from ipydock.engine.store.idmap import flush as flush_owners
from ipydock.engine.store.idmap import lchown_inside
from ipydock.engine.store.layerfmt import NO_SPACE
from ipydock.engine.store.layertar import apply_tar
from ipydock.errors import ArchiveError, CopySourceError, DockerfileError, NoSpace

__all__ = ["CopyPlan", "Source", "make_dirs", "plan_copy", "write_copy"]

_WILDCARD = set("*?[")


@dataclass
class Source:
    """One source entry: its host path (for reading) and its name for the layer."""

    path: str
    rel: str  # path inside the source view ("" for the root), symlinks resolved
    is_dir: bool
    name: str = ""  # the name as written (``COPY link /d/`` makes /d/link)


@dataclass
class CopyPlan:
    """What to copy where; ``hash_kind`` and ``digest`` make the step's created-by text."""

    items: list[tuple[Source, str]]  # (source, destination rel path in the image)
    view: RootView  # where the sources are read (a directory source is walked through it)
    archives: list[tuple[Source, str]] = field(default_factory=list)  # ADD: unpack into dir
    downloads: list[tuple[str, str]] = field(default_factory=list)  # ADD: url -> dest file
    inline: list[tuple[bytes, str]] = field(default_factory=list)  # heredoc content -> dest file
    owner: tuple[int, int] = (0, 0)
    mode: int | None = None
    hash_kind: str = "file"
    digest: str = ""
    digests: dict[str, Digest] = field(default_factory=dict)  # host path -> as hashed


def plan_copy(
    src_view: RootView,
    dst_view: RootView,
    sources: list[str],
    dest: str,
    *,
    workdir: str,
    add: bool,
    chown: str,
    chmod: str,
    line: int,
    text: str,
    from_context: bool,
    inline: tuple[tuple[str, bytes], ...] = (),
) -> CopyPlan:
    """Resolve sources and destination; raises CopySourceError/DockerfileError with the line.

    ``inline``: ``(name, content)`` of the heredoc sources (``COPY <<EOF /dest``), written as
    new files (0644 unless ``--chmod``) named by the heredoc when the destination is a dir."""
    dest_abs = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    dest_is_dir = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    found: list[Source] = []
    urls: list[str] = []
    for src in sources:
        if add and src.startswith(("http://", "https://")):
            urls.append(src)
            continue
        if src.startswith(("http://", "https://")):
            raise DockerfileError(line, text, "source can't be a URL for COPY")
        found += _match(src_view, src, from_context, line, text)
    if len(found) + len(urls) + len(inline) > 1 and not dest_is_dir:
        raise DockerfileError(
            line,
            text,
            "When using COPY with more than one source file, "
            "the destination must be a directory and end with a /",
        )
    owner = _owner(dst_view, chown, line, text)
    mode = _mode(chmod, line, text)
    plan = CopyPlan([], src_view, owner=owner, mode=mode)
    dest_rel = dst_view.resolve(dest_abs, follow_last=True)
    dest_exists_dir = _is_dir(dst_view, dest_rel)
    for source in found:
        if source.is_dir:
            plan.items.append((source, dest_rel))
        elif add and _is_archive(source.path):
            plan.archives.append((source, dest_rel))
        elif dest_is_dir or dest_exists_dir:
            plan.items.append(
                (source, posixpath.join(dest_rel, source.name or posixpath.basename(source.rel)))
            )
        else:
            plan.items.append((source, dest_rel))
    for url in urls:
        import urllib.parse

        name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
        target = posixpath.join(dest_rel, name) if dest_is_dir or dest_exists_dir else dest_rel
        plan.downloads.append((url, target))
    for name, data in inline:
        target = posixpath.join(dest_rel, name) if dest_is_dir or dest_exists_dir else dest_rel
        plan.inline.append((data, target))
    _hash(plan, chown, chmod)
    return plan


def _match(view: RootView, src: str, from_context: bool, line: int, text: str) -> list[Source]:
    clean = posixpath.normpath("/" + src.lstrip("/"))[1:] if src not in ("", ".") else ""
    if from_context and posixpath.normpath(src).startswith("../"):
        raise CopySourceError(line, text, src, "forbidden path outside the build context")
    if not _WILDCARD & set(clean):
        rel = view.resolve("/" + clean) if clean else ""
        path = view.find(rel) if rel else view.top_first[0]
        if path is None:
            why = (
                "file not found in build context or excluded by .dockerignore"
                if from_context
                else "not found in the source image"
            )
            raise CopySourceError(line, text, src, why)
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        return [Source(path, rel, is_dir, posixpath.basename(clean))]
    out = []
    for rel in _walk_rels(view, ""):
        if _glob(rel, clean):
            path = view.find(rel)
            assert path is not None
            out.append(Source(path, rel, stat.S_ISDIR(os.lstat(path).st_mode)))
    if not out:
        raise CopySourceError(line, text, src, "no source files were specified")
    return out


def _glob(rel: str, pattern: str) -> bool:
    """Go's ``filepath.Match``: wildcards stay within one path element."""
    names, parts = rel.split("/"), pattern.split("/")
    return len(names) == len(parts) and all(
        fnmatch.fnmatchcase(n, p) for n, p in zip(names, parts, strict=True)
    )


def _walk_rels(view: RootView, rel: str) -> list[str]:
    """Every path below ``rel`` in the view, parents first, sorted."""
    return [child for child, _path in _walk(view, rel)]


def _walk(view: RootView, rel: str) -> list[tuple[str, str]]:
    """``(path, host path)`` of everything below ``rel`` in the view, parents first, sorted."""
    out = []
    for name in view.listdir(rel):
        child = f"{rel}/{name}" if rel else name
        path = view.find(child)
        if path is None:  # listed but not found (a whiteout raced away): not there
            continue
        out.append((child, path))
        if stat.S_ISDIR(view.stat_path(path).st_mode):
            out += _walk(view, child)
    return out


def _is_dir(view: RootView, rel: str) -> bool:
    if not rel:
        return True
    st = view.lstat(rel)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _owner(view: RootView, chown: str, line: int, text: str) -> tuple[int, int]:
    if not chown:
        return 0, 0
    try:
        return lookup_user(view, chown, chown=True)
    except KeyError as exc:
        raise DockerfileError(line, text, str(exc.args[0])) from None


def _mode(chmod: str, line: int, text: str) -> int | None:
    if not chmod:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise DockerfileError(line, text, f"invalid chmod parameter {chmod!r}: use an octal mode")
    return mode


def _is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return head[257:262] == b"ustar"


def _hash(plan: CopyPlan, chown: str, chmod: str) -> None:
    view = plan.view
    entries: list[tuple[str, str, os.stat_result]] = []
    for source, dest in plan.items + plan.archives:
        entries.append(
            (f"{dest}\0{source.rel}", source.path, view.entry_stat(source.rel, source.path))
        )
        if source.is_dir:
            for rel, path in _tree(view, source.rel):
                entries.append(
                    (f"{dest}/{rel}", path, view.entry_stat(_join(source.rel, rel), path))
                )
    count = len(plan.items) + len(plan.archives) + len(plan.downloads) + len(plan.inline)
    single_dir = count == 1 and plan.items and plan.items[0][0].is_dir
    plan.hash_kind = "multi" if count > 1 else ("dir" if single_dir else "file")
    extra = f"{chown}\0{chmod}\0" + "\0".join(u for u, _ in plan.downloads)
    plan.digests = digests([(path, st) for _, path, st in entries])
    digest = content_hash(entries, plan.digests)
    if plan.inline:
        inline = hashlib.sha256(digest.encode())
        for data, dest in plan.inline:
            inline.update(f"{dest}\0{len(data)}\0".encode() + data)
        digest = inline.hexdigest()
    plan.digest = digest if not extra.strip("\0") else digest + extra


def _tree(view: RootView, top: str) -> list[tuple[str, str]]:
    """``(path relative to top, host path)`` of everything below ``top`` in the view."""
    cut = len(top) + 1 if top else 0
    return [(rel[cut:], path) for rel, path in _walk(view, top)]


def _join(top: str, rel: str) -> str:
    return f"{top}/{rel}" if top else rel


# -- writing the layer -------------------------------------------------------------------------


def write_copy(plan: CopyPlan, dst_view: RootView, staging: str) -> bool:
    """Write the plan's files into ``staging`` (an empty dir); True: there is a layer. A full
    disk is NoSpace (the copy threads' OSError, translated here once)."""
    try:
        return _write_copy(plan, dst_view, staging)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise NoSpace(staging) from exc
        raise  # e.g. an unreadable file of the context: said as it is


def _write_copy(plan: CopyPlan, dst_view: RootView, staging: str) -> bool:
    now = time.time()
    for source, dest in plan.items:
        parent = posixpath.dirname(dest) if dest else ""
        _ancestors(dst_view, staging, parent, plan.owner, now)
        if source.is_dir:
            _copy_dir(source, staging, dest, plan, dst_view, now)
        else:
            st = plan.view.entry_stat(source.rel, source.path)
            _copy_files(plan, [_job(plan, source.path, os.path.join(staging, dest), st)])
    for source, dest in plan.archives:
        _ancestors(dst_view, staging, dest, plan.owner, now)
        target = os.path.join(staging, dest)
        os.makedirs(target, exist_ok=True)
        with open(source.path, "rb") as f:
            hashed = _Hashing(f)
            apply_tar(decompressed(hashed, source.rel), target, source=source.rel,
                      whiteouts="delete")  # fmt: skip
            got = hashed.digest()
        if got != plan.digests.get(source.path, got):
            raise SourceChanged(source.path)
    for url, dest in plan.downloads:
        _ancestors(dst_view, staging, posixpath.dirname(dest), plan.owner, now)
        _download(url, os.path.join(staging, dest), plan)
    for data, dest in plan.inline:
        _ancestors(dst_view, staging, posixpath.dirname(dest), plan.owner, now)
        target = os.path.join(staging, dest)
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)
        with open(target, "wb") as f:
            f.write(data)
        os.chmod(target, plan.mode if plan.mode is not None else 0o644)
        lchown_inside(target, *plan.owner)
    flush_owners()  # rootless with id ranges: --chown to the range, in the user's namespace
    return True


def _ancestors(view: RootView, staging: str, rel: str, owner: tuple[int, int], now: float) -> None:
    """Create ``rel`` and its parents in ``staging``: existing ones with the image's metadata
    (copied up), missing ones 0755 owned by ``owner``; ``rel`` itself gets mtime ``now``."""
    parts = [p for p in rel.split("/") if p]
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        target = os.path.join(staging, sub)
        if os.path.isdir(target):
            continue
        existing = view.find(sub)
        if existing is not None and os.path.isdir(existing) and not os.path.islink(existing):
            st = os.lstat(existing)
            os.mkdir(target)
            os.chmod(target, stat.S_IMODE(st.st_mode))
            lchown_inside(target, *current_ids().inside(st.st_uid, st.st_gid))  # host -> inside
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            if os.path.lexists(target):
                os.unlink(target)
            os.mkdir(target)
            os.chmod(target, 0o755)
            lchown_inside(target, *owner)
    if parts:
        os.utime(os.path.join(staging, rel), (now, now))


def _copy_dir(
    source: Source, staging: str, dest: str, plan: CopyPlan, view: RootView, now: float
) -> None:
    """A directory's contents, walked through the source view (all its layers for --from)."""
    top = os.path.join(staging, dest) if dest else staging
    if dest and not os.path.isdir(top):
        if view.find(dest) is None:
            os.makedirs(top, exist_ok=True)
            st = os.lstat(source.path)
            os.chmod(top, plan.mode if plan.mode is not None else stat.S_IMODE(st.st_mode))
            lchown_inside(top, *plan.owner)
        else:
            _ancestors(view, staging, dest, plan.owner, now)
    dirs: list[tuple[str, os.stat_result]] = []
    jobs: list[CopyJob] = []
    for rel, path in _tree(plan.view, source.rel):
        target = os.path.join(top, rel)
        st = plan.view.entry_stat(_join(source.rel, rel), path)
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(FileExistsError):  # an earlier source made it
                os.mkdir(target)
            dirs.append((target, st))
        else:
            jobs.append(_job(plan, path, target, st))
    _copy_files(plan, jobs)  # the per-file work, in a few threads (see filework)
    for target, st in reversed(dirs):  # metadata last: their mtimes change as files land
        os.chmod(target, plan.mode if plan.mode is not None else stat.S_IMODE(st.st_mode))
        lchown_inside(target, *plan.owner)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _job(plan: CopyPlan, src: str, target: str, st: os.stat_result) -> CopyJob:
    mode = plan.mode if plan.mode is not None else stat.S_IMODE(st.st_mode)
    return CopyJob(src, target, st, mode, plan.digests.get(src))


def _copy_files(plan: CopyPlan, jobs: list[CopyJob]) -> None:
    """Create the jobs' targets, owned by ``plan.owner`` as a container sees it. As root the
    threads give owners themselves; otherwise ``lchown_inside`` does, here (it may put
    them off to ``flush_owners``)."""
    root = os.geteuid() == 0
    copy_all(jobs, plan.owner if root else None)
    if not root:
        for job in jobs:
            lchown_inside(job.target, *plan.owner)


class _Hashing:
    """A reader that digests what passes through it (an ADD archive, checked once unpacked)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f, self._h, self._size = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        self._size += len(data)
        return data

    def digest(self) -> Digest:
        while self.read(1 << 20):  # the rest a tar reader left (padding, a compressed tail)
            pass
        return self._size, self._h.hexdigest()


def _download(url: str, target: str, plan: CopyPlan) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(target, "wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
            modified = resp.headers.get("Last-Modified")
    except OSError as exc:
        raise ArchiveError(url, f"download failed ({exc})") from exc
    os.chmod(target, plan.mode if plan.mode is not None else 0o600)
    lchown_inside(target, *plan.owner)
    if modified:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(modified).timestamp()
        os.utime(target, (when, when))


def make_dirs(view: RootView, path: str, staging: str) -> bool:
    """WORKDIR: create ``path`` (and parents) as root, 0755; False when it already exists."""
    rel = view.resolve(path)
    if _is_dir(view, rel):
        return False
    _ancestors(view, staging, rel, (0, 0), time.time())
    return True
