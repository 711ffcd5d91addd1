"""The typed instructions, and a Dockerfile as stages of them.

When: made by :mod:`convert` from parsed nodes, read by the builder and the dispatch functions.
Values stay unexpanded here: variables are expanded when the step runs, with the variables of
that point in the build (:mod:`shell`).

::

    Dockerfile(directives, meta_args=[Arg ...],
               stages=[Stage(index, name, From, [Run, Copy, KeyValues, ExecForm, ...])])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipydock.engine.builder.parser import Directives, Heredoc
from ipydock.errors import DockerfileError

__all__ = [
    "Arg",
    "Copy",
    "Dockerfile",
    "ExecForm",
    "From",
    "Healthcheck",
    "Instruction",
    "KeyValues",
    "OnBuild",
    "Run",
    "Stage",
    "Value",
    "Words",
]


@dataclass(frozen=True)
class Instruction:
    """What every instruction has: its kind (``RUN``), first line and text as written."""

    kind: str
    line: int
    text: str

    @property
    def title(self) -> str:
        """The one-line form the progress shows: ``RUN echo hi`` (heredoc bodies cut off)."""
        return self.text.splitlines()[0].strip() if self.text else self.kind


@dataclass(frozen=True)
class From(Instruction):
    image: str = ""
    name: str = ""
    platform: str = ""


@dataclass(frozen=True)
class Run(Instruction):
    """``command``: one shell string (shell form) or the argv (exec form)."""

    command: tuple[str, ...] = ()
    json: bool = False
    network: str = "default"
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Copy(Instruction):
    """COPY or ADD (``add``): sources relative to the context (or stage/image ``from_``)."""

    sources: tuple[str, ...] = ()
    dest: str = ""
    add: bool = False
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class KeyValues(Instruction):
    """ENV and LABEL: ``(key, value)`` pairs, values unexpanded and still quoted."""

    pairs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Arg(Instruction):
    """``ARG NAME[=default]`` (several per line allowed); defaults unexpanded."""

    pairs: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class ExecForm(Instruction):
    """CMD, ENTRYPOINT, SHELL: exec form (``json``) words, or one shell-form string."""

    words: tuple[str, ...] = ()
    json: bool = False


@dataclass(frozen=True)
class Words(Instruction):
    """EXPOSE and VOLUME: a list of words (VOLUME may be JSON)."""

    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Value(Instruction):
    """USER, WORKDIR, STOPSIGNAL, MAINTAINER: one value."""

    value: str = ""


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``test`` as Docker stores it (``["NONE"]``, ``["CMD", ...]``, ``["CMD-SHELL", s]``)."""

    test: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OnBuild(Instruction):
    """``ONBUILD INSTR ...``: ``expression`` is the trigger stored in the image config."""

    expression: str = ""


@dataclass
class Stage:
    index: int
    name: str
    source: From
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    directives: Directives
    meta_args: list[Arg]
    stages: list[Stage]

    def stage(self, target: str) -> Stage:
        """The stage named (or numbered) ``target``; last one when empty."""
        if not target:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == target.lower() or str(stage.index) == target:
                return stage
        raise DockerfileError(0, "", f"failed to reach build target {target} in Dockerfile")
