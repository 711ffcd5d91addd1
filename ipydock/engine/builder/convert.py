"""Parsed nodes -> typed instructions, grouped into stages.

When: after :mod:`parser`, before anything runs, so that every unknown instruction, unknown flag
or malformed argument is reported (with its line) before the first step is built, as BuildKit's
``instructions/parse.go`` does.

::

    text --parser.parse--> [Node ...] --typed (per node: flags checked, arguments shaped)-->
         [From, Run, Copy, ...] --parse_stages--> Dockerfile(meta_args, stages)
"""

from __future__ import annotations

from ipydock.engine.builder.instructions import (
    Arg,
    Copy,
    Dockerfile,
    ExecForm,
    From,
    Healthcheck,
    Instruction,
    KeyValues,
    OnBuild,
    Run,
    Stage,
    Value,
    Words,
)
from ipydock.engine.builder.parser import Directives, Node, parse
from ipydock.errors import DockerfileError

__all__ = ["parse_dockerfile", "parse_stages", "typed"]

# flag -> takes a value (False: a boolean flag such as --link)
_FLAGS: dict[str, dict[str, bool]] = {
    "FROM": {"platform": True},
    "RUN": {"network": True},
    "COPY": {"from": True, "chown": True, "chmod": True, "link": False},
    "ADD": {"chown": True, "chmod": True, "link": False},
    "HEALTHCHECK": {
        "interval": True,
        "timeout": True,
        "start-period": True,
        "start-interval": True,
        "retries": True,
    },
}
_NETWORKS = ("default", "none", "host")


def parse_dockerfile(text: str) -> Dockerfile:
    directives, nodes = parse(text)
    return parse_stages(directives, nodes)


def parse_stages(directives: Directives, nodes: list[Node]) -> Dockerfile:
    """Group typed instructions into stages; everything before the first FROM must be ARG."""
    meta: list[Arg] = []
    stages: list[Stage] = []
    for node in nodes:
        instr = typed(node, directives.escape)
        if isinstance(instr, From):
            if instr.name and any(s.name == instr.name for s in stages):
                raise DockerfileError(
                    node.line, node.original, f"duplicate stage name {instr.name!r}"
                )
            stages.append(Stage(len(stages), instr.name, instr))
        elif stages:
            stages[-1].instructions.append(instr)
        elif isinstance(instr, Arg):
            meta.append(instr)
        else:
            raise DockerfileError(
                node.line, node.original, "no build stage in current context (start with FROM)"
            )
    if not stages:
        raise DockerfileError(1, "", "no FROM instruction: a Dockerfile must start a stage")
    return Dockerfile(directives, meta, stages)


def typed(node: Node, escape: str = "\\") -> Instruction:
    """The typed instruction for one node; unknown instructions and flags raise here."""
    handler = _TYPES.get(node.cmd)
    if handler is None:
        raise DockerfileError(node.line, node.original, f"unknown instruction: {node.cmd}")
    flags = _flags(node)
    return handler(node, flags)


def _flags(node: Node) -> dict[str, str]:
    allowed = _FLAGS.get(node.cmd, {})
    out: dict[str, str] = {}
    for flag in node.flags:
        name, eq, value = flag.removeprefix("--").partition("=")
        if name not in allowed:
            raise DockerfileError(node.line, node.original, f"unknown flag: --{name}")
        if allowed[name] and not eq:
            raise DockerfileError(node.line, node.original, f"missing a value on flag: --{name}")
        if not allowed[name] and eq and value not in ("true", "false"):
            raise DockerfileError(
                node.line, node.original, f"expecting boolean value for flag {name}, not: {value}"
            )
        out[name] = value if eq else "true"
    return out


def _base(node: Node) -> tuple[str, int, str]:
    return node.cmd, node.line, node.original


def _from(node: Node, flags: dict[str, str]) -> Instruction:
    v = node.value
    if len(v) == 3 and v[1].upper() == "AS":
        name = v[2].lower()
        if not name or not name[0].isalpha() or not all(c.isalnum() or c in "_-." for c in name):
            raise DockerfileError(
                node.line,
                node.original,
                f"invalid name for build stage: {v[2]!r}, "
                "name can't start with a number or contain symbols",
            )
    elif len(v) == 1:
        name = ""
    else:
        raise DockerfileError(
            node.line, node.original, "FROM requires either one or three arguments"
        )
    return From(*_base(node), image=v[0], name=name, platform=flags.get("platform", ""))


def _run(node: Node, flags: dict[str, str]) -> Instruction:
    network = flags.get("network", "default")
    if network not in _NETWORKS:
        raise DockerfileError(
            node.line,
            node.original,
            f"unsupported network mode {network!r} (use default, none or host)",
        )
    if not node.value or (node.json is False and not node.value[0].strip()):
        raise DockerfileError(node.line, node.original, "RUN requires at least one argument")
    return Run(
        *_base(node), command=node.value, json=node.json, network=network, heredocs=node.heredocs
    )


