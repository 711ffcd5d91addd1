"""Teaching mode's magic half: fetch the models an account needs, hand them to
:func:`ipydock.display.explain.explain`.

::

    %container run …  ──> result ──> account(backend, spec, args, result)
                                        │ inspect_container / image_layers / history (models)
                                        └──> display.explain.explain(...) ──> Explanation

Only reads: an account never changes anything, and a failure to fetch (a ``--rm`` container is
already gone) gives a shorter account, never an error.
"""

from __future__ import annotations

import argparse
from typing import Any

from ipydock.api import Backend
from ipydock.display.explain import Explanation, explain
from ipydock.errors import IPyDockError
from ipydock.models import BuildResult, RunResult

__all__ = ["account", "build_account"]


def account(backend: Backend, args: argparse.Namespace, result: Any) -> Explanation | None:
    """The account of one ``%image``/``%container``/``%volume``/``%network`` command."""
    spec = args.spec
    extra: dict[str, Any] = {"filters": list(getattr(args, "filter", []) or [])}
    try:
        if spec.name == "history":
            extra["layers"] = backend.image_layers(args.image)
        elif spec.name == "run" and hasattr(result, "id"):
            extra.update(_run_extra(backend, args, str(result.id)))
        elif spec.name == "commit" and isinstance(result, str):
            extra["history"] = backend.history(result)
    except IPyDockError:
        pass
    if spec.name == "run" and isinstance(result, RunResult) and "detail" not in extra:
        return None
    return explain(spec.name, result, group=spec.group, **extra)


def _run_extra(backend: Backend, args: argparse.Namespace, container: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"rootless": backend.info().get("mode") == "rootless"}
    try:
        extra["detail"] = backend.inspect_container(container)
    except IPyDockError:  # --rm: gone already; the request says what it was
        extra["request"] = args
    return extra


def build_account(backend: Backend, result: BuildResult) -> Explanation | None:
    """The account of a ``%%dockerfile`` build: its steps, layers and whiteouts."""
    try:
        rows = backend.history(result.image_id)
        layers = backend.image_layers(result.image_id)
    except IPyDockError:
        return None
    return explain("build", rows, history=rows, layers=layers, image=result.image_id)
