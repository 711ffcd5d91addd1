"""Dockerfile text -> parsed nodes with line ranges, through BuildKit's own parser.

When: first stage of every build (and of the parser conformance test). The ``dockerfile``
package wraps BuildKit's Go parser, so line continuations, comments, JSON forms, heredocs and the
``# escape=`` directive behave exactly as in Docker; what it leaves to us is locating errors (its
messages carry no line) and the parser directives we act on (``# syntax=`` is read and ignored:
there is one frontend here).

::

    text --dockerfile.parse_string--> Command(cmd, flags, value, json, start_line, heredocs)
         --Node--> instructions.py (typed) --> builder
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipydock.errors import DockerfileError

__all__ = ["Directives", "Heredoc", "Node", "parse", "read_directives"]

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


@dataclass(frozen=True)
class Directives:
    """Parser directives from the top comment lines: ``escape`` (``\\`` or a backtick) and the
    frontend image named by ``syntax`` (recorded, not used)."""

    escape: str = "\\"
    syntax: str = ""


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    chomp: bool = False  # ``<<-NAME``: leading tabs removed from each line
    expand: bool = True  # ``<<"NAME"`` / ``<<'NAME'``: no variable expansion


@dataclass(frozen=True)
class Node:
    """One instruction as parsed: ``cmd`` upper-case, ``value`` the words BuildKit split (still
    unexpanded), ``sub`` the instruction under ONBUILD."""

    cmd: str
    line: int
    end_line: int
    original: str
    flags: tuple[str, ...]
    value: tuple[str, ...]
    json: bool
    heredocs: tuple[Heredoc, ...] = ()
    sub: str = ""


def read_directives(text: str) -> Directives:
    """The directives BuildKit honours: only at the very top, before any other line."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        key = match.group(1).lower()
        if key in found:  # a repeated directive ends the directive block
            break
        found[key] = match.group(2)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(1, f"# escape={escape}", "the escape character must be \\ or `")
    return Directives(escape=escape, syntax=found.get("syntax", ""))


def parse(text: str) -> tuple[Directives, list[Node]]:
    """Parse a whole Dockerfile; syntax errors raise :class:`DockerfileError` with the line."""
    import dockerfile

    directives = read_directives(text)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        line = _failing_line(text, str(exc))
        raise DockerfileError(line, _line_text(text, line), str(exc)) from None
    except UnicodeDecodeError:  # the Go parser cut a character in two (U+0085 in a value)
        line = _failing_line(text, None)
        raise DockerfileError(line, _line_text(text, line), "cannot read this line: remove "
                              "its unusual characters (such as U+0085)") from None  # fmt: skip
    return directives, [_node(c, text) for c in commands]


def _node(c: object, text: str) -> Node:
    heredocs = tuple(_heredoc(h, c.original) for h in c.heredocs)  # type: ignore[attr-defined]
    return Node(
        cmd=c.cmd.upper(),  # type: ignore[attr-defined]
        line=c.start_line,  # type: ignore[attr-defined]
        end_line=c.end_line,  # type: ignore[attr-defined]
        original=c.original,  # type: ignore[attr-defined]
        flags=tuple(c.flags),  # type: ignore[attr-defined]
        value=tuple(c.value),  # type: ignore[attr-defined]
        json=bool(c.json),  # type: ignore[attr-defined]
        heredocs=heredocs,
        sub=(c.sub_cmd or "").upper(),  # type: ignore[attr-defined]
    )


def _heredoc(h: object, original: str) -> Heredoc:
    name = h.name  # type: ignore[attr-defined]
    header = re.search(r"<<(-?)([\"']?)" + re.escape(name) + r"\2", original)
    chomp = bool(header and header.group(1))
    quoted = bool(header and header.group(2))
    content = h.content  # type: ignore[attr-defined]
    if chomp:
        content = "".join(line.lstrip("\t") for line in content.splitlines(keepends=True))
    return Heredoc(name=name, content=content, chomp=chomp, expand=not quoted)


def _failing_line(text: str, message: str | None) -> int:
    """The first line at which a prefix of the file fails to parse (BuildKit's messages name no
    line; the parser is fast enough to ask it again, prefix by prefix); ``message`` None: the
    first at which the parser's answer cannot be decoded."""
    import dockerfile

    lines = text.split("\n")  # lines as the Go parser counts them (not at U+0085, U+2028…)
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        return 1
    for n in range(1, len(lines) + 1):
        try:
            dockerfile.parse_string("".join(lines[:n]))
        except dockerfile.GoParseError as exc:
            if str(exc) == message:
                return n
        except UnicodeDecodeError:
            if message is None:
                return n
    return len(lines)


def _line_text(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""
