"""Pull and push progress in a notebook: one row per layer, updated in place.

::

    TransferEvent(id="", text=…)          ──> the header line (Pulling from …, Digest, Status)
    TransferEvent(id, "Downloading", n, N) ──> that layer's row: status and a bar of n/N bytes
    TransferEvent(id, "Pull complete")     ──> the row settles; ✔

The events come from the engine's progress callback (worker threads, one at a time).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ipydock.display.text import human_size
from ipydock.models import TransferEvent

__all__ = ["TransferProgress"]

_DONE = ("Pull complete", "Already exists", "Pushed", "Layer already exists", "Bootstrap complete")


class TransferProgress(widgets.VBox):
    """The live widget; pass :meth:`handle` as the pull's or push's progress callback."""

    def __init__(self, title: str = "") -> None:
        self.header = widgets.HTML(f"<b>{html.escape(title)}</b>")
        self.lines: list[str] = []
        self.rows: dict[str, tuple[widgets.HTML, widgets.IntProgress]] = {}
        super().__init__([self.header])

    def handle(self, event: TransferEvent) -> None:
        if not event.id:
            self.lines.append(event.text)
            self.header.value = "<br>".join(f"<code>{html.escape(x)}</code>" for x in self.lines)
            return
        if event.id not in self.rows:
            label = widgets.HTML()
            bar = widgets.IntProgress(value=0, max=1, layout=widgets.Layout(width="12em"))
            self.rows[event.id] = (label, bar)
            self.children = (*tuple(self.children), widgets.HBox([label, bar]))  # type: ignore[has-type]
        label, bar = self.rows[event.id]
        mark = "✔ " if event.status in _DONE or event.status.startswith("Mounted") else ""
        moved = f" {human_size(event.current)}/{human_size(event.total)}" if event.total else ""
        label.value = (
            f"<code>{event.id}</code> {mark}{html.escape(event.status)}"
            f"<span style='color:#666'>{moved}</span>"
        )
        if event.total:
            bar.max, bar.value = event.total, min(event.current, event.total)
        elif mark:
            bar.max, bar.value = 1, 1
