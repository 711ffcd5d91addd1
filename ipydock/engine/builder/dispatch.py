"""One function per metadata instruction: ENV, LABEL, ARG, CMD, ENTRYPOINT, SHELL, EXPOSE,
VOLUME, USER, STOPSIGNAL, MAINTAINER, HEALTHCHECK, ONBUILD.

When: the builder calls :func:`dispatch` for each instruction; RUN, COPY/ADD and WORKDIR live
in :mod:`run` and :mod:`copy` because they make layers. Each function expands its arguments
with the variables of this point of the build and returns a :class:`Step` whose ``cmd`` is the
classic builder's ``#(nop)`` text (its history ``created_by`` and cache key).

::

    ENV A=$B  --expand--> Step(cmd=["/bin/sh", "-c", "#(nop) ", "ENV A=x"], mutate=set Env)
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from typing import Any

from ipydock.engine.builder import shell
from ipydock.engine.builder.instructions import (
    Arg,
    ExecForm,
    Healthcheck,
    Instruction,
    KeyValues,
    OnBuild,
    Value,
    Words,
)
from ipydock.engine.builder.state import StageState, Step
from ipydock.errors import DockerfileError

__all__ = ["dispatch", "expand", "expand_words", "nop"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9


def expand(state: StageState, instr: Instruction, word: str) -> str:
    try:
        return shell.expand(word, state.expansion_env(), state.escape)
    except shell.ExpansionError as exc:
        raise DockerfileError(instr.line, instr.text, str(exc)) from None


def expand_words(state: StageState, instr: Instruction, word: str) -> list[str]:
    try:
        return shell.words(word, state.expansion_env(), state.escape)
    except shell.ExpansionError as exc:
        raise DockerfileError(instr.line, instr.text, str(exc)) from None


def expand_all(state: StageState, instr: Words) -> list[str]:
    """Every word of a Words instruction (EXPOSE, VOLUME), expanded and split."""
    return [w for word in instr.words for w in expand_words(state, instr, word)]


def nop(state: StageState, comment: str) -> list[str]:
    """The classic builder's Cmd for a metadata step: ``shell + ["#(nop) ", comment]``."""
    return [*state.shell, "#(nop) ", comment]


def dispatch(state: StageState, instr: Instruction) -> Step:
    handler = _HANDLERS.get(instr.kind)
    if handler is None:  # the builder routes the others; reaching here is a bug
        raise DockerfileError(instr.line, instr.text, f"{instr.kind} is not a metadata instruction")
    return handler(state, instr)


def _env(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, KeyValues)
    pairs = [(expand(state, instr, k), expand(state, instr, v)) for k, v in instr.pairs]

    def mutate(cfg: dict[str, Any]) -> None:
        env = list(cfg.get("Env") or [])
        for key, value in pairs:  # replaced in place, as Docker does
            keys = [e.partition("=")[0] for e in env]
            if key in keys:
                env[keys.index(key)] = f"{key}={value}"
            else:
                env.append(f"{key}={value}")
        cfg["Env"] = env

    mutate(state.container)  # later instructions of this step's key see the new env
    return Step(nop(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs)))


def _label(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, KeyValues)
    pairs = [(expand(state, instr, k), expand(state, instr, v)) for k, v in instr.pairs]
    labels = dict(state.container.get("Labels") or {})
    labels.update(pairs)
    state.container["Labels"] = labels
    return Step(nop(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)))


def _arg(state: StageState, instr: Instruction) -> Step:
    """Declares build args: ``--build-arg`` beats the default; an ARG without default in a
    stage takes the value of the same ARG before the first FROM."""
    assert isinstance(instr, Arg)
    given, meta = state.given_args, state.meta_args
    words = []
    for key, default in instr.pairs:
        expanded = expand(state, instr, default) if default is not None else None
        value = expanded if default is not None else meta.get(key)
        if key in given and given[key] is not None:
            value = given[key]
        state.args[key] = value
        words.append(key if expanded is None else f"{key}={expanded}")
    return Step(nop(state, "ARG " + " ".join(words)))


def _exec_form(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, ExecForm)
    if instr.kind == "SHELL":
        words = list(instr.words)
        state.container["Shell"] = words
        return Step(nop(state, f"SHELL [{' '.join(words)}]"))
    words = list(instr.words) if instr.json else [*state.shell, " ".join(instr.words)]
    if instr.kind == "CMD":
        state.container["Cmd"] = words
        state.cmd_set = True
    else:
        state.container["Entrypoint"] = words
        if not state.cmd_set:
            state.container["Cmd"] = None
    return Step(nop(state, f"{instr.kind} {_go_quote(words)}"))


