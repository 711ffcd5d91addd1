"""Names that say what a process is, in ``ps`` and ``top``: ``ipydock-supervisor 3f2a…``.

Every long-lived ipydock process is a ``python3 -m …`` or a fork of one, so without this ``ps``
shows a dozen identical Python command lines. ``setproctitle`` rewrites the process's argv area
(what ``ps`` reads) and its ``comm`` name; it is optional: without it the names stay as they are.
It is imported with this module (its import pulls in ``logging``, ~8 ms), so that the command
server's and the fork-server helper's preloads cover it and no supervisor pays it at a start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["set_title"]

_setproctitle: Any
try:
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # pragma: no cover - it is a dependency, but names are not essential
    _setproctitle = None


def set_title(title: str) -> None:
    """Show this process as ``title`` (best effort; never fails). A command line's bytes
    that are not UTF-8 (surrogate escapes here) are shown as U+FFFD: setproctitle refuses
    surrogates."""
    if _setproctitle is not None:
        _setproctitle(title.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
