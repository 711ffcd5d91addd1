"""The magics: parse a line, call one backend method (through the CLI's command), hand the result
to :mod:`ipydock.display`. Errors go through :func:`ipydock.magics.errors.cell_errors`.

Settings are traitlets on :class:`IPyDock` (``%config IPyDock.engine = "bundled"``, or
``c.IPyDock.root = "/srv/ipydock"`` in an IPython profile), as JupySQL's ``SqlMagic`` has them.
"""

from __future__ import annotations

import inspect
import os
import shlex
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import CaselessStrEnum, Unicode, observe
from traitlets.config import Configurable

from ipydock import backends
from ipydock.api import Backend
from ipydock.cli.registry import Parser
from ipydock.display.results import present
from ipydock.magics import dispatch
from ipydock.magics.errors import CellError, cell_errors
from ipydock.models import HistoryRow

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
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        self._backend: Backend | None = None
        shell.configurables.append(self)  # `%config IPyDock` lists and sets these

    @observe("engine", "root", "host", "driver")
    def _forget_backend(self, change: Any) -> None:
        self._backend = None

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
            result = dispatch.run(self.backend, args)
            spec = args.spec
            return present(
                result,
                command=spec.name,
                row_type=dispatch.row_type(spec),
                rich=self.rich,
                title=getattr(args, "image", "") or title,
            )

    def _group(self, group: str, line: str) -> Any:
        if group not in dispatch.groups():
            raise CellError(
                f"ipydock: `%{group}` is not available in this version yet "
                f"(it comes with the `ipydock {group}` commands)"
            )
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

    @magic_arguments()
    @argument("-t", "--tag", action="append", default=[], help="name the image NAME[:TAG]")
    @argument("--context", default=".", help="build context: a directory, tarball or URL")
    @argument("--build-arg", action="append", default=[], metavar="K=V", help="a build ARG")
    @argument("--target", default=None, help="the stage to build")
    @argument("--no-cache", action="store_true", help="do not use the build cache")
    @argument("-q", "--quiet", action="store_true", help="no progress, only the result")
    @cell_magic
    def dockerfile(self, line: str, cell: str) -> Any:
        """Build the cell (a Dockerfile); return the new image's history as a DataFrame."""
        args = parse_argstring(self.dockerfile, line)
        with cell_errors(cell_offset=1):
            backend = self.backend
            if not hasattr(backend, "build"):
                raise CellError(
                    f"ipydock: the {backend.name} engine cannot build yet in this version "
                    "(`%%dockerfile` works once the builder is there)"
                )
            from ipydock.display.progress import BuildProgress, TextBuildProgress

            progress: Any = None
            if not args.quiet:
                progress = BuildProgress(" ".join(args.tag)) if self.rich else TextBuildProgress()
                if self.rich:
                    display(progress)
            image_id = _build(backend, cell, args, progress.handle if progress else None)
            if progress is not None:
                progress.finish(f"Successfully built {image_id}")
            return present(backend.history(image_id), row_type=HistoryRow)


def _build(backend: Any, cell: str, args: Any, on_event: Any) -> str:
    """The one call into the builder (its signature is settled in issue 4; adapt here)."""
    build_args = {}
    for item in args.build_arg:
        key, sep, value = item.partition("=")
        build_args[key] = value if sep else os.environ.get(key, "")
    result = backend.build(
        os.path.abspath(args.context) if "://" not in args.context else args.context,
        dockerfile=cell,
        tags=list(args.tag),
        build_args=build_args,
        target=args.target,
        no_cache=args.no_cache,
        progress=on_event,
    )
    return str(getattr(result, "id", result))


for _group_name in ("image", "container", "network", "volume"):
    getattr(IPyDock, _group_name).__doc__ = dispatch.group_help(_group_name)
