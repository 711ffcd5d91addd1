"""docker's security and limit flags of ``run``/``create`` as plain data, for both engines.

::

    --security-opt seccomp=FILE   --> parse_security_opts() --> ["seccomp={…the file's JSON}"]
    --security-opt no-new-privileges[:true|false], seccomp=unconfined, apparmor=…, label=…
    SecurityOpt (a container's)   --> security_settings()   --> (no_new_privs, seccomp)
    --ulimit nofile=1024:2048     --> parse_ulimit()        --> {"Name", "Soft", "Hard"}
    --userns host                 --> check_userns()        --> "host" | ""

The first runs client-side, where the docker CLI reads a profile file; the second is the
daemon's reading, done by the bundled engine (the docker engine does it itself). Pure
functions (a profile file is read, nothing else); errors are
:class:`~ipydock.errors.UsageError` with docker's words.
"""

from __future__ import annotations

import os
from typing import Any

from ipydock.errors import UsageError

__all__ = ["check_userns", "parse_security_opts", "parse_ulimit", "security_settings"]


def parse_security_opts(items: tuple[str, ...] | list[str]) -> list[str]:
    """``--security-opt`` values as docker's client sends them: ``seccomp=FILE`` becomes
    ``seccomp=`` + the file's JSON (compacted; a relative path is read from here; a value that
    is JSON already, as the Docker API carries it, is kept), the rest
    as given (``no-new-privileges[:true|false]``, ``seccomp=unconfined``, ``apparmor=…``,
    ``label=…``); the engine reads them (:func:`security_settings`)."""
    import json

    out = []
    for opt in items:
        key, eq, value = opt.partition("=")
        if not eq and opt != "no-new-privileges":
            if ":" not in opt:
                raise UsageError(f"invalid --security-opt: {opt!r} (e.g. no-new-privileges, "
                                 "seccomp=unconfined, seccomp=profile.json)")  # fmt: skip
            key, _, value = opt.partition(":")
        if key == "seccomp" and value != "unconfined":
            try:
                if value.lstrip().startswith("{"):  # already the JSON (docker's API form)
                    data = json.loads(value)
                else:
                    with open(os.path.expanduser(value), "rb") as f:
                        data = json.loads(f.read())
            except OSError as exc:
                raise UsageError(f"opening seccomp profile ({value}) failed: {exc.strerror}"
                                 ) from exc  # fmt: skip
            except ValueError as exc:
                raise UsageError(f"compacting json for seccomp profile ({value}) failed: {exc}"
                                 ) from exc  # fmt: skip
            opt = "seccomp=" + json.dumps(data, separators=(",", ":"))
        out.append(opt)
    return out


def security_settings(opts: list[str] | tuple[str, ...]) -> tuple[bool | None, str]:
    """``(no_new_privileges, seccomp)`` from a container's ``SecurityOpt`` as docker's daemon
    reads it: no_new_privileges ``None`` when not given; seccomp ``""`` (the default
    profile), ``"unconfined"`` or a profile's JSON. ``apparmor=`` and ``label=`` are taken
    and have no effect (ipydock applies no AppArmor or SELinux profile, as docker on a host
    without them)."""
    nnp: bool | None = None
    seccomp = ""
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            continue
        key, sep, value = opt.partition("=") if "=" in opt else opt.partition(":")
        if not sep:
            raise UsageError(f"invalid --security-opt 1: {opt!r}")
        if key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges":
            flag = _BOOLS.get(value)
            if flag is None:
                raise UsageError(f"invalid --security-opt 2: {opt!r} (no-new-privileges takes "
                                 "true or false)")  # fmt: skip
            nnp = flag
        elif key not in ("apparmor", "label"):
            raise UsageError(f"invalid --security-opt 2: {opt!r} (use no-new-privileges, "
                             "seccomp=…, apparmor=… or label=…)")  # fmt: skip
    return nnp, seccomp


#: Go's strconv.ParseBool, which docker's daemon uses.
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}
_ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                 "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")  # fmt: skip


def parse_ulimit(text: str) -> dict[str, Any]:
    """``--ulimit NAME=SOFT[:HARD]`` -> docker's ``{"Name", "Soft", "Hard"}`` (HARD defaults
    to SOFT; -1 is unlimited), with docker's checks and words."""
    name, eq, values = text.partition("=")
    if not eq:
        raise UsageError(f"invalid ulimit argument: {text} (use NAME=SOFT[:HARD], e.g. "
                         "nofile=1024:2048)")  # fmt: skip
    if name not in _ULIMIT_NAMES:
        raise UsageError(f"invalid ulimit type: {name} (one of {', '.join(_ULIMIT_NAMES)})")
    parts = values.split(":")
    if len(parts) > 2:
        raise UsageError(f"too many limit value arguments - {values}, can only have up to two, "
                         "`soft[:hard]`")  # fmt: skip
    try:
        soft, hard = int(parts[0]), int(parts[-1])
    except ValueError as exc:
        raise UsageError(f"invalid ulimit value in {text!r}: give whole numbers") from exc
    if hard != -1 and soft > hard:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: "
                         f"{soft} > {hard}")  # fmt: skip
    return {"Name": name, "Soft": soft, "Hard": hard}


def check_userns(mode: str | None) -> str:
    """``--userns``: docker takes ``host`` (or nothing) here; anything else is refused."""
    if mode not in (None, "", "host"):
        raise UsageError(f"--userns: invalid USER mode {mode!r} (docker takes only 'host')")
    return mode or ""
