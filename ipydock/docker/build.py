"""``docker build`` with the classic builder (``POST /build``, no BuildKit session) and its
output as the bundled builder's :class:`~ipydock.models.BuildEvent` s.

::

    context dir ──(.dockerignore, the Dockerfile added if it lives outside)──> tar ──┐
    tar file / "-" (a tar or a Dockerfile) / http(s) URL ─────────────────────────────┴─> /build
    {"stream": "Step 2/5 : RUN …"}      ──> step    (line: the Dockerfile line it came from)
    {"stream": " ---> Using cache"}     ──> cached  (with the ID on the next line)
    {"stream": "<what RUN printed>"}    ──> output
    {"stream": " ---> 9a8b7c6d5e4f"}    ──> done    (full ID, duration)
    {"error": "…returned a non-zero code: 1"} ──> failed, then BuildStepFailed
    {"aux": {"ID": …}}                  ──> built;  "Successfully tagged X" ──> tagged
"""

from __future__ import annotations

import io
import os
import re
import secrets
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ipydock.commands.dockerignore import IgnoreRules, is_tar, pack, read_patterns
from ipydock.docker.convert import familiar
from ipydock.errors import BuildContextError, BuildError, BuildStepFailed, DockerfileError
from ipydock.models import BuildEvent

__all__ = ["Context", "Events", "dockerfile_lines", "open_context"]


@dataclass
class Context:
    """What ``POST /build`` gets: a tar stream (or a remote URL), the Dockerfile's path in it,
    and its text when known (to find the line of each step)."""

    fileobj: IO[bytes] | None = None
    remote: str | None = None
    dockerfile: str | None = None
    text: str = ""
    size: int = 0
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def open_context(source: str, dockerfile: str | None, stdin: IO[bytes] | None) -> Context:
    """The build context ``source`` (a directory, a tar file, ``-`` or an http(s) URL) with
    ``dockerfile`` (a path, or ``-``: read from ``stdin``)."""
    if source.startswith(("http://", "https://")):
        if dockerfile == "-":
            raise BuildContextError(source, "-f - needs a local context with the docker engine")
        return Context(remote=source, dockerfile=dockerfile)
    if source == "-":
        data = (stdin or _stdin()).read()
        if is_tar(data):
            return Context(io.BytesIO(data), dockerfile=dockerfile, size=len(data))
        return _packed_dockerfile(data)
    if os.path.isdir(source):
        return _directory(source, dockerfile, stdin)
    if os.path.isfile(source):
        if dockerfile == "-":
            raise BuildContextError(source, "-f - needs a directory context with the docker engine")
        f = open(source, "rb")  # noqa: SIM115 - closed by Context.close
        return Context(f, dockerfile=dockerfile, size=os.path.getsize(source), closers=[f.close])
    raise BuildContextError(source, "no such directory or file")


def _stdin() -> IO[bytes]:
    import sys

    return sys.stdin.buffer


def _packed_dockerfile(data: bytes) -> Context:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    text = data.decode("utf-8", "replace")
    return Context(buf, dockerfile="Dockerfile", text=text, size=len(buf.getvalue()))


def _directory(root: str, dockerfile: str | None, stdin: IO[bytes] | None) -> Context:
    """Pack ``root`` as docker's client does: ``.dockerignore`` honoured, but the Dockerfile and
    ``.dockerignore`` always sent; a Dockerfile from stdin or from outside goes in under a
    random name."""
    root = os.path.abspath(root)
    extra: tuple[str, bytes] | None = None
    name: str | None = None
    if dockerfile == "-":
        data = (stdin or _stdin()).read()
        extra = (f".dockerfile.{secrets.token_hex(10)}", data)
    else:
        path = os.path.join(root, dockerfile or "Dockerfile")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BuildContextError(path, exc.strerror or "cannot read the Dockerfile") from exc
        rel = os.path.relpath(path, root)
        extra = (f".dockerfile.{secrets.token_hex(10)}", data) if rel.startswith("..") else None
        name = rel if extra is None else None
    keep = ["!.dockerignore", *([f"!{name}"] if name else [])]
    rules = IgnoreRules(read_patterns(_read(os.path.join(root, ".dockerignore"))) + keep)
    fileobj = pack(root, rules, extra)
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(0)
    text = data.decode("utf-8", "surrogateescape")
    return Context(fileobj, dockerfile=extra[0] if extra else name, text=text, size=size,
                   closers=[fileobj.close])  # fmt: skip


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def dockerfile_lines(text: str) -> list[tuple[int, str]]:
    """(first line, instruction with whitespace collapsed) of each instruction, in order, as
    BuildKit's parser reads them (the engine reports a Dockerfile it cannot parse itself)."""
    import dockerfile

    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError:
        return []
    return [(c.start_line, " ".join(c.original.split())) for c in commands]


# dockerd's classic builder, and Podman's (buildah's words: "STEP 1/4: FROM …", "--> 657495a92b8",
# "--> Using cache ID", "COMMIT name", the bare image ID, "exit status 1" on failure)
_STEP = re.compile(r"^(?:Step|STEP) (\d+)/(\d+) ?: (.*)$", re.S)
_ID = re.compile(r"^ ?---?> ([0-9a-f]{11,64})$")
_BARE_ID = re.compile(r"^[0-9a-f]{64}$")
_FAILED = re.compile(r"(?:returned a non-zero code|while running runtime: exit status):? (\d+)")
_PARSE = re.compile(r"(?:line|Dockerfile:)\s*(\d+)")


