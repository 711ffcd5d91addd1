"""``ipydock pull|push|login|logout`` (and ``image pull|push``): registries, in docker's words.

Progress events become the lines ``docker pull`` prints when its output is not a terminal: one
line per layer and state (``a3ed95caeb02: Pull complete``), none for each byte moved.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import arg, command
from ipydock.cli.registry import arguments as _args
from ipydock.errors import ImageNotFound, UsageError
from ipydock.models import PullResult, PushResult, TransferEvent

_QUIET = arg("-q", "--quiet", action="store_true", help="suppress verbose output")


def text_progress(out: IO[str]) -> Callable[[TransferEvent], None]:
    """Docker's non-terminal progress: a line when a layer changes state, none per byte."""
    last: dict[str, str] = {}

    def show(ev: TransferEvent) -> None:
        if not ev.id:
            if ev.text:
                out.write(ev.text + "\n")
        elif last.get(ev.id) != ev.status and ev.status not in ("Downloading", "Pushing"):
            last[ev.id] = ev.status
            out.write(f"{ev.id}: {ev.status}\n")
        else:
            return
        out.flush()

    return show


def _progress(a: argparse.Namespace) -> Callable[[TransferEvent], None] | None:
    return getattr(a, "progress", None)  # a front door may hand one in (the notebook's)


def _pull(backend: Backend, a: argparse.Namespace) -> PullResult:
    return backend.pull(a.name, platform=a.platform, progress=_progress(a))


@command("image", "pull", "Download an image from a registry", top=["pull"], call=_pull)
@_args(
    arg("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
        help="pull this platform's image of a multi-platform index (default: this machine's)"),
    _QUIET,
    arg("name", metavar="NAME[:TAG|@DIGEST]"),
)  # fmt: skip
def image_pull(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if not a.quiet:
        a.progress = text_progress(out)
    result = _pull(backend, a)
    out.write(result.reference + "\n")
    return 0


def _push(backend: Backend, a: argparse.Namespace) -> PushResult | list[PushResult]:
    if not a.all_tags:
        return backend.push(a.name, progress=_progress(a))
    last = a.name.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        raise UsageError(f"tag can't be used with --all-tags/-a: {a.name}")
    shown = a.name.removeprefix("docker.io/").removeprefix("library/")
    tags = sorted({r.tag for r in backend.images() if r.repository == shown})
    if not tags:
        raise ImageNotFound(f"{a.name} (no tag of this repository here)")
    return [backend.push(f"{a.name}:{tag}", progress=_progress(a)) for tag in tags]


@command("image", "push", "Upload an image to a registry", top=["push"], call=_push)
@_args(
    arg("-a", "--all-tags", action="store_true", help="push every tag of the repository"),
    _QUIET,
    arg("name", metavar="NAME[:TAG]"),
)
def image_push(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if not a.quiet:
        a.progress = text_progress(out)
    result = _push(backend, a)
    if a.quiet:
        for r in result if isinstance(result, list) else [result]:
            out.write(f"{r.repository}:{r.tag}\n")
    return 0


def _password(a: argparse.Namespace) -> tuple[str, str]:
    username, password = a.username or "", a.password or ""
    if a.password_stdin:
        if a.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username or not password:
        ask = getattr(a, "ask", None)  # a front door that can ask (the notebook's getpass)
        if ask is None and not sys.stdin.isatty():
            raise UsageError("login needs -u USER and a password (-p or --password-stdin)")
        import getpass

        username = username or (ask or input)("Username: ").strip()
        password = password or (ask or getpass.getpass)("Password: ")
    return username, password


def _login(backend: Backend, a: argparse.Namespace) -> str:
    username, password = _password(a)
    return backend.login(a.server, username, password)


@command("system", "login", "Log in to a registry", top=["login"], call=_login)
@_args(
    arg("-u", "--username", help="username"),
    arg("-p", "--password", help="password (insecure: it stays in the shell history)"),
    arg("--password-stdin", action="store_true", help="take the password from stdin"),
    arg("server", nargs="?", default=None, metavar="SERVER",
        help="registry HOST[:PORT] (default: Docker Hub)"),
)  # fmt: skip
def login(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. "
                         "Use --password-stdin.\n")  # fmt: skip
    out.write(_login(backend, a) + "\n")
    return 0


def _logout(backend: Backend, a: argparse.Namespace) -> str:
    return backend.logout(a.server)


@command("system", "logout", "Log out from a registry", top=["logout"], call=_logout)
@_args(arg("server", nargs="?", default=None, metavar="SERVER"))
def logout(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_logout(backend, a) + "\n")
    return 0


def _bootstrap(backend: Backend, a: argparse.Namespace) -> str:
    return backend.bootstrap(
        a.name, suite=a.suite, variant=a.variant, include=a.include or [], mirror=a.mirror,
        progress=_progress(a),
    )  # fmt: skip


@command("image", "bootstrap", "Make a Debian base image with mmdebstrap", call=_bootstrap)
@_args(
    arg("--suite", default="bookworm", help="Debian or Ubuntu codename (default: bookworm)"),
    arg("--variant", default="minbase",
        help="mmdebstrap's package set: minbase (default), essential, apt, required, …"),
    arg("--include", action="append", metavar="PKG,…", help="more packages to install"),
    arg("--mirror", default=None, metavar="URL",
        help="the archive to install from (default: mmdebstrap's for the suite)"),
    _QUIET,
    arg("name", metavar="NAME[:TAG]"),
)  # fmt: skip
def image_bootstrap(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    """The image is reproducible with SOURCE_DATE_EPOCH set (same inputs and mirror content:
    same image ID). As an ordinary user mmdebstrap's unshare mode needs a subuid range."""
    if not a.quiet:
        a.progress = text_progress(out)
    out.write(_bootstrap(backend, a) + "\n")
    return 0
