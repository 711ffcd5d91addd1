"""``--change`` lines of ``image import`` (``CMD ["/bin/sh"]``, ``ENV A=1``) applied to a config.

Only the instructions ``docker import --change`` accepts, in their plain forms; variable expansion
and the full Dockerfile grammar belong to the builder. Kernel-free and pure.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from ipydock.errors import UsageError

__all__ = ["apply_changes"]

ALLOWED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """Return a copy of the container ``config`` (Docker keys) with each change applied."""
    out = dict(config)
    for line in changes:
        word, _, rest = line.strip().partition(" ")
        instr, rest = word.upper(), rest.strip()
        if instr not in ALLOWED or not rest:
            raise UsageError(
                f"invalid --change {line!r}: use one of {', '.join(ALLOWED)} followed by its "
                "arguments, e.g. --change 'CMD [\"/bin/sh\"]'"
            )
        _APPLY[instr](out, rest)
    return out


def _command(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if words and "=" not in words[0]:  # legacy "ENV KEY value with spaces"
        return [(words[0], rest.split(None, 1)[1] if len(words) > 1 else "")]
    pairs = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid {what} {w!r}: use KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _env(cfg: dict[str, Any], rest: str) -> None:
    env = [e for e in cfg.get("Env") or []]
    for key, value in _pairs(rest, "ENV"):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    cfg["Env"] = env


def _label(cfg: dict[str, Any], rest: str) -> None:
    cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(_pairs(rest, "LABEL"))}


def _expose(cfg: dict[str, Any], rest: str) -> None:
    ports = dict(cfg.get("ExposedPorts") or {})
    for p in rest.split():
        ports[p if "/" in p else f"{p}/tcp"] = {}
    cfg["ExposedPorts"] = ports


def _volume(cfg: dict[str, Any], rest: str) -> None:
    paths = json.loads(rest) if rest.startswith("[") else rest.split()
    cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{p: {} for p in paths}}


def _set(key: str) -> Any:
    def apply(cfg: dict[str, Any], rest: str) -> None:
        cfg[key] = rest

    return apply


def _onbuild(cfg: dict[str, Any], rest: str) -> None:
    cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), rest]


_APPLY = {
    "CMD": lambda cfg, rest: cfg.__setitem__("Cmd", _command(rest)),
    "ENTRYPOINT": lambda cfg, rest: cfg.__setitem__("Entrypoint", _command(rest)),
    "ENV": _env,
    "EXPOSE": _expose,
    "LABEL": _label,
    "ONBUILD": _onbuild,
    "STOPSIGNAL": _set("StopSignal"),
    "USER": _set("User"),
    "VOLUME": _volume,
    "WORKDIR": _set("WorkingDir"),
}
