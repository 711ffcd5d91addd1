"""The registry side of authentication: ``WWW-Authenticate`` challenges. The credentials
themselves are kept where docker's client keeps them: :mod:`ipydock.commands.credentials`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Challenge", "parse_challenge"]

_PARAM_RE = re.compile(r'([a-zA-Z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: ``Basic realm=…`` or ``Bearer realm=…,service=…``."""

    scheme: str  # "basic" | "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {}
    for m in _PARAM_RE.finditer(rest):
        params[m[1].lower()] = m[2].replace('\\"', '"') if m[2] is not None else m[3]
    return Challenge(scheme.lower(), params)
