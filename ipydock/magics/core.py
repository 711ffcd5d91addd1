"""The magics: parse a line, call one backend method (through the CLI's command), hand the result
to :mod:`ipydock.display`. Errors go through :func:`ipydock.magics.errors.cell_errors`.

Settings are traitlets on :class:`IPyDock` (``%config IPyDock.engine = "bundled"``, or
``c.IPyDock.root = "/srv/ipydock"`` in an IPython profile), as JupySQL's ``SqlMagic`` has them.
"""

from __future__ import annotations

import inspect
import io
import os
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import CaselessStrEnum, Unicode, observe
from traitlets.config import Configurable

from ipydock import backends, dock
from ipydock.api import Backend
from ipydock.cli.build import BUILD_FLAGS, build_call
from ipydock.cli.registry import Parser
from ipydock.display.containers import LogText, stream_logs
from ipydock.display.progress import BuildProgress, TextBuildProgress
from ipydock.display.results import present
from ipydock.errors import UsageError
from ipydock.magics import dispatch
from ipydock.magics.errors import cell_errors
from ipydock.models import BuildEvent, BuildResult, HistoryRow, RunResult

__all__ = ["IPyDock"]


@magics_class
class IPyDock(Magics, Configurable):
    """``%image``, ``%container``, ``%network``, ``%volume``, ``%ipydock`` and ``%%dockerfile``."""

    engine = CaselessStrEnum(
        ["bundled", "docker"], default_value="bundled", help="the engine the magics drive"
    ).tag(config=True)
    root = Unicode("", help="the bundled engine's store root (default: $IPYDOCK_ROOT)").tag(
        config=True
    )
    host = Unicode("", help="the Docker Engine API URL for engine 'docker'").tag(config=True)
    driver = Unicode("", help="snapshot driver of a new bundled store: overlay or vfs").tag(
        config=True
    )
    widgets = CaselessStrEnum(
        ["auto", "on", "off"],
        default_value="auto",
        help="draw widgets (auto: when the shell runs in a kernel; off: text, as in a terminal)",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell) -> None:
        self._backend: Backend | None = None  # before the config: setting it observes
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)  # `%config IPyDock` lists and sets these

    @observe("engine", "root", "host", "driver")
    def _forget_backend(self, change: Any) -> None:
        self.close()

    def close(self) -> None:
        """Let the backend go (its warm helper stops; detached containers keep running)."""
        backend, self._backend = self._backend, None
        if backend is not None and hasattr(backend, "close"):
            backend.close()

    @property
    def backend(self) -> Backend:
        """Connected on first use, again after a setting changed."""
        if self._backend is None:
            kwargs: dict[str, Any] = {"root": self.root or None, "driver": self.driver or None}
            if self.host and "host" in inspect.signature(backends.connect).parameters:
                kwargs["host"] = self.host
            self._backend = backends.connect(self.engine, **kwargs)
        return self._backend

    @property
    def rich(self) -> bool:
        if self.widgets != "auto":
            return self.widgets == "on"
        return getattr(self.shell, "kernel", None) is not None

    # -- the CLI's groups ----------------------------------------------------------------------

    def _command(self, words: list[str], title: str = "") -> Any:
        with cell_errors():
            args = dispatch.parse(words)
            if args is None:
                return None
            if (args.spec.group, args.spec.name) in (
                ("image", "pull"), ("image", "push"), ("image", "bootstrap")
            ):  # fmt: skip
                args.progress = self._transfer_progress(args)
            if args.spec.name == "login":  # the password is asked for, never typed in a cell
                import getpass

                args.ask = getpass.getpass
            result = dispatch.run(self.backend, args)
            spec = args.spec
            if _needs_backend(result, spec):
                return _with_backend(self.backend, args, result)
            shown = present(
                result,
                command=spec.name,
                row_type=dispatch.row_type(spec),
                rich=self.rich,
                title=getattr(args, "image", "") or title,
            )
            if (spec.group, spec.name) == ("container", "ls") and self.rich:
                return dock.with_buttons(self.backend, shown, all=args.all, filters=args.filter)
            return shown

    def _transfer_progress(self, args: Any) -> Any:
        """Pull/push progress: a widget that updates in place, or docker's lines of text."""
        if args.quiet:
            return None
        if self.rich:
            from ipydock.display.transfer import TransferProgress

            widget = TransferProgress(f"{args.spec.name} {args.name}")
            display(widget)
            return widget.handle
        from ipydock.cli.distribution import text_progress

        return text_progress(sys.stdout)

    def _group(self, group: str, line: str) -> Any:
        return self._command([group, *shlex.split(line)])

    @line_magic
    def image(self, line: str) -> Any:
        return self._group("image", line)

    @line_magic
    def container(self, line: str) -> Any:
        return self._group("container", line)

    @line_magic
    def network(self, line: str) -> Any:
        return self._group("network", line)

    @line_magic
    def volume(self, line: str) -> Any:
        return self._group("volume", line)

    @line_magic
    def ipydock(self, line: str) -> Any:
        """``%ipydock info``, any ``ipydock …`` command line, or
        ``%ipydock engine bundled|docker [--host URL] [--root PATH]`` to switch engines."""
        words = shlex.split(line)
        if words[:1] == ["engine"]:
            return self._switch(words[1:])
        return self._command(words or ["info"])

    def _switch(self, words: list[str]) -> Any:
        parser = Parser(prog="%ipydock engine", add_help=False)
        parser.add_argument("kind", choices=["bundled", "docker"])
        parser.add_argument("--host", default="")
        parser.add_argument("--root", default=None)
        before = (self.engine, self.host, self.root)
        with cell_errors():
            a = parser.parse_args(words)
            self.engine, self.host = a.kind, a.host
            if a.root is not None:
                self.root = a.root
            try:
                return present(self.backend.info())
            except BaseException:
                self.engine, self.host, self.root = before
                raise

    # -- builds ----------------------------------------------------------------------------------

    @cell_magic
    def dockerfile(self, line: str, cell: str) -> Any:
        """Build the cell (a Dockerfile) with live progress; return the new image's history as
        a DataFrame (``h.attrs["image_id"]``, ``h.attrs["tags"]``)."""
        with cell_errors(cell_offset=1):
            args = _dockerfile_parser().parse_args(shlex.split(line))
            progress: Any = _QuietProgress()
            if not args.quiet and self.rich:
                progress = BuildProgress(" ".join(args.tag))
                display(progress)
            elif not args.quiet:
                progress = TextBuildProgress()
            result = _build(self.backend, cell, args, progress.handle)
            history = present(self.backend.history(result.image_id), row_type=HistoryRow)
            history.attrs.update(image_id=result.image_id, tags=list(result.tags))
            return history


