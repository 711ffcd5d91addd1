"""Names that say what a process is, in ``ps`` and ``top``: ``ipydock-supervisor 3f2a…``.

Every long-lived ipydock process is a ``python3 -m …`` or a fork of one, so without this ``ps``
shows a dozen identical Python command lines. ``setproctitle`` rewrites the process's argv area
(what ``ps`` reads) and its ``comm`` name; it is optional: without it the names stay as they are.
"""

from __future__ import annotations

__all__ = ["set_title"]


def set_title(title: str) -> None:
    """Show this process as ``title`` (best effort; never fails)."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - it is a dependency, but names are not essential
        return
    setproctitle.setproctitle(title)
