"""``.dockerignore``: which context paths the client leaves out, with Docker's pattern rules.

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

import posixpath
import re
from dataclasses import dataclass

__all__ = ["IgnoreRules", "read_patterns"]


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
    return re.compile("".join(out), re.DOTALL)
