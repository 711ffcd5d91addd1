"""A build context as docker's client reads it: ``.dockerignore`` with Docker's pattern rules,
the walk of the kept entries, and the size warning. Both engines use this one implementation:
the bundled builder reads the directory in place through it, the Docker backend packs the tar it
sends from it (:func:`pack`).

When: packing a directory context (and pruning an unpacked tar context) before the build.

Rules (moby ``patternmatcher``): one pattern per line, ``#`` lines are comments; patterns are
cleaned (``./a//b/`` is ``a/b``) and anchored at the context root (``*.md`` matches top-level
files only); ``*`` and ``?`` stay inside one path element, ``**`` spans any number of elements,
``[a-z]`` and ``\\`` escapes as in Go's ``filepath.Match``; a pattern that matches a directory
excludes everything below it; ``!pattern`` re-includes; the last matching line wins.

::

    "node_modules"  "**/*.log"  "!keep.log"  --> IgnoreRules.excluded("a/b.log") -> True
                                                 IgnoreRules.excluded("keep.log") -> False
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from ipydock.errors import BuildContextError

__all__ = [
    "LARGE_CONTEXT",
    "IgnoreRules",
    "is_tar",
    "large_context_warning",
    "pack",
    "read_patterns",
    "rules_for",
    "walk",
]

#: Above this many bytes a build says the context is large, as docker's client does.
LARGE_CONTEXT = 100 * 1024 * 1024


def large_context_warning(size: int) -> str:
    """The warning a build gives for a context of ``size`` bytes, or ``""``."""
    return "the context is large; use .dockerignore" if size > LARGE_CONTEXT else ""


def is_tar(data: bytes) -> bool:
    """Does ``data`` (the first bytes of a context or stdin) start a tar, plain or compressed?"""
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 262 and data[257:262] == b"ustar"


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, cleaned, comments and blanks dropped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        body = line[1:].strip() if negate else line
        if not body:
            continue
        body = posixpath.normpath(body).lstrip("/") or "."
        out.append(("!" if negate else "") + body)
    return out


@dataclass(frozen=True)
class _Pattern:
    text: str
    negate: bool
    regex: re.Pattern[str]


class IgnoreRules:
    """Compiled patterns; :meth:`excluded` answers for one context-relative path."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [
            _Pattern(p.lstrip("!"), p.startswith("!"), _compile(p.lstrip("!"))) for p in patterns
        ]
        self.has_exceptions = any(p.negate for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, rel: str) -> bool:
        """True when ``rel`` (``a/b/c``, no leading ``./``) is left out of the context."""
        parents = _parents(rel)
        result = False
        for pattern in self.patterns:
            if pattern.regex.match(rel) or any(pattern.regex.match(p) for p in parents):
                result = not pattern.negate
        return result

    def may_include_below(self, rel_dir: str) -> bool:
        """False when nothing under the excluded dir ``rel_dir`` can be re-included, so a walk
        may skip it whole (the common ``node_modules`` case)."""
        if not self.has_exceptions:
            return False
        prefix = rel_dir + "/"
        return any(
            p.negate and (p.text.startswith(prefix) or "*" in p.text or "?" in p.text)
            for p in self.patterns
        )


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _compile(pattern: str) -> re.Pattern[str]:
    """A pattern as an anchored regular expression over ``/``-separated paths."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:  # a character class such as [z-a]; docker: "syntax error in pattern"
        raise BuildContextError(".dockerignore", f"syntax error in pattern {pattern!r} "
                                f"({exc}); fix or remove that line") from None  # fmt: skip


def rules_for(path: str, also: str | None = None) -> IgnoreRules:
    """The .dockerignore at ``path``, plus the pattern ``also`` last (so nothing re-includes it)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            patterns = read_patterns(f.read())
    except FileNotFoundError:
        patterns = []
    return IgnoreRules([*patterns, also] if also else patterns)


def walk(top: str, rules: IgnoreRules) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(rel, path, lstat)`` of every entry of ``top`` the rules keep, parents first, sorted."""
    stack = [("", top)]
    while stack:
        rel_dir, dir_path = stack.pop()
        with os.scandir(dir_path) as it:
            entries = sorted(it, key=lambda e: e.name, reverse=True)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if rules and rules.excluded(rel):
                if is_dir and rules.may_include_below(rel):
                    stack.append((rel, entry.path))
                continue
            if is_dir:
                stack.append((rel, entry.path))
            yield rel, entry.path, st


def pack(top: str, rules: IgnoreRules, extra: tuple[str, bytes] | None = None) -> io.BufferedRandom:
    """The tar docker's client sends for the directory ``top``: the kept entries (owners 0:0,
    modes, mtimes, links as links; sockets left out), plus ``extra`` (name, bytes) at the top
    (a Dockerfile from elsewhere). A temp file, at its start."""
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path, st in walk(top, rules):
            if stat.S_ISSOCK(st.st_mode):
                continue
            info = tar.gettarinfo(path, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        if extra is not None:
            name, data = extra
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out