def _copy(node: Node, flags: dict[str, str]) -> Instruction:
    if len(node.value) < 2:
        raise DockerfileError(
            node.line,
            node.original,
            f"{node.cmd} requires at least two arguments, but only one was provided. "
            "Destination could not be determined.",
        )
    return Copy(
        *_base(node),
        sources=node.value[:-1],
        dest=node.value[-1],
        add=node.cmd == "ADD",
        from_=flags.get("from", ""),
        chown=flags.get("chown", ""),
        chmod=flags.get("chmod", ""),
        link=flags.get("link", "false") == "true",
        heredocs=node.heredocs,
    )


def _key_values(node: Node, flags: dict[str, str]) -> Instruction:
    v = node.value
    if not v or len(v) % 2:
        raise DockerfileError(
            node.line, node.original, f"{node.cmd} requires at least one argument"
        )
    pairs = tuple((v[i], v[i + 1]) for i in range(0, len(v), 2))
    for key, _ in pairs:
        if not key:
            raise DockerfileError(node.line, node.original, f"{node.cmd} names must not be empty")
    return KeyValues(*_base(node), pairs=pairs)


def _arg(node: Node, flags: dict[str, str]) -> Instruction:
    if not node.value:
        raise DockerfileError(node.line, node.original, "ARG requires at least one argument")
    pairs: list[tuple[str, str | None]] = []
    for word in node.value:
        key, eq, default = word.partition("=")
        if not key:
            raise DockerfileError(node.line, node.original, "ARG names can not be blank")
        pairs.append((key, default if eq else None))
    return Arg(*_base(node), pairs=tuple(pairs))


def _exec_form(node: Node, flags: dict[str, str]) -> Instruction:
    if node.cmd == "SHELL" and not node.json:
        raise DockerfileError(
            node.line, node.original, "SHELL requires the arguments to be in JSON form"
        )
    if node.cmd == "SHELL" and not node.value:
        raise DockerfileError(node.line, node.original, "SHELL requires at least one argument")
    words = node.value if node.json else tuple(w for w in node.value if w)
    return ExecForm(*_base(node), words=words, json=node.json)


def _words(node: Node, flags: dict[str, str]) -> Instruction:
    words = tuple(w for w in node.value if w.strip())
    if not words:
        raise DockerfileError(
            node.line, node.original, f"{node.cmd} requires at least one argument"
        )
    return Words(*_base(node), words=words)


def _value(node: Node, flags: dict[str, str]) -> Instruction:
    if len(node.value) != 1 or not node.value[0]:
        raise DockerfileError(node.line, node.original, f"{node.cmd} requires exactly one argument")
    return Value(*_base(node), value=node.value[0])


def _healthcheck(node: Node, flags: dict[str, str]) -> Instruction:
    v = node.value
    if not v:
        raise DockerfileError(node.line, node.original, "HEALTHCHECK requires an argument")
    kind = v[0].upper()
    if kind == "NONE":
        if len(v) > 1 or flags:
            raise DockerfileError(node.line, node.original, "HEALTHCHECK NONE takes no arguments")
        test: tuple[str, ...] = ("NONE",)
    elif kind == "CMD" and len(v) > 1:
        test = ("CMD", *v[1:]) if node.json else ("CMD-SHELL", v[1])
    else:
        raise DockerfileError(
            node.line, node.original, f"unknown type {v[0]!r} in HEALTHCHECK (try CMD)"
        )
    return Healthcheck(*_base(node), test=test, options=flags)


def _onbuild(node: Node, flags: dict[str, str]) -> Instruction:
    if node.sub in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(
            node.line, node.original, f"{node.sub} isn't allowed as an ONBUILD trigger"
        )
    expression = node.original.split(None, 1)[1] if " " in node.original.strip() else ""
    if not expression:
        raise DockerfileError(node.line, node.original, "ONBUILD requires at least one argument")
    return OnBuild(*_base(node), expression=expression.strip())


_TYPES = {
    "FROM": _from,
    "RUN": _run,
    "COPY": _copy,
    "ADD": _copy,
    "ENV": _key_values,
    "LABEL": _key_values,
    "ARG": _arg,
    "CMD": _exec_form,
    "ENTRYPOINT": _exec_form,
    "SHELL": _exec_form,
    "EXPOSE": _words,
    "VOLUME": _words,
    "USER": _value,
    "WORKDIR": _value,
    "STOPSIGNAL": _value,
    "MAINTAINER": _value,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
}
