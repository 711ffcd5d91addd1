"""The magics: parse a line, call one backend method (through the CLI's command), hand the result
to :mod:`ipydock.display`. Errors go through :func:`ipydock.magics.errors.cell_errors`.

Settings are traitlets on :class:`IPyDock` (``%config IPyDock.engine = "bundled"``, or
``c.IPyDock.root = "/srv/ipydock"`` in an IPython profile), as JupySQL's ``SqlMagic`` has them.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import Bool, CaselessStrEnum, Dict, Unicode, observe
from traitlets.config import Configurable

from ipydock import backends, dock
from ipydock.api import Backend
from ipydock.cli.build import build_call
from ipydock.cli.cell import dockerfile_parser
from ipydock.cli.registry import Parser
from ipydock.display.containers import LogText, stream_logs
from ipydock.display.progress import BuildProgress, TextBuildProgress
from ipydock.display.results import present
from ipydock.errors import UsageError
from ipydock.lint import Advice, lint
from ipydock.magics import dispatch
from ipydock.magics.errors import cell_errors
from ipydock.magics.explain import account, build_account
from ipydock.models import BuildEvent, BuildResult, HistoryRow, RunResult

__all__ = ["IPyDock"]


@magics_class
class IPyDock(Magics, Configurable):
    """``%image``, ``%container``, ``%network``, ``%volume``, ``%ipydock`` and ``%%dockerfile``."""

    engine = CaselessStrEnum(
        ["bundled", "docker", "podman"],
        default_value="bundled",
        help="the engine the magics drive",
    ).tag(config=True)
    root = Unicode("", help="the bundled engine's store root (default: $IPYDOCK_ROOT)").tag(
        config=True
    )
    host = Unicode("", help="the Docker Engine API URL for engine 'docker'").tag(config=True)
    context = Unicode("", help="a docker context by name, for engine 'docker'").tag(config=True)
    tls = Dict(help="docker's TLS flags for engine 'docker': tlsverify, tlscacert, tlscert, "
               "tlskey").tag(config=True)  # fmt: skip
    driver = Unicode("", help="snapshot driver of a new bundled store: overlay or vfs").tag(
        config=True
    )
    widgets = CaselessStrEnum(
        ["auto", "on", "off"],
        default_value="auto",
        help="draw widgets (auto: when the shell runs in a kernel; off: text, as in a terminal)",
    ).tag(config=True)
    explain = Bool(
        False, help="teaching mode: each result comes with what it did to layers, namespaces, "
        "mounts or networks (`%ipydock explain on|off`)"
    ).tag(config=True)  # fmt: skip

    def __init__(self, shell: InteractiveShell) -> None:
        self._backend: Backend | None = None  # before the config: setting it observes
        self._accounts: list[Any] = []  # teaching mode: shown under the cell's result
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.events.register("post_run_cell", self.show_accounts)
        shell.configurables.append(self)  # `%config IPyDock` lists and sets these

    @observe("engine", "root", "host", "driver", "context", "tls")
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
            if self.engine != "bundled":
                kwargs.update(host=self.host or None, context=self.context or None,
                              tls=dict(self.tls) or None)  # fmt: skip
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
            if (args.spec.group, args.spec.name) in _WITH_PROGRESS:
                args.progress = self._transfer_progress(args)
            if args.spec.name == "login":  # the password is asked for, never typed in a cell
                import getpass

                args.ask = getpass.getpass
            result = dispatch.run(self.backend, args)
            spec = args.spec
            if self.explain:
                self._teach(account(self.backend, args, result))
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

            what = getattr(args, "name", None) or getattr(args, "service", None) or " ".join(
                getattr(args, "pairs", []))  # fmt: skip
            widget = TransferProgress(f"{args.spec.name} {what}")
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
    def service(self, line: str) -> Any:
        return self._group("service", line)

    @line_magic
    def node(self, line: str) -> Any:
        return self._group("node", line)

    @line_magic
    def stack(self, line: str) -> Any:
        return self._group("stack", line)

    @line_magic
    def swarm(self, line: str) -> Any:
        return self._group("swarm", line)

    @line_magic
    def ipydock(self, line: str) -> Any:
        """``%ipydock info``, any ``ipydock …`` command line, or
        ``%ipydock engine bundled|docker|podman [--host URL] [--context NAME] [--tlsverify]
        [--tlscacert F] [--tlscert F] [--tlskey F] [--root PATH]`` to switch engines."""
        words = shlex.split(line)
        if words[:1] == ["engine"]:
            return self._switch(words[1:])
        if words[:1] == ["explain"]:
            return self._explain(words[1:])
        return self._command(words or ["info"])

    def _switch(self, words: list[str]) -> Any:
        parser = Parser(prog="%ipydock engine", add_help=False)
        parser.add_argument("kind", choices=["bundled", "docker", "podman"])
        parser.add_argument("-H", "--host", default="")
        parser.add_argument("-c", "--context", default="")
        parser.add_argument("--tlsverify", action="store_true", default=None)
        for flag in ("--tlscacert", "--tlscert", "--tlskey"):
            parser.add_argument(flag)
        parser.add_argument("--root", default=None)
        before = (self.engine, self.host, self.context, dict(self.tls), self.root)
        with cell_errors():
            a = parser.parse_args(words)
            tls = {k: getattr(a, k) for k in ("tlsverify", "tlscacert", "tlscert", "tlskey")
                   if getattr(a, k) is not None}  # fmt: skip
            self.engine, self.host, self.context, self.tls = a.kind, a.host, a.context, tls
            if a.root is not None:
                self.root = a.root
            try:
                return present(self.backend.info())
            except BaseException:
                self.engine, self.host, self.context, self.tls, self.root = before
                raise

    def _explain(self, words: list[str]) -> None:
        if words not in (["on"], ["off"]):
            raise IPythonUsageError("%ipydock explain on|off")
        self.explain = words == ["on"]

    def _teach(self, explanation: Any) -> None:
        if explanation is not None:
            self._accounts.append(explanation)

    def show_accounts(self, result: Any = None) -> None:
        """After the cell (IPython's ``post_run_cell``): teaching mode's accounts, under the
        result the cell showed."""
        accounts, self._accounts = self._accounts, []
        for explanation in accounts:
            display(explanation)

    # -- builds ----------------------------------------------------------------------------------

    @cell_magic
    def dockerfile(self, line: str, cell: str) -> Any:
        """Build the cell (a Dockerfile) with live progress; return the new image's history as
        a DataFrame (``h.attrs["image_id"]``, ``h.attrs["tags"]``)."""
        with cell_errors(cell_offset=1):
            args = dockerfile_parser().parse_args(shlex.split(line))
            if args.lint:
                return present(lint(cell), row_type=Advice)
            progress: Any = _QuietProgress()
            if not args.quiet and self.rich:
                progress = BuildProgress(" ".join(args.tag))
                display(progress)
            elif not args.quiet:
                progress = TextBuildProgress()
            result = _build(self.backend, cell, args, progress.handle)
            history = present(self.backend.history(result.image_id), row_type=HistoryRow)
            history.attrs.update(image_id=result.image_id, tags=list(result.tags))
            if self.explain:
                self._teach(build_account(self.backend, result))
            return history


# commands whose progress a widget shows (docker's progress lines on a terminal)
_WITH_PROGRESS = {("image", "pull"), ("image", "push"), ("image", "bootstrap"),
                  ("service", "create"), ("service", "update"), ("service", "scale")}  # fmt: skip


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
IPyDock.dockerfile.__doc__ = f"{IPyDock.dockerfile.__doc__}\n\n{dockerfile_parser().format_help()}"
