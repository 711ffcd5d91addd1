"""The command registry the CLI and the magics share: a parser that raises, and the commands.

Each command module registers small functions with :func:`command`; :func:`arguments` attaches
their argparse flags. Shared flag bundles (``FORMAT``, ``FILTER``, …) live here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

from ipydock.api import Backend
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import ActionResult, to_record

__all__ = [
    "COMMANDS",
    "Command",
    "Parser",
    "arg",
    "arguments",
    "command",
    "each",
    "emit_inspect",
    "emit_json",
    "print_each",
    "print_logs",
]


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
    # The data half of ``run``: call the backend, return what it gave (rows, a detail, an ID,
    # ...), print nothing. The magics and ``ipydock.dock`` use it; ``run`` renders it as text.
    call: Callable[[Backend, argparse.Namespace], Any]
    aliases: tuple[str, ...] = ()  # other names inside the group
    top_level: tuple[str, ...] = ()  # docker's short forms: `images`, `rmi`, …
    # False: the command needs no engine (none is connected: no store is made for it)
    engine: bool = True


COMMANDS: list[Command] = []


def command(
    group: str,
    name: str,
    help: str,
    *,
    aliases: Sequence[str] = (),
    top: Sequence[str] = (),
    call: Callable[[Backend, argparse.Namespace], Any],
    engine: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run``; its docstring-less ``setup`` is the function's ``.setup`` attribute.

    ``call`` is the command's data half (see :attr:`Command.call`); ``run`` usually calls it and
    prints the result. ``engine=False``: it gets no backend (None), so none is connected.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        setup = getattr(fn, "setup", lambda p: None)
        COMMANDS.append(Command(group, name, help, setup, fn, call, tuple(aliases), tuple(top),
                                engine))  # fmt: skip
        return fn

    return wrap


def arguments(*specs: tuple[Sequence[str], dict[str, Any]]) -> Callable[[Callable], Callable]:
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


def emit_inspect(details: Sequence[Any], fmt: str, out: IO[str]) -> None:
    """``inspect`` output: a JSON array as docker prints it, or JSON lines with --format json."""
    if fmt == "json":
        emit_json(details, out)
    else:
        out.write(json.dumps([to_record(d) for d in details], indent=4) + "\n")


def emit_json(records: Sequence[Any], out: IO[str]) -> None:
    for r in records:
        out.write(json.dumps(to_record(r), separators=(",", ":")) + "\n")


def each(names: list[str], action: Callable[[str], object]) -> list[ActionResult]:
    """Docker's many-names commands: go on after an error; one row per name."""
    rows = []
    for name in names:
        try:
            action(name)
            rows.append(ActionResult(name))
        except IPyDockError as exc:
            rows.append(ActionResult(name, str(exc)))
    return rows


def print_logs(entries: Iterable[Any], out: IO[str], timestamps: bool = False) -> int:
    """Log entries as docker prints them: stderr's lines on stderr, each as it comes."""
    for entry in entries:
        target = sys.stderr if entry.stream == "stderr" else out
        target.write(f"{entry.time} {entry.text}" if timestamps else entry.text)
        target.flush()
    return 0


def print_each(rows: list[ActionResult], out: IO[str]) -> int:
    """The names done on ``out``, an ``Error:`` line per failure on stderr; 1 if any failed."""
    for row in rows:
        if row.ok:
            out.write(row.name + "\n")
        else:
            print(f"Error: {row.error}", file=sys.stderr)
    return 0 if all(row.ok for row in rows) else 1