class Events:
    """Docker's build stream -> :class:`BuildEvent` s; :attr:`image_id`, :attr:`tags` and the
    step counts once it has been consumed. ``resolve`` turns a short ID into the full one."""

    def __init__(self, emit: Callable[[BuildEvent], None], text: str,
                 resolve: Callable[[str], str]) -> None:  # fmt: skip
        self.emit = emit
        self.resolve = resolve
        self.instructions = dockerfile_lines(text)
        self.next_instruction = 0
        self.step = self.total = self.line = self.done_step = 0
        self.instruction = ""
        self.using_cache = False
        self.started = time.monotonic()
        self.last_lines: list[str] = []
        self.image_id = ""
        self.tags: list[str] = []
        self.cached = 0
        self.pending = ""

    def consume(self, chunks: Iterator[dict[str, Any]]) -> None:
        for chunk in chunks:
            if "error" in chunk or "errorDetail" in chunk:
                self._flush()
                self._fail(chunk)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                self.image_id = chunk["aux"]["ID"]
            self.pending += chunk.get("stream") or ""
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                self._line(line)
        self._flush()
        self._from_done()  # a Dockerfile of one FROM, on Podman

    def _flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._line(line)

    def _line(self, line: str) -> None:
        m = _STEP.match(line)
        if m:
            self._from_done()
            self.step, self.total, self.instruction = int(m[1]), int(m[2]), m[3]
            self.line = self._find_line(m[3])
            self.using_cache, self.last_lines = False, []
            self.started = time.monotonic()
            kind = self.instruction.split(None, 1)[0].upper() if self.instruction else ""
            self.emit(BuildEvent("step", self.step, self.total, self.instruction, self.line,
                                 stage=kind))  # fmt: skip
            return
        if line == " ---> Using cache" or line.startswith("--> Using cache "):
            self.using_cache = True
            return
        if line.startswith("COMMIT ") or _BARE_ID.match(line):  # Podman's
            return
        m = _ID.match(line)
        if m and self.step:
            self._done(self.resolve(m[1]))
            return
        if line.startswith((" ---> Running in ", "Removing intermediate container ")):
            return
        if line.startswith("Successfully built "):
            self.image_id = self.image_id or self.resolve(line.split()[-1])
            return
        if line.startswith("Successfully tagged "):  # Podman: in full, then as asked
            tag = familiar(line[len("Successfully tagged ") :])
            self.tags += [] if tag in self.tags else [tag]
            return
        if line.startswith("[Warning] "):
            self.emit(BuildEvent("warning", text=line[len("[Warning] ") :]))
            return
        if self.step:
            self.last_lines = [*self.last_lines[-49:], line]
            self.emit(BuildEvent("output", self.step, self.total, self.instruction, self.line,
                                 text=line))  # fmt: skip

    def _from_done(self) -> None:
        """Podman's FROM step ends without an ID line: its ``done`` (the base image) is given
        when the next step starts."""
        words = [w for w in self.instruction.split() if not w.startswith("--")]
        if self.step and self.step != self.done_step and len(words) > 1 and \
                words[0].upper() == "FROM":  # fmt: skip
            self._done(self.resolve(words[1]))

    def _done(self, image_id: str) -> None:
        """As the bundled builder: a FROM step's ``done`` names no instruction; a cache hit is
        ``cached`` and then ``done``."""
        self.done_step = self.step
        took = time.monotonic() - self.started
        if self.instruction.upper().startswith("FROM "):
            self.emit(BuildEvent("done", self.step, self.total, image_id=image_id))
            return
        if self.using_cache:
            self.cached += 1
            self.emit(BuildEvent("cached", self.step, self.total, self.instruction, self.line,
                                 image_id))  # fmt: skip
        self.emit(BuildEvent("done", self.step, self.total, self.instruction, self.line, image_id,
                             duration=took))  # fmt: skip

    def _find_line(self, instruction: str) -> int:
        wanted = " ".join(instruction.split())
        for i in range(self.next_instruction, len(self.instructions)):
            line, text = self.instructions[i]
            if text == wanted:
                self.next_instruction = i + 1
                return line
        return 0

    def _fail(self, chunk: dict[str, Any]) -> None:
        message = str(chunk.get("error") or (chunk.get("errorDetail") or {}).get("message", ""))
        self.emit(BuildEvent("failed", self.step, self.total, self.instruction, self.line,
                             text=message))  # fmt: skip
        m = _FAILED.search(message)
        if m and self.step:
            raise BuildStepFailed(self.line, self.instruction, int(m[1]), self.last_lines[-10:])
        raise BuildError(self.line, self.instruction, message)


def refused(message: str) -> BuildError:
    """A build the daemon refused before any step (HTTP 400): a Dockerfile error, with its
    line when Docker names one."""
    m = _PARSE.search(message)
    if "dockerfile parse error" in message.lower() or "unknown instruction" in message.lower():
        return DockerfileError(int(m[1]) if m else 0, "", message)
    return BuildError(0, "", message)
