"""Builds: the progress events a build reports and what it made."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BuildEvent", "BuildResult"]


@dataclass(frozen=True)
class BuildEvent:
    """One progress event of a build, delivered to the ``progress`` callback as it happens.

    ``kind`` says what happened; the other fields are filled where they apply:

    * ``context``  the context was packed: ``size`` bytes (``warning`` set when it is large)
    * ``step``     step ``step``/``total`` starts: ``instruction`` as written, Dockerfile ``line``
    * ``cached``   that step was a cache hit: ``image_id``
    * ``output``   one line the step's command printed: ``text`` (no newline)
    * ``done``     the step finished: ``image_id`` and ``duration`` (seconds)
    * ``failed``   the step failed: ``text`` says why (the build then raises a ``BuildError``)
    * ``warning``  a warning that concerns no step (unused build args): ``text``
    * ``tagged``   the result got the name ``text``
    * ``built``    the build ended: ``image_id`` of the result

    A notebook renders one row per step and updates it in place on ``cached``/``done``/
    ``failed``; the CLI prints the ``docker build`` lines (``Step 1/5 : ...``, `` ---> id``).
    """

    kind: str  # context | step | cached | output | done | failed | warning | tagged | built
    step: int = 0
    total: int = 0
    instruction: str = ""
    line: int = 0
    image_id: str = ""
    text: str = ""
    duration: float = 0.0
    size: int = 0
    stage: str = ""


@dataclass(frozen=True)
class BuildResult:
    """What a finished build made: the image, its names, and how many steps hit the cache."""

    image_id: str
    tags: list[str]
    steps: int
    cached: int
    untagged: list[str] = field(default_factory=list)  # images that lost a name to this build
