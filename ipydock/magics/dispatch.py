"""From the words of a line magic to a command's result, through the CLI's own parser.

::

    "%image ls -f dangling=true" ──> build_parser().parse_args(["image", "ls", ...])
                                 ──> Command.call(backend, args)   rows, a detail, an ID, ...

The magics take exactly the CLI's words because they use its parser and its commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from ipydock.api import Backend
from ipydock.cli import build_parser
from ipydock.cli.registry import Command
from ipydock.errors import PartialFailure
from ipydock.models import ActionResult

__all__ = ["group_help", "parse", "row_type", "run"]


def parse(words: list[str]) -> argparse.Namespace | None:
    """The parsed command, or None when it only asked for ``--help`` (already printed)."""
    try:
        return build_parser().parse_args(words)
    except SystemExit:  # -h/--help printed the usage; argparse errors raise UsageError instead
        return None


def run(backend: Backend, args: argparse.Namespace) -> Any:
    """The command's data; a many-names command (``stop a b``) that failed for some names
    raises :class:`~ipydock.errors.PartialFailure` after doing the others, as docker does."""
    spec: Command = args.spec
    result = spec.call(backend, args)
    if isinstance(result, list) and result and isinstance(result[0], ActionResult):
        failed = [(row.name, row.error) for row in result if not row.ok]
        if failed:
            raise PartialFailure([row.name for row in result if row.ok], failed)
    return result


def row_type(spec: Command) -> type | None:
    """``X`` when the command's data half is annotated ``-> list[X]`` (the DataFrame's columns
    then exist even for no rows), also in ``-> list[X] | Other`` (``network ls --graph``)."""
    try:
        hint = typing.get_type_hints(spec.call).get("return")
    except (NameError, TypeError):
        return None
    for option in typing.get_args(hint) if _is_union(hint) else (hint,):
        if typing.get_origin(option) is list:
            (arg,) = typing.get_args(option)
            is_row = isinstance(arg, type) and dataclasses.is_dataclass(arg)
            return arg if is_row else None  # list[str]: no columns
    return None


def _is_union(hint: Any) -> bool:
    import types

    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def group_help(group: str) -> str:
    """The CLI's help for ``ipydock GROUP`` (the magic's docstring, so ``%image?`` shows it)."""
    parser = build_parser()
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        choices = getattr(action, "choices", None) or {}
        if group in choices:
            return str(choices[group].format_help())
    return f"`%{group}` takes the words of `ipydock {group} …`.\n"