def _needs_backend(result: Any, spec: Any) -> bool:
    files = (spec.group, spec.name) == ("volume", "files")
    return files or isinstance(result, (Iterator, RunResult))


def _with_backend(backend: Backend, args: Any, result: Any) -> Any:
    """The results that need the backend again: log lines (streamed with ``-f``), a detached
    container (a :class:`~ipydock.dock.Container`), a volume's files (their previews)."""
    if isinstance(result, Iterator):
        if getattr(args, "follow", False):
            stream_logs(result)
            return None
        return LogText("".join(entry.text for entry in result))
    if isinstance(result, RunResult):
        return dock.from_run(backend, result)
    return dock.files_frame(backend, args.name, result)


def _dockerfile_parser() -> Parser:
    """``build``'s own flags; the cell is the Dockerfile, the context a word or ``--context``."""
    parser = Parser(prog="%%dockerfile", description="Build the cell, a Dockerfile.")
    for flags, kw in BUILD_FLAGS:
        parser.add_argument(*flags, **kw)
    parser.add_argument("--context", dest="context_flag", metavar="PATH",
                        help="build context (as the CONTEXT word)")  # fmt: skip
    parser.add_argument("context", nargs="?", metavar="CONTEXT", default=None,
                        help="a directory (default: the notebook's, .dockerignore honoured), "
                        "a tarball or an http(s) URL of one")  # fmt: skip
    return parser


def _build(backend: Backend, cell: str, args: Any, on_event: Any) -> BuildResult:
    """The one call into the builder: the cell is the Dockerfile (handed over as ``-``)."""
    context = args.context or args.context_flag or "."
    if context == "-":
        raise UsageError("%%dockerfile: the cell is the Dockerfile, so the context cannot be '-'")
    if "://" not in context:
        context = os.path.abspath(os.path.expanduser(context))
    args.context = context
    stdin = io.BytesIO(cell.encode("utf-8", "surrogateescape"))
    return build_call(backend, args, on_event, dockerfile="-", stdin=stdin)


class _QuietProgress:
    """``-q``: no steps, but a warning (a large context) still reaches stderr."""

    def handle(self, event: BuildEvent) -> None:
        if event.kind in ("context", "warning") and event.text:
            print(f"[Warning] {event.text}", file=sys.stderr)


for _group_name in ("image", "container", "network", "volume"):
    getattr(IPyDock, _group_name).__doc__ = dispatch.group_help(_group_name)
IPyDock.dockerfile.__doc__ = f"{IPyDock.dockerfile.__doc__}\n\n{_dockerfile_parser().format_help()}"
