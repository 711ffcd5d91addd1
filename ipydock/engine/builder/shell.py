r"""Variable expansion and word splitting of Dockerfile values, as BuildKit's shell lexer does.

When: every instruction that takes words from the Dockerfile (ENV, ARG, LABEL, WORKDIR,
COPY/ADD, USER, EXPOSE, VOLUME, STOPSIGNAL, FROM) runs its arguments through :func:`expand` or
:func:`words` with the build's current variables. RUN, CMD and ENTRYPOINT are not expanded here:
their shell does it at run time.

What it does, like a small POSIX shell without globbing or commands::

    he'llo' "$X" ${Y:-d} \$Z   --(X=a b, Y unset)-->  expand: "hello a b d $Z"
                                                      words:  ["hello", "a b", "d", "$Z"]

Quotes group and are removed; ``\\`` (or the ``# escape=`` character) escapes; ``$NAME``,
``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``, ``${NAME:+word}``, ``${NAME+word}``,
``${NAME:?msg}``, ``${NAME?msg}``, ``${NAME#pat}`` / ``##``, ``%`` / ``%%`` and ``/pat/repl``
expand. Unquoted expansion results are split into words; quoted ones are not. Positional and
special parameters (``$1``, ``$@``, ...) are always empty. The tables in BuildKit's
``envVarTest`` and ``wordsTest`` pin the behaviour (``tests/builder/test_shell_conformance.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ExpansionError", "Expansion", "expand", "words"]

_SPECIAL = "@*#?-$!0"
_EOF = ""


class ExpansionError(ValueError):
    """A value that cannot be expanded (unterminated quote, bad ``${...}``); a message only:
    the caller knows the Dockerfile line and raises :class:`ipydock.errors.DockerfileError`."""


@dataclass
class Expansion:
    """The expanded ``text``, its ``words``, and the variable names it looked up (``used``):
    the build cache keys a RUN on the build args it uses."""

    text: str
    words: list[str]
    used: set[str] = field(default_factory=set)


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with quotes removed and variables substituted (spaces kept)."""
    return _Lexer(word, env, escape).run().text


def words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``word`` expanded and split into words on unquoted white space."""
    return _Lexer(word, env, escape).run().words


def process(word: str, env: Mapping[str, str], escape: str = "\\") -> Expansion:
    """Both results at once, and the variables looked up."""
    return _Lexer(word, env, escape).run()


class _Words:
    """Collects words; expansion results are split, quoted text is kept whole."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word, self.in_word = "", False
        else:
            self.raw(ch)

    def raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def split(self, text: str) -> None:
        for ch in text:
            self.char(ch)

    def done(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word, self.in_word = "", False
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_escapes = False
        self.used: set[str] = set()

    # -- reading ----------------------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    # -- grammar ----------------------------------------------------------------------------

    def run(self) -> Expansion:
        text, found = self.until(_EOF, raw_escapes=False)
        return Expansion(text, found, self.used)

    def until(self, stop: str, *, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to ``stop`` (consumed) or the end; ``raw_escapes`` keeps escape characters
        (inside ``${x#pat}``, where the pattern needs them)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        out: list[str] = []
        collected = _Words()
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), collected.done()
            if ch == "$":
                value = self.dollar()
                out.append(value)
                collected.split(value)
            elif ch in "'\"":
                value = self.single_quoted() if ch == "'" else self.double_quoted()
                out.append(value)
                collected.raw(value)
            else:
                self.plain(out, collected)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), collected.done()

    def plain(self, out: list[str], collected: _Words) -> None:
        ch = self.next()
        if ch != self.escape:
            collected.char(ch)
            out.append(ch)
            return
        if self.raw_escapes:
            collected.raw(ch)
            out.append(ch)
        ch = self.next()
        if ch == _EOF:  # an escape at the very end is dropped
            return
        collected.raw(ch)
        out.append(ch)

    def single_quoted(self) -> str:
        """Everything up to the next ``'`` as it is; no escapes."""
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching '")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        """Up to the next ``"``: ``$`` expands; the escape quotes only ``"``, ``$`` and itself."""
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise ExpansionError('unexpected end of statement while looking for matching "')
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                if self.peek() == _EOF:
                    continue
                if self.peek() in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        """A variable name: letters, digits and ``_``; or all digits; or one special char."""
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def lookup(self, name: str) -> str | None:
        if name and not name[0].isdigit() and name not in _SPECIAL:
            self.used.add(name)
        if name.isdigit() or (len(name) == 1 and name in _SPECIAL):
            return None
        return self.env.get(name)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.lookup(name) or ""
        self.next()
        if self.peek() == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "}":
            return self.lookup(name) or ""
        if op == "/":
            return self.replace(name)
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("+", "-", "?", "#", "%"):
            raise ExpansionError(
                f"unsupported modifier ({':' if colon else ''}{op}) in substitution"
            )
        return self.modifier(name, op, colon)

    def modifier(self, name: str, op: str, colon: bool) -> str:
        try:
            word, _ = self.until("}", raw_escapes=op in "#%")
        except ExpansionError:
            if self.peek() == _EOF:
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        value = self.lookup(name)
        unset = value is None or (colon and value == "")
        if op == "-":
            return word if unset else (value or "")
        if op == "+":
            return "" if unset else word
        if op == "?":
            if unset:
                why = (
                    "is not allowed to be unset" if value is None else "is not allowed to be empty"
                )
                raise ExpansionError(f"{name}: {word or why}")
            return value or ""
        greedy = word.startswith(op)
        pattern = word[1:] if greedy else word
        return _trim(value or "", pattern, greedy, suffix=op == "%")

    def replace(self, name: str) -> str:
        everywhere = self.peek() == "/"
        if everywhere:
            self.next()
        try:
            pattern, _ = self.until("/", raw_escapes=True)
            replacement, _ = self.until("}", raw_escapes=True)
        except ExpansionError:
            if self.peek() == _EOF:
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        value = self.lookup(name) or ""
        regex = _pattern_regex(pattern, greedy=True)
        return regex.sub(lambda _m: replacement, value, count=0 if everywhere else 1)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool = False) -> re.Pattern[str]:
    """A shell pattern (``*``, ``?``, ``\\`` escapes; no brackets) as a regular expression."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < len(pattern):
            if pattern[i] in "}/":
                continue
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim(value: str, pattern: str, greedy: bool, *, suffix: bool) -> str:
    """``${v#p}`` (prefix) / ``${v%p}`` (suffix): remove the shortest (or longest) match."""
    if suffix:
        flipped = _reverse_pattern(pattern)
        return _trim(value[::-1], flipped, greedy, suffix=False)[::-1]
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).match(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each ``\\x`` escape in front of its character."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))
