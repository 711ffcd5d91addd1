"""Reproducibility advice on a Dockerfile, in the spirit of hadolint: each piece of advice names
the line, the rule and the fix.

::

    Dockerfile text ──> builder.parser.parse (BuildKit's parser) ──> nodes (line, cmd, value)
                    ──> each RULE's check(node, stages) ──> [Advice(line, rule, message, fix)]

A rule is a row of :data:`RULES` (code, name, what it checks, how to fix it) and one check
function. A node of an instruction whose text ends in ``# ipydock-lint ignore=CODE`` is skipped
for that rule. No store, no backend: linting reads only the text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ipydock.engine.builder.parser import Node, parse
from ipydock.errors import DockerfileError

__all__ = ["RULES", "Advice", "Rule", "lint"]


@dataclass(frozen=True)
class Rule:
    """One row of the rule table."""

    code: str
    name: str
    why: str
    fix: str


@dataclass(frozen=True)
class Advice:
    """One piece of advice: the Dockerfile line, the rule, what is wrong and what to write."""

    line: int
    code: str
    rule: str
    instruction: str
    message: str
    fix: str


RULES: list[Rule] = [
    Rule(
        "IPD001",
        "unpinned-base",
        "FROM without a tag or digest gives another base tomorrow",
        "name a dated tag or a digest: FROM debian:bookworm-20250520 or FROM NAME@sha256:…",
    ),
    Rule(
        "IPD002",
        "latest-tag",
        "the `latest` tag moves with every release",
        "name the version you tested with: FROM NAME:1.2.3 or NAME@sha256:…",
    ),
    Rule(
        "IPD003",
        "apt-unpinned",
        "apt-get install without versions installs whatever the mirror has that day",
        "pin each package: apt-get install -y PKG=VERSION "
        "(apt-cache policy PKG shows it), or build from a dated snapshot mirror",
    ),
    Rule(
        "IPD004",
        "apt-no-clean",
        "apt-get install without removing /var/lib/apt/lists in the "
        "same RUN keeps the package lists in the layer",
        "end the same RUN with: && rm -rf /var/lib/apt/lists/*",
    ),
    Rule(
        "IPD005",
        "pip-unpinned",
        "pip install without versions installs the newest release",
        "pin each package: pip install NAME==VERSION, or -r requirements.txt with pins",
    ),
    Rule(
        "IPD006",
        "pip-cache",
        "pip install without --no-cache-dir keeps pip's cache in the layer",
        "add --no-cache-dir: pip install --no-cache-dir …",
    ),
    Rule(
        "IPD007",
        "add-url-checksum",
        "ADD of a URL takes whatever the server sends that day",
        "download and check it in one RUN: curl -fsSLo F URL && echo 'SHA256  F' | sha256sum -c",
    ),
    Rule(
        "IPD008",
        "secret-in-build",
        "ENV and ARG values stay in the image's config and history for anyone who pulls it",
        "pass secrets at run time (-e, a mounted file), never as ENV or ARG",
    ),
]
_BY_CODE = {r.code: r for r in RULES}
_INSTRUCTIONS = frozenset(["ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
    "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR"])  # fmt: skip
_SECRET = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIALS?|(API|PRIVATE|ACCESS|SECRET)_?KEY)($|_)", re.I
)
_IGNORE = re.compile(r"#\s*ipydock-lint\s+ignore=([\w,]+)")


def lint(text: str) -> list[Advice]:
    """Every piece of advice for the Dockerfile ``text``, in line order; a syntax error raises
    :class:`~ipydock.errors.DockerfileError` with its line."""
    _, nodes = parse(text)
    lines = text.splitlines()
    stages: set[str] = set()
    found: list[Advice] = []
    for node in nodes:
        if node.cmd not in _INSTRUCTIONS:  # as the builder refuses it
            raise DockerfileError(node.line, node.original, f"unknown instruction: {node.cmd}")
        ignored = _ignored(lines, node)
        for code, message in _check(node, stages):
            if code not in ignored:
                rule = _BY_CODE[code]
                first = node.original.splitlines()[0] if node.original else node.cmd
                found.append(Advice(node.line, code, rule.name, first, message, rule.fix))
        if node.cmd == "FROM" and len(node.value) >= 3 and node.value[1].upper() == "AS":
            stages.add(node.value[2].lower())
    return found


def _ignored(lines: list[str], node: Node) -> set[str]:
    """Codes named by ``# ipydock-lint ignore=…`` on the line above the instruction."""
    above = lines[node.line - 2] if node.line >= 2 else ""
    match = _IGNORE.search(above)
    return set(match.group(1).split(",")) if match else set()


