"""Build progress as it happens: a widget row per step, or ``docker build``-like lines of text.

::

    event (step n starts) ──> new row   ⏳ running   RUN make         0.0s   [▸ output]
    event (output line)   ──> appended to that row's collapsible output
    event (cached|done)   ──> ✔ done / ⚡ cached, with the time the step took
    event (failed)        ──> ✘ failed, output opened

The events come from the builder's progress callback. Until ``ipydock.models.BuildEvent`` is
settled, the renderers are written against :class:`BuildEventLike` below (the fields they read);
any object with those attributes works, missing ones default to empty.
"""

from __future__ import annotations

import html
import sys
import time
from typing import IO, Any, Protocol

import ipywidgets as widgets

__all__ = ["BuildEventLike", "BuildProgress", "TextBuildProgress"]

_STATUS = {
    "running": ("⏳", "#1565c0"),
    "cached": ("⚡", "#6a1b9a"),
    "done": ("✔", "#2e7d32"),
    "failed": ("✘", "#c62828"),
}
_KEEP_LINES = 500  # output lines kept per step (the last ones)


class BuildEventLike(Protocol):
    """What the renderers read from a build event."""

    kind: str  # "step" (a step starts) | "output" | "cached" | "done" | "failed"
    step: int  # 1-based step number
    total: int  # number of steps (0 when unknown)
    instruction: str  # the step's one-line form, e.g. "RUN make"
    text: str  # one line of output for "output"; a note (image ID, error) otherwise


def _get(event: Any, name: str, default: Any) -> Any:
    return getattr(event, name, default) or default


class _Step:
    def __init__(self, number: int, instruction: str) -> None:
        self.number = number
        self.instruction = instruction
        self.status = "running"
        self.started = time.monotonic()
        self.seconds = 0.0
        self.lines: list[str] = []


class _Tracker:
    """What both renderers share: the steps so far, updated from events."""

    def __init__(self) -> None:
        self.steps: dict[int, _Step] = {}
        self.total = 0

    def update(self, event: Any) -> _Step | None:
        kind = _get(event, "kind", "")
        number = int(_get(event, "step", 0))
        self.total = int(_get(event, "total", self.total))
        step = self.steps.get(number)
        if step is None:
            step = self.steps[number] = _Step(number, _get(event, "instruction", ""))
        if kind == "output":
            step.lines.append(str(_get(event, "text", "")).rstrip("\n"))
            del step.lines[:-_KEEP_LINES]
        elif kind in ("cached", "done", "failed"):
            step.status = kind
            step.seconds = time.monotonic() - step.started
            note = _get(event, "text", "")
            if note and kind == "failed":
                step.lines.append(str(note))
        return step


class BuildProgress(widgets.VBox):
    """The live widget; pass :meth:`handle` as the build's progress callback."""

    def __init__(self, title: str = "") -> None:
        self.tracker = _Tracker()
        self.header = widgets.HTML(f"<b>Building {html.escape(title)}</b>")
        self.rows: dict[int, tuple[widgets.HTML, widgets.HTML, widgets.Accordion]] = {}
        super().__init__([self.header])

    def handle(self, event: Any) -> None:
        step = self.tracker.update(event)
        if step is None:
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
        head.value = (
            f"<span style='color:{colour}'>{icon} {step.status}</span> &nbsp;"
            f"<b>{step.number}{total}</b> <code>{html.escape(step.instruction)}</code> "
            f"<span style='color:#666'>{took}</span>"
        )
        if step.lines:
            box.layout.display = None
            out.value = (
                "<pre style='margin:0;max-height:20em;overflow:auto'>"
                + html.escape("\n".join(step.lines))
                + "</pre>"
            )
            if step.status == "failed":
                box.selected_index = 0

    def finish(self, message: str) -> None:
        self.header.value += f" &nbsp; {html.escape(message)}"


class TextBuildProgress:
    """The same events as ``docker build`` prints them, for terminal IPython."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.tracker = _Tracker()
        self.out = out or sys.stdout

    def handle(self, event: Any) -> None:
        known = set(self.tracker.steps)
        step = self.tracker.update(event)
        if step is None:
            return
        kind = _get(event, "kind", "")
        if step.number not in known:
            total = f"/{self.tracker.total}" if self.tracker.total else ""
            self.out.write(f"Step {step.number}{total} : {step.instruction}\n")
        if kind == "output":
            self.out.write(step.lines[-1] + "\n")
        elif kind == "cached":
            self.out.write(" ---> Using cache\n")
        elif kind in ("done", "failed"):
            self.out.write(f" ---> {kind} in {step.seconds:.1f}s\n")

    def finish(self, message: str) -> None:
        self.out.write(message + "\n")
