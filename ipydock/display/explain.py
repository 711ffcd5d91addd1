"""Teaching mode (``%ipydock explain on``): a short plain-language account of what a command did
to layers, namespaces, mounts or networks, written from the models the backend returned.

::

    (command, result, extra models) ──> one explainer per command ──> Explanation (lines)
    "build"/"history"  HistoryRow[] + LayerFiles[]  step 3 added a 65.5kB layer on top of 9df3…
    "files"            LayerFiles[]                 /data/big is hidden by a whiteout, not deleted
    "run"              ContainerDetail              own pid, mount, uts, ipc, net namespaces …
    "diff" / "commit"  FileChange[] / HistoryRow[]  the writable layer; committed as a layer
    images, rm, prune, tag, volumes, networks       names vs images, dangling, what outlives what

Pure functions of the models: no backend, no disk. The magic fetches the extra models it needs
(:mod:`ipydock.magics.explain`) and displays the :class:`Explanation` after the result.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from ipydock.display.text import human_size, short_id
from ipydock.models import (
    ContainerDetail,
    FileChange,
    HistoryRow,
    ImageInfo,
    LayerFiles,
    NetworkInfo,
    PruneResult,
    RemoveEvent,
    VolumeInfo,
)

__all__ = ["Explanation", "explain", "history_lines", "layer_lines"]

_NAMESPACES = "pid, mount, uts, ipc and network"


class Explanation:
    """Display object: a few sentences, drawn as a note under the result (text in a terminal)."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)

    def text(self) -> str:
        return "\n".join(f"ℹ {line}" for line in self.lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        items = "".join(
            "<li>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(line)) + "</li>"
            for line in self.lines
        )
        return (
            "<div class='ipydock-explain' style='border-left:4px solid #4a90d9;"
            "padding:.2em .8em;margin:.4em 0;background:#f3f8fd'>"
            f"<b>What happened</b><ul style='margin:.2em 0'>{items}</ul></div>"
        )


def explain(command: str, result: Any, *, group: str = "", **extra: Any) -> Explanation | None:
    """The account of ``command`` (``build``, ``history``, ``run``, ``rm``, …) of ``group``
    (``image``, ``container``, …) that gave ``result``; ``extra`` holds the models the magic
    fetched (``layers``, ``history``, ``detail``, ``image``, ``filters``, ``request``: the parsed
    run flags when the container is gone). None when there is nothing to teach."""
    explainer = _EXPLAINERS.get(f"{command}:{group}") or _EXPLAINERS.get(command)
    lines = explainer(result, extra) if explainer is not None else []
    return Explanation(lines) if lines else None


def _step(created_by: str) -> str:
    text = " ".join(created_by.split()) or "imported"
    text = text.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ").strip()
    return text if len(text) <= 40 else text[:39] + "…"


def history_lines(rows: Sequence[HistoryRow]) -> list[str]:
    """Steps (oldest first): which added a layer of what size on top of what, which changed
    only the config."""
    lines: list[str] = []
    below = ""
    config_only: list[str] = []
    oldest_first = list(reversed(rows))
    for n, row in enumerate(oldest_first, 1):
        if row.empty_layer:
            config_only.append(f"{n} ({_step(row.created_by).split(' ')[0]})")
        else:
            base = (
                f"on top of {short_id(below)}"
                if below.startswith("sha256:")
                else ("as the first layer" if n == 1 else "on top of the layers below")
            )
            lines.append(
                f"step {n} (`{_step(row.created_by)}`) added a {human_size(row.size)} layer {base}"
            )
        below = row.id
    if config_only:
        lines.append(
            f"step{'s' if len(config_only) > 1 else ''} {', '.join(config_only)} "
            "changed only the image's config (metadata): no layer"
        )
    total = sum(r.size for r in rows)
    layers = sum(1 for r in rows if not r.empty_layer)
    lines.append(
        f"{layers} read-only layer{'s' if layers != 1 else ''}, "
        f"{human_size(total)} in all; stacked, they are the image's root filesystem"
    )
    return lines


def layer_lines(layers: Sequence[LayerFiles]) -> list[str]:
    """Whiteouts: what a later layer hides, and the bytes that still ship below it."""
    lines: list[str] = []
    for layer in layers:
        for f in layer.files:
            if f.change != "D":
                continue
            below = [
                (lower.index, g.size)
                for lower in layers[: layer.index]
                for g in lower.files
                if g.path == f.path and g.change != "D"
            ]
            where = ""
            if below:
                index, size = below[-1]
                where = f": its {human_size(size)} still ship in layer {index}"
            lines.append(
                f"layer {layer.index} (`{_step(layer.created_by)}`) hides /{f.path} "
                f"with a whiteout, it is not deleted{where}"
            )
    wasted = sum(layer.wasted for layer in layers)
    if wasted:
        lines.append(
            f"{human_size(wasted)} in lower layers are hidden by later ones: wasted "
            "bytes every pull still downloads"
        )
    return lines[:8] + ([f"… and {len(lines) - 8} more"] if len(lines) > 8 else [])


def _build(result: Any, extra: dict[str, Any]) -> list[str]:
    rows = extra.get("history") or (result if _rows(result, HistoryRow) else [])
    lines = history_lines(rows) + layer_lines(extra.get("layers") or [])
    image = extra.get("image", "")
    if image.startswith("sha256:"):
        lines.append(
            f"the image ID {short_id(image)} is the sha256 of the image's config; a "
            "tag is only a name for it"
        )
    return lines


def _files(result: Any, extra: dict[str, Any]) -> list[str]:
    layers = result if _rows(result, LayerFiles) else getattr(result, "layers", [])
    lines = layer_lines(layers)
    return lines or [f"{len(layers)} layers, no whiteouts: no layer hides a file of another"]


def _images(result: Any, extra: dict[str, Any]) -> list[str]:
    rows = [r for r in result if isinstance(r, ImageInfo)] if isinstance(result, list) else []
    dangling = [r for r in rows if r.repository == "<none>"]
    if any("dangling=true" in f for f in extra.get("filters", [])):
        if not rows:
            return ["no dangling images: every image has a name or a child that needs it"]
        return [
            f"{len(rows)} dangling image{'s' if len(rows) != 1 else ''}: no tag, and no "
            "child image depends on it; a build that reused a tag left it behind",
            "`%image prune -f` removes them (layers another image shares stay)",
        ]
    ids = {r.id for r in rows}
    lines = [
        f"{len(rows)} name{'s' if len(rows) != 1 else ''} for {len(ids)} image"
        f"{'s' if len(ids) != 1 else ''}: a tag is a name, several may point at one ID"
    ]
    if dangling:
        lines.append(f"{len(dangling)} without a name (<none>): dangling")
    return lines


def _remove(result: Any, extra: dict[str, Any]) -> list[str]:
    events = [e for e in result if isinstance(e, RemoveEvent)] if isinstance(result, list) else []
    untagged = [e.target for e in events if e.action.lower() == "untagged"]
    deleted = [e.target for e in events if e.action.lower() == "deleted"]
    lines = []
    if untagged:
        lines.append(f"removed the name{'s' if len(untagged) > 1 else ''} {', '.join(untagged)}")
    if deleted:
        lines.append(
            f"that was the last name: {len(deleted)} image{'s' if len(deleted) > 1 else ''}"
            " deleted (with its bare build steps); layers no other image uses are "
            "gone from disk"
        )
    elif untagged:
        lines.append("the image itself stays: another tag still names it (untag, not delete)")
    return lines


def _prune(result: Any, extra: dict[str, Any]) -> list[str]:
    if not isinstance(result, PruneResult):
        return []
    gone = sum(1 for e in result.deleted if e.action.lower() == "deleted")
    if not gone:
        return ["nothing to prune: no image without a name and without children"]
    return [
        f"deleted {gone} image{'s' if gone != 1 else ''} no name and no child needed, "
        f"{human_size(result.space_reclaimed)} of layers freed"
    ]


def _tag(result: Any, extra: dict[str, Any]) -> list[str]:
    return ["a new name for the same image ID: nothing was copied, no layer was added"]


def _run(result: Any, extra: dict[str, Any]) -> list[str]:
    """From the container's inspect data, or (``--rm``: gone) from the parsed run flags."""
    detail, request = extra.get("detail"), extra.get("request")
    if isinstance(detail, ContainerDetail):
        who = f"{detail.name.lstrip('/')} ({detail.id[:12]})"
        command = " ".join([detail.path, *detail.args]).strip()
        image, network = detail.image, str(detail.host_config.get("NetworkMode") or "default")
        mounts: list[Any] = list(detail.mounts or [])
    elif request is not None:
        from ipydock.commands.runflags import parse_mounts

        who = f"{request.name or str(getattr(result, 'id', ''))[:12]} (removed, --rm)"
        command = " ".join(request.command) or "its image's command"
        image, network = request.image, str(request.network or "default")
        mounts = parse_mounts(tuple(request.volumes), tuple(request.mount))
    else:
        return []
    userns = " and user" if extra.get("rootless") else ""
    lines = [
        f"container {who} ran `{command}` as an ordinary process of this machine's "
        f"kernel, in its own {_NAMESPACES}{userns} namespaces: no virtual machine, no guest "
        "kernel",
        f"its root: the image {image}'s read-only layers under one writable layer "
        "(overlayfs) that lives and dies with the container",
    ]
    lines.append(_network_sentence(network))
    lines.extend(_mount_sentence(m) for m in mounts)
    return lines


def _network_sentence(mode: str) -> str:
    if mode in ("default", "bridge"):
        return "network: the default bridge (an address of its own, no names)"
    if mode == "host":
        return "network: host: the machine's own network stack, not isolated"
    if mode == "none":
        return "network: none: only a loopback interface"
    return f"network: the user-defined bridge {mode}: containers on it find it by name"


def _mount_sentence(m: Any) -> str:
    get = (
        (lambda k: m.get(k) or m.get(k.lower()) or "")
        if isinstance(m, dict)
        else (lambda k: getattr(m, k.lower(), ""))
    )
    kind, target = get("Type") or "volume", get("Destination") or get("Target")
    source = get("Name") or get("Source")
    ro = (m.get("RW") is False) if isinstance(m, dict) else bool(getattr(m, "readonly", False))
    mode = " read-only" if ro else ""
    if kind == "volume":
        return (
            f"volume {source} is mounted{mode} at {target}: it lives apart from the "
            "container and outlives it"
        )
    if kind == "bind":
        return (
            f"the host directory {source} is bind-mounted{mode} at {target}: the container "
            "sees (and writes) the host's own files"
        )
    return f"a {kind} mount at {target}"


def _diff(result: Any, extra: dict[str, Any]) -> list[str]:
    changes = [c for c in result if isinstance(c, FileChange)] if isinstance(result, list) else []
    count = {k: sum(1 for c in changes if c.kind == k) for k in "ACD"}
    lines = [
        f"the container's writable layer: {count['A']} added, {count['C']} changed, "
        f"{count['D']} deleted; the image's layers below are untouched"
    ]
    if count["D"]:
        lines.append("a deleted file is a whiteout in the writable layer: the image still has it")
    lines.append("`%container commit` turns this layer into a new image layer")
    return lines


def _commit(result: Any, extra: dict[str, Any]) -> list[str]:
    rows = extra.get("history") or []
    lines = [
        f"the writable layer became a read-only layer of the new image {short_id(str(result))}"
    ]
    if rows:
        lines[0] += f" ({human_size(rows[0].size)}, on top of the {len(rows) - 1} steps below)"
    return lines


def _volume(result: Any, extra: dict[str, Any]) -> list[str]:
    if isinstance(result, list) and _rows(result, VolumeInfo):
        return [
            f"{len(result)} volume{'s' if len(result) != 1 else ''}: directories the engine "
            "keeps apart from images and containers; any container can mount them"
        ]
    return [
        "a named volume: a directory kept apart from images and containers; it outlives "
        "the containers that mount it and several may share it"
    ]


def _volume_files(result: Any, extra: dict[str, Any]) -> list[str]:
    return [
        "the files containers wrote in the volume: they stay after `container rm`, until "
        "`volume rm`"
    ]


def _network(result: Any, extra: dict[str, Any]) -> list[str]:
    nets = [n for n in result if isinstance(n, NetworkInfo)] if isinstance(result, list) else []
    lines = []
    for n in nets:
        if n.driver == "bridge":
            members = ", ".join(e.name for e in n.containers) or "no containers"
            where = f" {', '.join(n.subnets)}" if n.subnets else ""
            lines.append(
                f"{n.name}: a Linux bridge{where} ({members}); other bridges cannot reach it"
            )
    return lines or [
        "a network is a private L2 segment: a Linux bridge with its own subnet; "
        "on a user-defined one, containers find each other by name"
    ]


def _top(result: Any, extra: dict[str, Any]) -> list[str]:
    return [
        "these are processes of this machine, seen from the host: the container shares the "
        "host's kernel; only its pid namespace makes its first process pid 1 inside"
    ]


def _rows(result: Any, kind: type) -> bool:
    return isinstance(result, list) and bool(result) and all(isinstance(r, kind) for r in result)


_EXPLAINERS: dict[str, Callable[[Any, dict[str, Any]], list[str]]] = {
    "build": _build,
    "history": _build,
    "files:image": _files,
    "files:volume": _volume_files,
    "ls:image": _images,
    "rm:image": _remove,
    "prune:image": _prune,
    "tag": _tag,
    "run": _run,
    "diff": _diff,
    "commit": _commit,
    "top": _top,
    "create:volume": _volume,
    "ls:volume": _volume,
    "create:network": _network,
    "ls:network": _network,
    "inspect:network": _network,
}
