"""``ipydock GROUP COMMAND …``: the docker-like command line; the magics reuse its parser.

::

    argv ──> build_parser() ──> Command.run(backend, args, out) ──> table / JSON lines / messages
                                        |
                                        '── errors.IPyDockError ──> "Error: …" on stderr, exit 1

Each command is a small function in a module per group (``images.py``, ``system.py``, …) that
calls one backend method and prints what comes back; ``registry.py`` holds the shared parts.
Only the module(s) of the word after ``ipydock`` are imported (see ``MODULES``): every command
pays the start-up time of what it imports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import IO

from ipydock.cli.registry import COMMANDS, Parser
from ipydock.errors import IPyDockError

__all__ = ["MODULES", "build_parser", "load_commands", "main", "run"]

# The command modules that define the commands of each word that may follow `ipydock` (groups
# and docker's top-level short forms). tests/test_cli.py checks it against the registry.
_CONTAINER_WORDS = ("commit", "cp", "create", "diff", "exec", "kill", "logs", "ps", "restart",
                    "rm", "run", "start", "stop", "top", "wait")  # fmt: skip
MODULES: dict[str, tuple[str, ...]] = {
    "image": ("images", "build"),
    "container": ("containers",),
    "volume": ("volumes",),
    "system": ("system",),
    "build": ("build",),
    "info": ("system",),
    **{
        word: ("images",) for word in ("images", "rmi", "history", "tag", "save", "load", "import")
    },  # fmt: skip
    **{word: ("containers",) for word in _CONTAINER_WORDS},
}
ALL_MODULES = ("images", "build", "containers", "volumes", "system")


def load_commands(word: str | None = None) -> None:
    """Import the command modules for ``word`` (all of them when it is None or unknown)."""
    for name in MODULES.get(word or "", ALL_MODULES):
        importlib.import_module(f"ipydock.cli.{name}")


def _command_word(argv: Sequence[str]) -> str | None:
    """The first word that is not a global option (``--root DIR``, ``--driver D``, ``--debug``)."""
    args = iter(argv)
    for a in args:
        if a in ("--root", "--driver"):
            next(args, None)
        elif not a.startswith("-"):
            return a
    return None


# -- parser and entry point ----------------------------------------------------------------


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser for ``argv`` (only its command group's commands), or for every command."""
    load_commands(_command_word(argv) if argv is not None else None)
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
        sub.set_defaults(run=cmd.run, spec=cmd)
        for alias in cmd.top_level:
            short = top.add_parser(alias, help=f"{cmd.help} (= {cmd.group} {cmd.name})")
            cmd.setup(short)
            short.set_defaults(run=cmd.run, spec=cmd)
    return parser


def run(argv: Sequence[str], out: IO[str] | None = None) -> int:
    """Parse and run one command; errors raise (the caller decides how they look)."""
    args = build_parser(argv).parse_args(list(argv))
    from ipydock import backends

    backend = backends.connect("bundled", root=args.root, driver=args.driver, warm=False)
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
