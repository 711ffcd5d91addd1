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
import warnings
from collections.abc import Sequence
from typing import IO

from ipydock.cli.registry import COMMANDS, Command, Parser
from ipydock.errors import IPyDockError, IPyDockWarning, NotATerminal

__all__ = ["MODULES", "build_parser", "load_commands", "main", "run"]

# The command modules that define the commands of each word that may follow `ipydock` (groups
# and docker's top-level short forms). tests/test_cli.py checks it against the registry.
_CONTAINER_WORDS = ("attach", "commit", "cp", "create", "diff", "exec", "kill", "logs", "port",
                    "ps", "restart", "rm", "run", "start", "stop", "top", "wait")  # fmt: skip
MODULES: dict[str, tuple[str, ...]] = {
    "image": ("images", "build", "distribution"),
    "container": ("containers",),
    "volume": ("volumes",),
    "network": ("networks",),
    "system": ("system", "distribution", "service"),
    "build": ("build",),
    **{word: ("swarm",) for word in ("swarm", "node", "service", "stack")},
    "info": ("system",),
    **{
        word: ("images",) for word in ("images", "rmi", "history", "tag", "save", "load", "import")
    },  # fmt: skip
    **{word: ("containers",) for word in _CONTAINER_WORDS},
    **{word: ("distribution",) for word in ("pull", "push", "login", "logout")},
    **{word: ("notebooks",) for word in ("lint", "dockerfile", "notebook")},
}
ALL_MODULES = ("images", "build", "containers", "volumes", "networks", "system", "distribution",
               "service", "swarm", "notebooks")  # fmt: skip


def load_commands(word: str | None = None) -> None:
    """Import the command modules for ``word`` (all of them when it is None or unknown)."""
    for name in MODULES.get(word or "", ALL_MODULES):
        importlib.import_module(f"ipydock.cli.{name}")


# global options that take a value (docker's -H/--context/--tls* among them)
_VALUED = ("--root", "--driver", "--engine", "-H", "--host", "-c", "--context", "--tlscacert",
           "--tlscert", "--tlskey")  # fmt: skip


def _command_words(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The first two words that are not global options (``--root DIR``, ``--driver D``,
    ``--debug``): ``("image", "ls")``, ``("images", None)``."""
    words: list[str | None] = []
    args = iter(argv)
    for a in args:
        if a in _VALUED:
            next(args, None)
        elif not a.startswith("-"):
            words.append(a)
            if len(words) == 2:
                break
        elif words:  # a command's own option: no second word
            break
    words += [None, None]
    return words[0], words[1]


def _chosen(word: str | None, sub: str | None) -> tuple[list[Command], list[Command]]:
    """(commands to add under their group, commands to add as docker short forms) for
    ``ipydock WORD SUB``. Each parser costs argparse's gettext look-ups (about 0.3 ms a help
    text), so a command builds only its own; an unknown or missing word builds the whole group,
    or everything, for argparse's error messages and help."""
    in_group = [c for c in COMMANDS if c.group == word]
    if in_group:
        return [c for c in in_group if sub in (c.name, *c.aliases)] or in_group, []
    short = [c for c in COMMANDS if word in c.top_level]
    if short:
        return [], short
    return list(COMMANDS), list(COMMANDS)


# -- parser and entry point ----------------------------------------------------------------


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser for ``argv`` (only the parsers it needs), or for every command."""
    word, sub = _command_words(argv) if argv is not None else (None, None)
    load_commands(word)
    grouped, shorts = _chosen(word, sub)
    parser = Parser(prog="ipydock", description="Docker-like images from Python and notebooks")
    parser.add_argument("--root", help="store root (default: $IPYDOCK_ROOT or /var/lib/ipydock)")
    drivers = ["overlay", "fuse-overlayfs", "vfs"]
    parser.add_argument("--driver", choices=drivers, help="snapshot driver")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("--engine", choices=["bundled", "docker", "podman"],
                        help="the engine (default: $IPYDOCK_ENGINE, else docker when -H or "
                        "--context is given, else bundled)")  # fmt: skip
    # dests of their own: a command's own `context` (build) or `host` must not shadow them
    parser.add_argument("-H", "--host", dest="engine_host", help="a Docker engine to connect to "
                        "(unix://, tcp://, ssh://)")  # fmt: skip
    parser.add_argument("-c", "--context", dest="engine_context", help="a docker context by name")
    parser.add_argument("--tlsverify", action="store_true", default=None,
                        help="use TLS and verify the engine")  # fmt: skip
    parser.add_argument("--tlscacert", help="trust certs signed only by this CA")
    parser.add_argument("--tlscert", help="path to the TLS client certificate")
    parser.add_argument("--tlskey", help="path to the TLS client key")
    top = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    top.required = True
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in grouped:
        if cmd.group not in groups:
            about = "Manage ipydock" if cmd.group == "system" else f"Manage {cmd.group}s"
            g = top.add_parser(cmd.group, help=about)
            groups[cmd.group] = g.add_subparsers(
                dest="command", metavar="COMMAND", parser_class=Parser
            )
            groups[cmd.group].required = True
        _add(groups[cmd.group], cmd.name, cmd, aliases=list(cmd.aliases), help=cmd.help)
    for cmd in shorts:
        for alias in cmd.top_level:
            if alias == word or grouped:  # a short form builds only itself
                _add(top, alias, cmd, help=f"{cmd.help} (= {cmd.group} {cmd.name})")
    return parser


def _add(sub: argparse._SubParsersAction, name: str, cmd: Command, **kw: object) -> None:
    p = sub.add_parser(name, **kw)  # type: ignore[arg-type]
    cmd.setup(p)
    p.set_defaults(run=cmd.run, spec=cmd)


#: The parser of every command, made once by a process that forks workers (the command
#: server): building one costs a short command most of its time (argparse, gettext).
prebuilt: Parser | None = None


def run(argv: Sequence[str], out: IO[str] | None = None) -> int:
    """Parse and run one command; errors raise (the caller decides how they look)."""
    args = (prebuilt or build_parser(argv)).parse_args(list(argv))
    backend = _backend(args) if args.spec.engine else None
    return int(args.run(backend, args, out or sys.stdout))


def _backend(args: argparse.Namespace) -> object:
    """The bundled engine, or with ``--engine``/``-H``/``--context`` (or $IPYDOCK_ENGINE) a
    Docker or Podman engine, as docker's own global options choose one."""
    from ipydock import backends

    kind = args.engine or os.environ.get("IPYDOCK_ENGINE") or (
        "docker" if args.engine_host or args.engine_context else "bundled")  # fmt: skip
    if kind == "bundled":
        return backends.connect("bundled", root=args.root, driver=args.driver, warm=False)
    tls = {k: getattr(args, k) for k in ("tlsverify", "tlscacert", "tlscert", "tlskey")
           if getattr(args, k) is not None}  # fmt: skip
    return backends.connect(kind, host=args.engine_host, context=args.engine_context, tls=tls)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: IO[str] | None = None, line: str | None = None,
) -> None:  # fmt: skip
    """docker's form for ipydock's warnings; Python's for anything else."""
    if issubclass(category, IPyDockWarning):
        print(f"WARNING: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


_python_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("IPYDOCK_DEBUG"))
    warnings.showwarning = _show_warning
    try:
        return run(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except NotATerminal as exc:  # docker prints this one as it is
        print(exc, file=sys.stderr)
        return 1
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
