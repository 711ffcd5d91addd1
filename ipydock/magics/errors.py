"""The notebook's error boundary: the one place that decides how an ipydock error looks in a cell.

::

    ipydock.errors.UsageError   ──> IPython's UsageError     "UsageError: <message>"
    ipydock.errors.BuildError   ──> CellError naming the cell line, the instruction, its last output
    other IPyDockError          ──> CellError                "ipydock: <message>"
    anything else               ──> untouched: a bug, so the traceback stays

IPython shows neither kind with a traceback: ``UsageError`` by its own rule, ``CellError`` through
``_render_traceback_``. Nothing here patches the shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.error import UsageError as IPythonUsageError

from ipydock.errors import IPyDockError, UsageError

__all__ = ["CellError", "cell_errors"]

_RED, _RESET = "\x1b[31m", "\x1b[0m"


class CellError(Exception):
    """An error shown as its message (and a few detail lines), never as a traceback."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def _render_traceback_(self) -> list[str]:
        return [f"{_RED}{self.message}{_RESET}", *self.details]


@contextmanager
def cell_errors(cell_offset: int = 0) -> Iterator[None]:
    """Turn ipydock's errors raised inside into the short forms above.

    ``cell_offset`` is the cell line of Dockerfile line 1 (the ``%%dockerfile`` line comes
    first), so a build error can point at the line the user sees.
    """
    try:
        yield
    except UsageError as exc:
        raise IPythonUsageError(str(exc)) from exc
    except IPyDockError as exc:
        raise _translate(exc, cell_offset) from exc


def _translate(exc: IPyDockError, cell_offset: int) -> CellError:
    line = getattr(exc, "line", 0)
    instruction = getattr(exc, "instruction", "")
    if cell_offset and line:  # a build error: point at the cell line
        first = instruction.splitlines()[0] if instruction else ""
        details = [f"  cell line {line + cell_offset}: {first}".rstrip()]
        details += [f"  | {text}" for text in getattr(exc, "last_lines", [])[-10:]]
        return CellError(f"ipydock: build failed: {exc}".splitlines()[0], tuple(details))
    return CellError(f"ipydock: {exc}")
