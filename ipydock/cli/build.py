"""``ipydock build`` / ``ipydock image build``: a Dockerfile and a context -> an image.

Prints what ``docker build`` (legacy builder) prints, from the backend's progress events::

    Sending build context to the engine  2.048kB
    Step 1/3 : FROM busybox
     ---> 3f57d9401f8d
    Step 2/3 : RUN echo hi
    hi
     ---> 8c2a6b0e1f4d
    Step 3/3 : ENV A=1
     ---> Using cache
     ---> 5b1d2c3e4f5a
    Successfully built 5b1d2c3e4f5a
    Successfully tagged app:latest
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, BinaryIO

from ipydock.api import Backend
from ipydock.cli.registry import arg, command
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import build_line
from ipydock.errors import UsageError

if TYPE_CHECKING:
    from ipydock.models import BuildEvent, BuildResult


#: The flags ``build`` shares with ``%%dockerfile`` (which has the cell for ``-f``).
BUILD_FLAGS = (
    arg("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="name the image"),
    arg("--build-arg", action="append", default=[], metavar="KEY[=VALUE]", help="set a build arg"),
    arg("--target", default="", metavar="STAGE", help="build up to this stage"),
    arg("--no-cache", action="store_true", help="do not use the cache"),
    arg("-q", "--quiet", action="store_true", help="print only the image ID"),
    arg(
        "--ulimit",
        action="append",
        default=[],
        metavar="NAME=SOFT[:HARD]",
        help="resource limits of the RUN steps (e.g. nofile=1024:2048)",
    ),  # fmt: skip
    arg(
        "--network",
        default="default",
        metavar="MODE",
        help="the network of RUN steps: default (the bridge, with NAT), host or none",
    ),
    arg(
        "--reproducible",
        action="store_true",
        help="fixed times (SOURCE_DATE_EPOCH, else 0): the same inputs give the same image ID",
    ),
)


def build_call(
    backend: Backend, a: argparse.Namespace, progress: Callable[[BuildEvent], None] | None = None,
    *, dockerfile: str | None = None, stdin: BinaryIO | None = None,
) -> BuildResult:  # fmt: skip
    """The one call into the builder for ``build`` and ``%%dockerfile``."""
    return backend.build(
        a.context,
        dockerfile=dockerfile if dockerfile is not None else getattr(a, "file", None),
        tags=a.tag,
        build_args=parse_build_args(a.build_arg),
        target=a.target,
        no_cache=a.no_cache,
        reproducible=a.reproducible,
        progress=progress,
        stdin=stdin,
        **({"ulimits": tuple(a.ulimit)} if getattr(a, "ulimit", None) else {}),
        network=getattr(a, "network", "default"),
    )


@command("image", "build", "Build an image from a Dockerfile", top=["build"],
         call=lambda backend, a: build_call(backend, a, stdin=_stdin(a)))  # fmt: skip
@_args(
    *BUILD_FLAGS,
    arg(
        "-f",
        "--file",
        metavar="FILE",
        help="the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)",
    ),
    arg("context", metavar="CONTEXT", help="directory, tarball, URL, or - for stdin"),
)
def image_build(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    printer = _Printer(out)
    result = build_call(backend, a, None if a.quiet else printer, stdin=_stdin(a))
    if a.quiet:
        out.write(result.image_id + "\n")
    return 0


def _stdin(a: argparse.Namespace) -> BinaryIO | None:
    return sys.stdin.buffer if "-" in (a.context, a.file) else None


def parse_build_args(items: list[str]) -> dict[str, str | None]:
    """``K=V`` as given; a bare ``K`` takes the value of the environment variable K (skipped
    when unset), as the docker CLI does."""
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}: use KEY=VALUE or KEY")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


class _Printer:
    """Turns BuildEvents into the legacy builder's lines."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, e: BuildEvent) -> None:
        line = build_line(e)
        if line is not None:
            self.out.write(line + "\n")
            self.out.flush()
