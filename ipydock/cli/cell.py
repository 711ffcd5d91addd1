"""The words of a ``%%dockerfile`` line: ``build``'s flags, the context, ``--lint``.

Here (not in ``magics/``) because ``ipydock notebook export`` reads the same lines outside a
kernel (no IPython import).
"""

from __future__ import annotations

from ipydock.cli.build import BUILD_FLAGS
from ipydock.cli.registry import Parser

__all__ = ["dockerfile_parser"]


def dockerfile_parser() -> Parser:
    """``build``'s own flags; the cell is the Dockerfile, the context a word or ``--context``."""
    parser = Parser(prog="%%dockerfile", description="Build the cell, a Dockerfile.")
    for flags, kw in BUILD_FLAGS:
        parser.add_argument(*flags, **kw)
    parser.add_argument(
        "--context", dest="context_flag", metavar="PATH", help="build context (as the CONTEXT word)"
    )
    parser.add_argument(
        "--lint",
        action="store_true",
        help="do not build: reproducibility advice on the cell, as a table",
    )
    parser.add_argument(
        "context",
        nargs="?",
        metavar="CONTEXT",
        default=None,
        help="a directory (default: the notebook's, .dockerignore honoured), "
        "a tarball or an http(s) URL of one",
    )
    return parser
