"""``ipydock GROUP COMMAND …``: the docker-like command line; the magics reuse its parser.

::

    argv ──> build_parser() ──> Command.run(backend, args, out) ──> table / JSON lines / messages
                                        |
                                        '── errors.IPyDockError ──> "Error: …" on stderr, exit 1

Each command is a small function that calls one backend method and prints what comes back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

from ipydock import backends
from ipydock.api import Backend
from ipydock.display.text import human_ago, human_size, short_id, table
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import to_record

__all__ = ["build_parser", "main", "run"]


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are :class:`UsageError`, for the CLI and the magics."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Command:
    group: str
    name: str
    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Backend, argparse.Namespace, IO[str]], int]
    aliases: tuple[str, ...] = ()  # other names inside the group
    top_level: tuple[str, ...] = ()  # docker's short forms: `images`, `rmi`, …


COMMANDS: list[Command] = []


def command(
    group: str, name: str, help: str, *, aliases: Sequence[str] = (), top: Sequence[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run``; its docstring-less ``setup`` is the function's ``.setup`` attribute."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        setup = getattr(fn, "setup", lambda p: None)
        COMMANDS.append(Command(group, name, help, setup, fn, tuple(aliases), tuple(top)))
        return fn

    return wrap


def _args(*specs: tuple[Sequence[str], dict[str, Any]]) -> Callable[[Callable], Callable]:
    """Attach argparse argument specs to a command function."""

    def wrap(fn: Callable) -> Callable:
        def setup(p: argparse.ArgumentParser) -> None:
            for flags, kw in specs:
                p.add_argument(*flags, **kw)

        fn.setup = setup  # type: ignore[attr-defined]
        return fn

    return wrap


def arg(*flags: str, **kw: Any) -> tuple[Sequence[str], dict[str, Any]]:
    return flags, kw


FORMAT = arg(
    "--format",
    choices=["table", "json"],
    default="table",
    help="table (default) or json: one JSON object per line",
)
FILTER = arg(
    "-f",
    "--filter",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="filter output (dangling=true, reference=PATTERN, label=K[=V], before, since)",
)
NO_TRUNC = arg("--no-trunc", action="store_true", help="do not truncate output")
QUIET = arg("-q", "--quiet", action="store_true", help="only show image IDs")


def _emit_json(records: Sequence[Any], out: IO[str]) -> None:
    for r in records:
        out.write(json.dumps(to_record(r), separators=(",", ":")) + "\n")


# -- image ---------------------------------------------------------------------------------


@command("image", "ls", "List images", aliases=["list"], top=["images"])
@_args(
    arg(
        "-a",
        "--all",
        action="store_true",
        help="show all images (default hides intermediate images)",
    ),
    FILTER,
    NO_TRUNC,
    QUIET,
    FORMAT,
)
def image_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = backend.images(all=a.all, filters=a.filter)
    if a.quiet:
        seen: list[str] = []
        for r in rows:
            ident = short_id(r.id, a.no_trunc)
            if ident not in seen:
                seen.append(ident)
        out.write("".join(f"{i}\n" for i in seen))
    elif a.format == "json":
        _emit_json(rows, out)
    else:
        cells = [
            [
                r.repository,
                r.tag,
                short_id(r.id, a.no_trunc),
                human_ago(r.created),
                human_size(r.size),
            ]
            for r in rows
        ]
        out.write(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], cells) + "\n")
    return 0


def _bool_word(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@command("image", "history", "Show the history of an image", top=["history"])
@_args(
    arg(
        "-H",
        "--human",
        type=_bool_word,
        default=True,
        metavar="true|false",
        help="print sizes and dates in human readable format (default true)",
    ),
    NO_TRUNC,
    QUIET,
    FORMAT,
    arg("image"),
)
def image_history(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = backend.history(a.image)
    if a.quiet:
        out.write("".join(f"{short_id(r.id, a.no_trunc)}\n" for r in rows))
        return 0
    if a.format == "json":
        _emit_json(rows, out)
        return 0
    cells = []
    for r in rows:
        created_by = r.created_by.replace("\t", " ").replace("\n", " ")
        if not a.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        if a.human:
            created = human_ago(r.created)
            size = human_size(r.size)
        else:
            created = r.created.isoformat() if r.created else "N/A"
            size = str(r.size)
        cells.append([short_id(r.id, a.no_trunc), created, created_by, size, r.comment])
    out.write(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], cells) + "\n")
    return 0


@command("image", "inspect", "Display detailed information on one or more images")
@_args(FORMAT, arg("images", nargs="+", metavar="IMAGE"))
def image_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    details = [backend.inspect_image(name) for name in a.images]
    if a.format == "json":
        _emit_json(details, out)
    else:
        out.write(json.dumps([to_record(d) for d in details], indent=4) + "\n")
    return 0


@command("image", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", top=["tag"])
@_args(arg("source", metavar="SOURCE_IMAGE[:TAG]"), arg("target", metavar="TARGET_IMAGE[:TAG]"))
def image_tag(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    backend.tag(a.source, a.target)
    return 0


@command("image", "rm", "Remove one or more images", aliases=["remove", "rmi"], top=["rmi"])
@_args(
    arg("-f", "--force", action="store_true", help="force removal of the image"),
    arg("images", nargs="+", metavar="IMAGE"),
)
def image_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    status = 0
    for name in a.images:  # like docker: go on with the others, fail at the end
        try:
            events = backend.remove_image(name, force=a.force)
        except IPyDockError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
            continue
        for ev in events:
            out.write(f"{ev.action.capitalize()}: {ev.target}\n")
    return status


@command("image", "prune", "Remove unused images")
@_args(
    arg(
        "-a", "--all", action="store_true", help="remove all unused images, not just dangling ones"
    ),
    arg("-f", "--force", action="store_true", help="do not prompt for confirmation"),
    arg(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label=K[=V] or until=TIME",
    ),
)
def image_prune(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if not a.force:
        what = (
            "all images without at least one container associated to them"
            if a.all
            else "all dangling images"
        )
        out.write(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    result = backend.prune_images(all=a.all, filters=a.filter)
    if result.deleted:
        out.write("Deleted Images:\n")
        for ev in result.deleted:
            out.write(f"{'untagged' if ev.action == 'untagged' else 'deleted'}: {ev.target}\n")
        out.write("\n")
    out.write(f"Total reclaimed space: {human_size(result.space_reclaimed)}\n")
    return 0


@command("image", "save", "Save one or more images to a tar archive", top=["save"])
@_args(
    arg("-o", "--output", help="write to a file instead of STDOUT"),
    arg("images", nargs="+", metavar="IMAGE"),
)
def image_save(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.output and a.output != "-":
        backend.save(a.images, a.output)
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect")
    sys.stdout.flush()
    backend.save(a.images, sys.stdout.buffer)
    return 0


@command("image", "load", "Load an image from a tar archive or STDIN", top=["load"])
@_args(
    arg("-i", "--input", default="-", help="read from a tar archive file instead of STDIN"),
    arg("-q", "--quiet", action="store_true", help="suppress the load output"),
)
def image_load(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.input == "-" and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty: use -i FILE")
    loaded = backend.load(a.input)
    if not a.quiet:
        for img in loaded:
            for name, old in img.replaced:
                out.write(
                    f"The image {name} already exists, renaming the old one with ID "
                    f"{old} to empty string\n"
                )
            for name in img.tags:
                out.write(f"Loaded image: {name}\n")
            if not img.tags:
                out.write(f"Loaded image ID: {img.id}\n")
    return 0


@command(
    "image",
    "import",
    "Import the contents from a tarball to create a filesystem image",
    top=["import"],
)
@_args(
    arg(
        "-c",
        "--change",
        action="append",
        default=[],
        help="apply a Dockerfile instruction to the image (CMD, ENV, …)",
    ),
    arg("-m", "--message", default="", help="set the commit message"),
    arg("source", metavar="file|URL|-"),
    arg("name", nargs="?", metavar="REPOSITORY[:TAG]"),
)
def image_import(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    image_id = backend.import_image(a.source, a.name, message=a.message, changes=a.change)
    out.write(image_id + "\n")
    return 0


# -- system --------------------------------------------------------------------------------


@command("system", "info", "Display system-wide information", top=["info"])
@_args(FORMAT)
def system_info(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    info = backend.info()
    if a.format == "json":
        out.write(json.dumps(info) + "\n")
    else:
        width = max(len(k) for k in info)
        out.write(
            "".join(f"{k.replace('_', ' ').capitalize():<{width}}  {v}\n" for k, v in info.items())
        )
    return 0


@command("system", "df", "Show disk usage")
@_args(FORMAT)
def system_df(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = backend.disk_usage()
    if a.format == "json":
        _emit_json(rows, out)
        return 0
    cells = []
    for r in rows:
        pct = f" ({100 * r.reclaimable // r.size}%)" if r.size else ""
        cells.append(
            [
                r.type,
                str(r.total),
                str(r.active),
                human_size(r.size),
                human_size(r.reclaimable) + pct,
            ]
        )
    out.write(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], cells) + "\n")
    return 0


@command("system", "check", "Check that the store is consistent (and mend it)")
@_args(
    arg(
        "--repair",
        action="store_true",
        help="remove leftovers of interrupted writes and unname broken images",
    ),
    FORMAT,
)
def system_check(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    report = backend.check(repair=a.repair)
    if a.format == "json":
        out.write(json.dumps(to_record(report)) + "\n")
        return 0 if report.ok or a.repair else 1
    for p in report.problems:
        out.write(f"problem: {p}\n")
    for g in report.garbage:
        out.write(f"leftover: {g}\n")
    for r in report.repaired:
        out.write(f"repaired: {r}\n")
    if report.ok:
        extra = (
            f" ({len(report.garbage)} leftovers; `--repair` removes them)"
            if report.garbage and not a.repair
            else ""
        )
        out.write(f"store is consistent{extra}\n")
        return 0
    if a.repair:
        out.write("store repaired\n")
        return 0
    print(
        f"Error: {len(report.problems)} problems; run `ipydock system check --repair`",
        file=sys.stderr,
    )
    return 1


# -- parser and entry point ----------------------------------------------------------------


def build_parser() -> Parser:
    parser = Parser(prog="ipydock", description="Docker-like images from Python and notebooks")
    parser.add_argument("--root", help="store root (default: $IPYDOCK_ROOT or /var/lib/ipydock)")
    parser.add_argument("--driver", choices=["overlay", "vfs"], help="snapshot driver")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    top = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    top.required = True
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in COMMANDS:
        if cmd.group not in groups:
            g = top.add_parser(
                cmd.group,
                help=f"Manage {cmd.group}s" if cmd.group != "system" else "Manage ipydock",
            )
            groups[cmd.group] = g.add_subparsers(
                dest="command", metavar="COMMAND", parser_class=Parser
            )
            groups[cmd.group].required = True
        sub = groups[cmd.group].add_parser(cmd.name, aliases=list(cmd.aliases), help=cmd.help)
        cmd.setup(sub)
        sub.set_defaults(run=cmd.run)
        for alias in cmd.top_level:
            short = top.add_parser(alias, help=f"{cmd.help} (= {cmd.group} {cmd.name})")
            cmd.setup(short)
            short.set_defaults(run=cmd.run)
    return parser


def run(argv: Sequence[str], out: IO[str] | None = None) -> int:
    """Parse and run one command; errors raise (the caller decides how they look)."""
    args = build_parser().parse_args(list(argv))
    backend = backends.connect("bundled", root=args.root, driver=args.driver)
    return int(args.run(backend, args, out or sys.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("IPYDOCK_DEBUG"))
    try:
        return run(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except IPyDockError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if debug:
            raise
        print(
            f"Error: internal error: {type(exc).__name__}: {exc} (rerun with --debug for "
            "the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
