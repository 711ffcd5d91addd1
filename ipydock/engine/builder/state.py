"""The state a build carries from step to step, and the options it was started with.

When: created at each ``FROM`` and handed to every dispatch function, which applies the
instruction to the stage's config in memory (env, labels, workdir, ...) and returns a
:class:`Step`: the created-by text and, for RUN/COPY/ADD/WORKDIR, a function that writes the
layer into a temp dir it is given. Only :mod:`commit` touches the store (cache hit or new image).

::

    BuildOptions --> StageState(image_id, config, layers, args) --dispatch--> Step(cmd,
                          ^                                                       make_layer)
                          '------------------- commit.apply_step(step) <--------'
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ipydock.engine.builder.parser import Directives
from ipydock.engine.store.layers import LayerRecord

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "PROXY_ARGS",
    "BuildOptions",
    "LayerMaker",
    "StageState",
    "Step",
]

DEFAULT_SHELL = ["/bin/sh", "-c"]
#: The PATH a stage without one gets (the runtime's default too: a test pins them together;
#: importing ``runtime.spec`` here would cost every cached build its import time).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Docker's predefined build args: usable without ARG, kept out of history.
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)

#: Writes a step's layer content into the given empty dir; returns False for "no layer".
LayerMaker = Callable[[str], bool]


@dataclass(frozen=True)
class BuildOptions:
    tags: tuple[str, ...] = ()
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    reproducible: bool = False
    #: ``--ulimit``: (name, soft, hard) for every RUN step, as docker's build sets them
    ulimits: tuple[tuple[str, int, int], ...] = ()
    network: str = "default"  # build --network: RUN steps' network unless RUN --network says


@dataclass
class StageState:
    """One stage in progress: the image so far (``image_id`` "" for scratch) and its config."""

    name: str
    index: int
    directives: Directives
    image_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    layers: list[LayerRecord] = field(default_factory=list)
    args: dict[str, str | None] = field(default_factory=dict)
    #: ``--build-arg`` values and the ARGs declared before the first FROM
    given_args: dict[str, str | None] = field(default_factory=dict)
    meta_args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def container(self) -> dict[str, Any]:
        """The image config's ``config`` part (Docker's keys: Env, Cmd, WorkingDir, ...)."""
        return self.config.setdefault("config", {})

    @property
    def shell(self) -> list[str]:
        return list(self.container.get("Shell") or DEFAULT_SHELL)

    @property
    def escape(self) -> str:
        return self.directives.escape

    def env(self) -> dict[str, str]:
        """The image's Env as a dict."""
        out = {}
        for item in self.container.get("Env") or []:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def expansion_env(self) -> dict[str, str]:
        """What ``$VAR`` sees: declared build args, overridden by ENV (as Docker)."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env())
        return out

    def run_args(self) -> dict[str, str]:
        """Build args a RUN gets in its environment and its cache key: declared ones with a
        value that no ENV of the same name hides (proxy args only when declared)."""
        env = self.env()
        return {k: v for k, v in sorted(self.args.items()) if v is not None and k not in env}

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)


@dataclass
class Step:
    """What one instruction does to the image, once dispatch has updated the stage's config.

    ``cmd`` is the ``container_config.Cmd`` Docker records (joined, it is the history's
    ``created_by``; with the parent image it is the cache key); ``make_layer`` (RUN, COPY, ADD,
    WORKDIR) writes the layer's files into an empty dir, called only on a cache miss.
    """

    cmd: list[str]
    make_layer: LayerMaker | None = None

    @property
    def created_by(self) -> str:
        return " ".join(self.cmd)