def _expose(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, Words)
    ports = expand_all(state, instr)
    exposed = dict(state.container.get("ExposedPorts") or {})
    for port in ports:
        for key in _port_keys(instr, port):
            exposed[key] = {}
    state.container["ExposedPorts"] = exposed
    return Step(nop(state, "EXPOSE " + " ".join(sorted(ports))))


def _port_keys(instr: Instruction, text: str) -> list[str]:
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = port.partition("-")
    if not low.isdigit() or (high and not high.isdigit()) or proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(instr.line, instr.text, f"invalid containerPort: {text}")
    return [f"{p}/{proto}" for p in range(int(low), int(high or low) + 1)]


def _volume(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, Words)
    paths = expand_all(state, instr)
    volumes = dict(state.container.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise DockerfileError(
                instr.line, instr.text, "VOLUME specified can not be an empty string"
            )
        volumes[path] = {}
    state.container["Volumes"] = volumes
    return Step(nop(state, f"VOLUME [{' '.join(paths)}]"))


def _value(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, Value)
    value = expand(state, instr, instr.value)
    if instr.kind == "USER":
        state.container["User"] = value
    elif instr.kind == "STOPSIGNAL":
        _check_signal(instr, value)
        state.container["StopSignal"] = value
    elif instr.kind == "MAINTAINER":
        state.config["author"] = value
    return Step(nop(state, f"{instr.kind} {value}"))


def _check_signal(instr: Instruction, value: str) -> None:
    name = value.upper().removeprefix("SIG")
    if value.isdigit() and 0 < int(value) < 65:
        return
    if not hasattr(signal, "SIG" + name):
        raise DockerfileError(instr.line, instr.text, f"Invalid signal: {value}")


def _healthcheck(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, Healthcheck)
    check: dict[str, Any] = {"Test": list(instr.test)}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout")):
        if flag in instr.options:
            check[key] = _duration(instr, instr.options[flag])
    for flag, key in (("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in instr.options:
            check[key] = _duration(instr, instr.options[flag])
    if "retries" in instr.options:
        retries = instr.options["retries"]
        if not retries.isdigit():
            raise DockerfileError(instr.line, instr.text, f"--retries must be a number: {retries}")
        check["Retries"] = int(retries)
    check = {k: v for k, v in check.items() if v or k == "Test"}
    state.container["Healthcheck"] = check
    return Step(nop(state, "HEALTHCHECK " + _go_health(check)))


def _duration(instr: Instruction, text: str) -> int:
    """Go's duration syntax (``1m30s``, ``500ms``) in nanoseconds."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if text != "0" and (pos != len(text) or not text):
        raise DockerfileError(
            instr.line, instr.text, f"invalid duration {text!r} (e.g. 30s, 1m30s)"
        )
    return int(total)


def _onbuild(state: StageState, instr: Instruction) -> Step:
    assert isinstance(instr, OnBuild)
    triggers = list(state.container.get("OnBuild") or [])
    triggers.append(instr.expression)
    state.container["OnBuild"] = triggers
    return Step(nop(state, f"ONBUILD {instr.expression}"))


def _go_health(check: dict[str, Any]) -> str:
    """Go's ``%q`` of Docker 20.10's ``*HealthConfig``, as its history shows it:
    ``&{["CMD-SHELL" "true"] "30s" "5s" "0s" '\\x03'}``."""
    durations = " ".join(
        f'"{_go_duration(check.get(key, 0))}"' for key in ("Interval", "Timeout", "StartPeriod")
    )
    retries = check.get("Retries", 0)
    rune = (
        f"'{chr(retries)}'"
        if 0x20 <= retries < 0x7F and chr(retries) not in "'\\"
        else (f"'\\x{retries:02x}'")
    )
    return f"&{{{_go_quote(check['Test'])} {durations} {rune}}}"


def _go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``0s``, ``500ms``, ``1m30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return f"{ns / size:g}{unit}"
    seconds = ns / 10**9
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return text


def _go_quote(words: list[str]) -> str:
    """Go's ``%q`` of a []string, as Docker prints CMD/ENTRYPOINT in history: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(w, ensure_ascii=False) for w in words) + "]"


_HANDLERS: dict[str, Callable[[StageState, Instruction], Step]] = {
    "ENV": _env,
    "LABEL": _label,
    "ARG": _arg,
    "CMD": _exec_form,
    "ENTRYPOINT": _exec_form,
    "SHELL": _exec_form,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "USER": _value,
    "STOPSIGNAL": _value,
    "MAINTAINER": _value,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
}
