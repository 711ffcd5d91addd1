"""What a command's result becomes in a notebook: the one table of ``type -> display object``.

::

    list[LayerFiles]            ──> LayerExplorer widget (LayerListing as text)
    list of dataclass rows      ──> DataFrame (ImagesFrame, HistoryFrame, ContainersFrame,
                                    VolumeFilesFrame draw themselves)
    "inspect" details           ──> dict, or a list of dicts for several names; networks: a
                                    DataFrame (the issue asks for a table of them)
    PruneResult                 ──> PruneView (what went, the space reclaimed)
    ProcessTable (top)          ──> DataFrame with ps's columns
    dict (info)                 ──> InfoDict (a dict that draws as a two-column table)
    anything else               ──> itself (IDs as str, None, report objects)
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from ipydock.display import containers as _containers  # noqa: F401  (their frames register)
from ipydock.display import volumes as _volumes  # noqa: F401
from ipydock.display.frames import frame
from ipydock.display.text import human_size
from ipydock.models import (
    LayerFiles,
    NetworkInfo,
    ProcessTable,
    PruneResult,
    RemoveEvent,
    to_record,
)

__all__ = ["InfoDict", "PruneView", "present"]


def present(
    result: Any,
    *,
    command: str = "",
    row_type: type | None = None,
    rich: bool = True,
    title: str = "",
) -> Any:
    """The object a magic returns for ``result`` (see the module docstring)."""
    if row_type is LayerFiles or (result and isinstance(result, list) and _all(result, LayerFiles)):
        from ipydock.display.layers import LayerExplorer, LayerListing

        return (LayerExplorer if rich else LayerListing)(result, title)
    if command == "inspect" and isinstance(result, list) and row_type is not NetworkInfo:
        records = [to_record(r) if dataclasses.is_dataclass(r) else r for r in result]
        return records[0] if len(records) == 1 else records
    if isinstance(result, list) and (row_type is not None or _all(result, None)):
        return frame(result, row_type)
    if isinstance(result, PruneResult):
        return PruneView(result)
    if isinstance(result, ProcessTable):
        import pandas as pd

        return pd.DataFrame(result.processes, columns=result.titles)
    if isinstance(result, dict):
        return InfoDict(result)
    return result


def _all(items: list[Any], kind: type | None) -> bool:
    if kind is None:
        return bool(items) and all(
            dataclasses.is_dataclass(i) and type(i) is type(items[0]) for i in items
        )
    return all(isinstance(i, kind) for i in items)


class PruneView:
    """What ``image prune`` removed; ``deleted`` and ``space_reclaimed`` as in the result."""

    def __init__(self, result: PruneResult) -> None:
        self.result = result
        self.deleted = frame(result.deleted, RemoveEvent)
        self.space_reclaimed = result.space_reclaimed

    def text(self) -> str:
        lines = [f"{ev.action}: {ev.target}" for ev in self.result.deleted]
        lines.append(f"Total reclaimed space: {human_size(self.space_reclaimed)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        items = "".join(
            f"<li>{html.escape(ev.action)}: <code>{html.escape(ev.target)}</code></li>"
            for ev in self.result.deleted
        )
        body = f"<ul>{items}</ul>" if items else "<p>Nothing to remove.</p>"
        return f"{body}<p><b>Total reclaimed space: {human_size(self.space_reclaimed)}</b></p>"


class InfoDict(dict):  # type: ignore[type-arg]
    """A plain dict (``info["mode"]``) that draws as a two-column table in a notebook."""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k).replace('_', ' '))}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in self.items()
        )
        return f"<table class='ipydock-info'>{rows}</table>"
