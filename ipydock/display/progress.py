"""Build progress as it happens: a widget row per step, or ``docker build``-like lines of text.

::

    BuildEvent step     ──> new row   ⏳ running   2/4  RUN make   …      [▸ output]
    BuildEvent output   ──> appended to that row's collapsible output
    BuildEvent cached   ──> ↻ cached (a ``done`` that follows keeps it so)
    BuildEvent done     ──> ✔ done, with the time the step took and its image ID
    BuildEvent failed   ──> ✘ failed, output opened
    context / warning   ──> a warning line above the rows (a large context, unused build args)
    built / tagged      ──> the header says what was built

The events are :class:`ipydock.models.BuildEvent`, from the builder's progress callback.
"""

from __future__ import annotations

import html
import sys
import time
from typing import IO

import ipywidgets as widgets

from ipydock.display.text import build_line, human_size, short_id
from ipydock.models import BuildEvent

__all__ = ["BuildProgress", "TextBuildProgress"]

_STATUS = {
    "running": ("⏳", "#1565c0"),
    "cached": ("↻", "#6a1b9a"),
    "done": ("✔", "#2e7d32"),
    "failed": ("✘", "#c62828"),
}
_KEEP_LINES = 500  # output lines kept per step (the last ones)


class _Step:
    def __init__(self, number: int, instruction: str) -> None:
        self.number = number
        self.instruction = instruction
        self.status = "running"
        self.started = time.monotonic()
        self.seconds = 0.0
        self.image_id = ""
        self.lines: list[str] = []


class _Tracker:
    """What both renderers share: the steps so far, build-wide notes, updated from events."""

    def __init__(self) -> None:
        self.steps: dict[int, _Step] = {}
        self.total = 0
        self.warnings: list[str] = []
        self.image_id = ""
        self.tags: list[str] = []

    def update(self, event: BuildEvent) -> _Step | None:
        """The step the event concerns (None for build-wide events)."""
        if not event.step:
            self._build_wide(event)
            return None
        self.total = event.total or self.total
        step = self.steps.get(event.step)
        if step is None:
            step = self.steps[event.step] = _Step(event.step, event.instruction)
        if event.kind == "output":
            step.lines.append(event.text.rstrip("\n"))
            del step.lines[:-_KEEP_LINES]
        elif event.kind in ("cached", "done", "failed"):
            if not (event.kind == "done" and step.status == "cached"):
                step.status = event.kind
            step.seconds = event.duration or time.monotonic() - step.started
            step.image_id = event.image_id or step.image_id
            if event.text and event.kind == "failed":
                step.lines.append(event.text)
        return step

    def _build_wide(self, event: BuildEvent) -> None:
        if event.kind in ("context", "warning") and event.text:
            size = f" ({human_size(event.size)})" if event.kind == "context" else ""
            self.warnings.append(event.text + size)
        elif event.kind == "built":
            self.image_id = event.image_id
        elif event.kind == "tagged":
            self.tags.append(event.text)


class BuildProgress(widgets.VBox):
    """The live widget; pass :meth:`handle` as the build's progress callback."""

    def __init__(self, title: str = "") -> None:
        self.tracker = _Tracker()
        self.title = title
        self.header = widgets.HTML(f"<b>Building {html.escape(title)}</b>")
        self.notes = widgets.HTML()
        self.rows: dict[int, tuple[widgets.HTML, widgets.HTML, widgets.Accordion]] = {}
        super().__init__([self.header, self.notes])

    def handle(self, event: BuildEvent) -> None:
        step = self.tracker.update(event)
        if step is None:
            self._build_wide()
            return
        if step.number not in self.rows:
            head = widgets.HTML()
            out = widgets.HTML()
            box = widgets.Accordion(children=[out], titles=("output",), selected_index=None)
            box.layout.display = "none"
            self.rows[step.number] = (head, out, box)
            self.children = (*tuple(self.children), head, box)  # type: ignore[has-type]
        head, out, box = self.rows[step.number]
        icon, colour = _STATUS[step.status]
        total = f"/{self.tracker.total}" if self.tracker.total else ""
        took = f"{step.seconds:.1f}s" if step.status != "running" else "…"
        ident = f" ---&gt; {short_id(step.image_id)}" if step.image_id else ""
        head.value = (
            f"<span style='color:{colour}'>{icon} {step.status}</span> &nbsp;"
            f"<b>{step.number}{total}</b> <code>{html.escape(step.instruction)}</code> "
            f"<span style='color:#666'>{took}{ident}</span>"
        )
        if step.lines:
            box.layout.display = None
            out.value = (
                "<pre style='margin:0;max-height:20em;overflow:auto'>"
                + html.escape("\n".join(step.lines))
                + "</pre>"
            )
        if step.status == "failed":
            box.selected_index = 0 if step.lines else None
            self.header.value = f"<b>Building {html.escape(self.title)}</b> &nbsp; " + (
                f"<span style='color:{colour}'>failed at step {step.number}</span>"
            )

    def _build_wide(self) -> None:
        t = self.tracker
        self.notes.value = "".join(
            f"<div style='color:#b26a00'>⚠ {html.escape(w)}</div>" for w in t.warnings
        )
        if t.image_id:
            tags = f", tagged {', '.join(t.tags)}" if t.tags else ""
            self.header.value = (
                f"<b>Built {html.escape(self.title)}</b> &nbsp; <code title='{t.image_id}'>"
                f"{short_id(t.image_id)}</code>{html.escape(tags)}"
            )


class TextBuildProgress:
    """The same events as ``docker build`` prints them, for terminal IPython."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.tracker = _Tracker()
        self.out = out or sys.stdout

    def handle(self, event: BuildEvent) -> None:
        step = self.tracker.update(event)
        if event.kind == "failed" and step is not None:
            self.out.write(f" ---> failed after {step.seconds:.1f}s\n")
            return
        line = build_line(event)
        if line is not None:
            self.out.write(line + "\n")