def _check(node: Node, stages: set[str]) -> Iterator[tuple[str, str]]:
    check = _CHECKS.get(node.cmd)
    if check is not None:
        yield from check(node, stages)


def _from(node: Node, stages: set[str]) -> Iterator[tuple[str, str]]:
    image = node.value[0] if node.value else ""
    if image == "scratch" or image.lower() in stages or "$" in image:
        return
    if "@" in image:
        return
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        yield "IPD001", f"the base {image} has no tag or digest: it means {image}:latest"
    elif last.endswith(":latest"):
        yield "IPD002", f"the base {image} uses the latest tag"


def _run(node: Node, stages: set[str]) -> Iterator[tuple[str, str]]:
    script = " ".join(node.value) + "".join(h.content for h in node.heredocs)
    for command in _commands(script):
        yield from _apt(command, script)
        yield from _pip(command)


def _commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script (split at ;, &&, ||, |, newlines), as words."""
    for part in re.split(r"&&|\|\||;|\||\n", script):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # VAR=value command
        if words:
            yield words


def _apt(words: list[str], script: str) -> Iterator[tuple[str, str]]:
    if words[0] not in ("apt-get", "apt") or "install" not in words:
        return
    packages = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    loose = [p for p in packages if "=" not in p and not p.endswith(".deb")]
    if loose:
        yield "IPD003", f"{', '.join(loose)} without a version"
    if "/var/lib/apt/lists" not in script:
        yield "IPD004", "the package lists stay in the layer"


def _pip(words: list[str]) -> Iterator[tuple[str, str]]:
    if words[0] in ("python", "python3") and words[1:3] == ["-m", "pip"]:
        words = ["pip", *words[3:]]
    if words[0] not in ("pip", "pip3") or "install" not in words:
        return
    args = words[words.index("install") + 1 :]
    loose, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in (
            "-r",
            "--requirement",
            "-c",
            "--constraint",
            "-e",
            "--editable",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "--target",
            "-t",
        ):
            skip = True
            continue
        if arg.startswith("-") or "==" in arg or "@" in arg or arg.startswith((".", "/")):
            continue
        if arg.endswith((".whl", ".tar.gz", ".zip")):
            continue
        loose.append(arg)
    if loose:
        yield "IPD005", f"{', '.join(loose)} without a pinned version"
    if "--no-cache-dir" not in args:
        yield "IPD006", "pip's download cache stays in the layer"


def _add(node: Node, stages: set[str]) -> Iterator[tuple[str, str]]:
    if any(f.startswith("--checksum") for f in node.flags):
        return
    for source in node.value[:-1]:
        if re.match(r"https?://", source):
            yield "IPD007", f"{source} is downloaded without a checksum"


def _env_arg(node: Node, stages: set[str]) -> Iterator[tuple[str, str]]:
    if node.cmd == "ENV":
        names = list(node.value[0::2])
    else:
        names = [v.split("=", 1)[0] for v in node.value]
    for name in names:
        if _SECRET.search(name):
            yield "IPD008", f"{node.cmd} {name} looks like a secret"


_CHECKS: dict[str, Callable[[Node, set[str]], Iterator[tuple[str, str]]]] = {
    "FROM": _from,
    "RUN": _run,
    "ADD": _add,
    "ENV": _env_arg,
    "ARG": _env_arg,
}
