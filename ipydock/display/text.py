"""Plain-text rendering as the docker CLI does it: tables, human sizes, relative times.

::

    rows (dicts) ──> table(columns) ──> "REPOSITORY   TAG   IMAGE ID ..."   (3-space gutters)
    1996800      ──> human_size     ──> "2MB"      (decimal units, 3 significant digits)
    datetime     ──> human_ago      ──> "2 hours ago"
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ipydock.models import BuildEvent, LayerFiles, to_record
from ipydock.units import human_duration

__all__ = [
    "build_line",
    "human_ago",
    "human_duration",
    "human_size",
    "layer_listing",
    "layer_rows",
    "short_id",
    "table",
]

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"]


def human_size(size: int) -> str:
    """Docker's ``units.HumanSize``: decimal units, at most 3 significant digits."""
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    text = f"{value:.3g}"
    if "e" in text:
        text = f"{value:.0f}"
    return f"{text}{_UNITS[unit]}"


def human_ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "N/A"
    now = now or datetime.now(timezone.utc)
    return human_duration((now - when).total_seconds()) + " ago"


def short_id(image_id: str, no_trunc: bool = False) -> str:
    if no_trunc or not image_id.startswith("sha256:"):
        return image_id
    return image_id[7:19]


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, headed by upper-case names."""
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(columns), *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def layer_rows(layers: Sequence[LayerFiles]) -> list[dict[str, Any]]:
    """One flat record per layer entry: ``layer`` (its index) and the entry's fields. These are
    the JSON lines of ``image files --format json`` and the rows of the explorer's DataFrame."""
    return [{"layer": layer.index, **to_record(f)} for layer in layers for f in layer.files]


def layer_listing(layers: Sequence[LayerFiles]) -> str:
    """Per layer a heading (index, size, wasted bytes, build step), then its entries as
    ``A|C|D  MODE  SIZE  PATH`` lines, as ``dive`` lists a layer's changes."""
    lines = []
    for layer in layers:
        wasted = f", {human_size(layer.wasted)} wasted" if layer.wasted else ""
        lines.append(
            f"Layer {layer.index}  {human_size(layer.size)}{wasted}  {layer.created_by or '-'}"
        )
        for f in layer.files:
            link = f" -> {f.link_target}" if f.link_target else ""
            note = f"  ({human_size(f.wasted)} wasted)" if f.wasted else ""
            mode = f.mode or "-" * 10
            lines.append(f"  {f.change}  {mode}  {human_size(f.size):>7}  /{f.path}{link}{note}")
    return "\n".join(lines) + "\n"


def build_line(e: BuildEvent) -> str | None:
    """A build event as the classic ``docker build`` prints it (None: it prints nothing)."""
    if e.kind == "context":
        warn = f"\n[Warning] {e.text}" if e.text else ""
        return f"Sending build context to the engine  {human_size(e.size)}{warn}"
    if e.kind == "step":
        return f"Step {e.step}/{e.total} : {e.instruction}"
    if e.kind == "cached":
        return " ---> Using cache"
    if e.kind == "output":
        return e.text
    if e.kind == "done":
        return f" ---> {short_id(e.image_id)}" if e.image_id else " ---> "
    if e.kind == "warning":
        return f"[Warning] {e.text}"
    if e.kind == "tagged":
        return f"Successfully tagged {e.text}"
    if e.kind == "built":
        return f"Successfully built {short_id(e.image_id)}"
    return None
