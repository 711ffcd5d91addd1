"""``ipydock lint`` (= ``dockerfile lint``) and ``ipydock notebook export``: tools around the
notebooks that need no engine.

::

    ipydock lint [--format json] FILE|-      Dockerfile:3 IPD003 python3-pandas without a version
                                                 fix: pin each package: apt-get install …
    ipydock notebook export NB.ipynb [-o DIR] Dockerfiles, build.sh and binder/ under DIR
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import FORMAT, arg, command, emit_json
from ipydock.cli.registry import arguments as _args
from ipydock.errors import UsageError
from ipydock.lint import Advice, lint
from ipydock.notebook_export import Exported, export


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    if os.path.isdir(path):
        path = os.path.join(path, "Dockerfile")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _lint_call(backend: Backend, a: argparse.Namespace) -> list[Advice]:
    return lint(_read(a.dockerfile))


@command(
    "dockerfile", "lint", "Reproducibility advice on a Dockerfile", top=("lint",), call=_lint_call
)
@_args(
    FORMAT,
    arg(
        "dockerfile",
        nargs="?",
        default="Dockerfile",
        metavar="FILE",
        help="a Dockerfile, a directory holding one, or - for stdin",
    ),
)
def dockerfile_lint(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    """Like hadolint: one line per piece of advice, exit status 1 when there is any."""
    found = _lint_call(backend, a)
    if a.format == "json":
        emit_json(found, out)
    else:
        name = "-" if a.dockerfile == "-" else a.dockerfile
        for adv in found:
            out.write(
                f"{name}:{adv.line} {adv.code} {adv.rule}: {adv.message}\n    fix: {adv.fix}\n"
            )
    return 1 if found else 0


def _this_notebook() -> str:
    """In a kernel Jupyter Server started: the notebook it runs (``JPY_SESSION_NAME``, a path
    that may be relative to the server's root, while the kernel runs in the notebook's folder)."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if not session or os.path.exists(session):
        return session
    here = os.path.basename(session)
    return here if os.path.exists(here) else session


def _export_call(backend: Backend, a: argparse.Namespace) -> Exported:
    notebook = a.notebook or _this_notebook()
    if not notebook:
        raise UsageError("notebook export: name the notebook (NB.ipynb)")
    return export(notebook, a.output)


@command(
    "notebook",
    "export",
    "A notebook's %%dockerfile cells as Dockerfiles and binder/",
    call=_export_call,
)
@_args(
    arg("-o", "--output", metavar="DIR", help="where to write (default: NB-export/ beside it)"),
    arg(
        "notebook",
        nargs="?",
        metavar="NB.ipynb",
        help="the notebook (default in a kernel: the one it runs)",
    ),
)
def notebook_export(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    done = _export_call(backend, a)
    for path in done.files:
        out.write(os.path.relpath(path) + "\n")
    for cell in done.unresolved:
        print(
            f"WARNING: cell {cell} has {{python}} expressions in its flags: see build.sh",
            file=sys.stderr,
        )
    return 0
