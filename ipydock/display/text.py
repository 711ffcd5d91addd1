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

from ipydock.models import LayerFiles, to_record
from ipydock.units import human_duration

__all__ = [
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
