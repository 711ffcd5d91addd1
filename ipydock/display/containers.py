"""Containers in a notebook: the ``container ls`` table, a list widget with buttons, streamed logs.

::

    [ContainerInfo, ...]          ──> ContainersFrame   (a DataFrame; status in colour)
    ContainersFrame + actions     ──> ContainerList     (a row per container: stop / remove)
    Iterator[LogEntry]            ──> stream_logs       (lines into the cell as they come)

Display code never calls an engine: the list widget is handed ``actions`` (callables taking a
container ID) and a ``refresh`` callable that returns the rows again; whoever builds it binds them.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

import ipywidgets as widgets
import pandas as pd

from ipydock.display.frames import _RichFrame, _when, register
from ipydock.display.text import human_ago, table
from ipydock.models import ContainerInfo, LogEntry

__all__ = ["ContainerList", "ContainersFrame", "LogText", "stream_logs"]

_COLOURS = {"running": "#2e7d32", "exited": "#666", "created": "#1565c0", "paused": "#b26a00"}


def _status(r: Any) -> str:
    return str(r.status_text or r.status)


class ContainersFrame(_RichFrame):
    """``container ls`` rows (the CLI's JSON keys as columns), drawn as ``docker ps`` does.

    ``%container ls`` in a notebook binds a :class:`ContainerList` to the frame it returns
    (:meth:`with_buttons`): the frame then draws as that widget, with Stop and Remove buttons,
    and is still the DataFrame (``df = %container ls``). Frames derived from it are tables.
    """

    def with_buttons(
        self, actions: Mapping[str, Callable[[str], Any]], refresh: Callable[[], pd.DataFrame]
    ) -> ContainersFrame:
        # a plain attribute, not pandas metadata: it must not follow the frame into copies
        object.__setattr__(self, "_ipydock_list", lambda: ContainerList(self, actions, refresh))
        return self

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        widget = self.__dict__.get("_ipydock_list")
        if widget is None:
            return None  # the HTML table and the text below
        return widget()._repr_mimebundle_(include=include, exclude=exclude)

    def text(self) -> str:
        cells = [
            [r.id[:12], r.image, r.command, human_ago(_when(r.created)), _status(r), r.name]
            for r in self.itertuples()
        ]
        return table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], cells)

    def _repr_html_(self) -> str:
        if not len(self):
            return "<p class='ipydock-note'>No containers.</p>"
        rows = "".join(
            f"<tr><td><code title='{r.id}'>{r.id[:12]}</code></td>"
            f"<td>{html.escape(r.image)}</td><td><code>{html.escape(r.command)}</code></td>"
            f"<td>{human_ago(_when(r.created))}</td>"
            f"<td style='color:{_COLOURS.get(r.status, '#000')}'>{html.escape(_status(r))}</td>"
            f"<td>{html.escape(r.name)}</td></tr>"
            for r in self.itertuples()
        )
        return (
            "<table class='ipydock-containers'><thead><tr><th>CONTAINER ID</th><th>IMAGE</th>"
            "<th>COMMAND</th><th>CREATED</th><th>STATUS</th><th>NAMES</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


register(ContainerInfo, ContainersFrame)


class ContainerList(widgets.VBox):
    """A row per container with Stop and Remove buttons; a message line says what happened.

    ``actions`` maps ``"stop"``/``"remove"`` to callables taking a container ID; ``refresh``
    returns the rows to show next (a :class:`ContainersFrame`). Errors of an action show in the
    message line (their text), not as a traceback.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        actions: Mapping[str, Callable[[str], Any]],
        refresh: Callable[[], pd.DataFrame],
    ) -> None:
        self.actions, self._refresh = actions, refresh
        self.message = widgets.HTML()
        self.reload = widgets.Button(description="Refresh", icon="refresh")
        self.reload.on_click(lambda _: self.refresh())
        self.buttons: dict[str, dict[str, widgets.Button]] = {}
        super().__init__()
        self.show(frame)

    def refresh(self) -> None:
        self.show(self._refresh())

    def show(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.buttons = {}
        rows = [self._row(r) for r in frame.itertuples()]
        if not rows:
            rows = [widgets.HTML("<i>No containers.</i>")]
        self.children = (self.reload, *rows, self.message)

    def _row(self, r: Any) -> widgets.HBox:
        colour = _COLOURS.get(r.status, "#000")
        label = widgets.HTML(
            f"<code>{r.id[:12]}</code> &nbsp;<b>{html.escape(r.name)}</b> &nbsp;"
            f"{html.escape(r.image)} &nbsp;<span style='color:{colour}'>"
            f"{html.escape(_status(r))}</span>",
            layout=widgets.Layout(width="36em"),
        )
        stop = widgets.Button(description="Stop", icon="stop", disabled=r.status != "running")
        remove = widgets.Button(description="Remove", icon="trash", button_style="danger",
                                disabled=r.status == "running")  # fmt: skip
        stop.on_click(lambda _, cid=r.id: self.act("stop", cid))
        remove.on_click(lambda _, cid=r.id: self.act("remove", cid))
        self.buttons[r.id] = {"stop": stop, "remove": remove}
        return widgets.HBox([label, stop, remove])

    def act(self, action: str, container: str) -> None:
        """What a button does: the action, then the list again (or the error's text)."""
        try:
            self.actions[action](container)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the list stays usable
            self.message.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"
            return
        self.refresh()
        self.message.value = f"{action}: <code>{container[:12]}</code>"


class LogText(str):
    """``container logs`` without ``-f``: the lines, shown as they were printed."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def stream_logs(
    entries: Iterable[LogEntry],
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> None:
    """Write each line as it comes (stderr lines to ``err``) until the entries end or the user
    interrupts (Kernel ▸ Interrupt, Ctrl-C), which just stops following."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        for entry in entries:
            target = err if entry.stream == "stderr" else out
            target.write(entry.text)
            target.flush()
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()
