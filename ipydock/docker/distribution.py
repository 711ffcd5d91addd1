"""Pull and push through a Docker engine: its JSON progress stream as ipydock's models.

::

    POST /images/create?fromImage=…  ──{"status","id","progressDetail"}…──> TransferEvent…
    POST /images/NAME/push?tag=…     ──{"status"…, "aux": {"Tag","Digest","Size"}}──> PushResult

The engine reads credentials from ``~/.docker/config.json`` through the SDK, as ``docker`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ipydock.errors import EngineError, ImageNotFound
from ipydock.models import PullResult, PushResult, TransferEvent

__all__ = ["pull", "push", "split_reference"]

Progress = Callable[[TransferEvent], None]


def split_reference(name: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest): ``busybox`` -> ("busybox", "latest", None)."""
    rest, _, digest = name.partition("@")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None if digest else "latest", digest or None


def _events(stream: Iterable[dict[str, Any]], progress: Progress | None) -> list[str]:
    """Forward the engine's events; return the lines without a layer id; raise on an error."""
    lines: list[str] = []
    for ev in stream:
        if ev.get("error"):
            message = str((ev.get("errorDetail") or {}).get("message") or ev["error"])
            if "not found" in message or "does not exist" in message:
                raise ImageNotFound(message)
            raise EngineError(500, message)
        status = str(ev.get("status") or "")
        detail = ev.get("progressDetail") or {}
        layer = str(ev.get("id") or "")
        if layer and status.startswith(("Pulling from", "The push refers")):
            status, layer = f"{layer}: {status}", ""
        if not layer:
            lines.append(status)
        if progress is not None:
            event = TransferEvent(
                layer,
                status if layer else "",
                int(detail.get("current") or 0),
                int(detail.get("total") or 0),
                "" if layer else status,
            )
            progress(event)
    return lines


def pull(api: Any, name: str, platform: str | None, progress: Progress | None) -> PullResult:
    repo, tag, digest = split_reference(name)
    stream = api.pull(repo, tag=digest or tag, stream=True, decode=True, platform=platform)
    lines = _events(stream, progress)
    digest_line = next((x for x in lines if x.startswith("Digest: ")), "")
    status = next((x for x in lines if x.startswith("Status: ")), "").removeprefix("Status: ")
    shown = f"{repo}@{digest}" if digest else f"{repo}:{tag}"
    image_id = api.inspect_image(shown)["Id"]
    return PullResult(image_id, shown, digest_line.removeprefix("Digest: "), status)


def push(api: Any, name: str, progress: Progress | None) -> PushResult:
    repo, tag, _ = split_reference(name)
    aux: dict[str, Any] = {}

    def with_aux(stream: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        for ev in stream:
            if ev.get("aux"):
                aux.update(ev["aux"])
            yield ev

    _events(with_aux(api.push(repo, tag=tag, stream=True, decode=True)), progress)
    if not aux.get("Digest"):
        raise EngineError(500, f"the engine pushed {name} but reported no digest")
    return PushResult(repo, str(aux.get("Tag") or tag), str(aux["Digest"]), int(aux["Size"]))
