"""A volume's files: a DataFrame (path, type, size, mode, mtime, link_target) that draws as a
browsable tree, with a preview of small text files.

::

    [FileEntry, ...] ──> VolumeFilesFrame ── text: ls -l like lines
                         attrs["previews"]   html: <details> per directory (open/close), a file
                         {path: text}              with a preview opens to show its first bytes

The previews are read by whoever builds the frame (:func:`ipydock.dock.volume_files`, the
``%volume files`` magic) and handed in through ``attrs``; this module reads nothing.
"""

from __future__ import annotations

import html
from typing import Any

from ipydock.display.frames import _RichFrame, register
from ipydock.display.text import human_size, table
from ipydock.models import FileEntry

__all__ = ["VolumeFilesFrame"]


class VolumeFilesFrame(_RichFrame):
    """``volume files`` rows, pre-order (a directory before what it holds)."""

    @property
    def previews(self) -> dict[str, str]:
        return dict(self.attrs.get("previews") or {})

    def text(self) -> str:
        cells = [
            [r.mode, human_size(r.size), r.mtime.strftime("%Y-%m-%d %H:%M"), _shown_path(r)]
            for r in self.itertuples()
        ]
        return table(["MODE", "SIZE", "MODIFIED", "PATH"], cells)

    def _repr_html_(self) -> str:
        title = html.escape(str(self.attrs.get("volume", "")))
        head = f"<b>volume {title}</b> " if title else ""
        total = human_size(int(self["size"].sum())) if len(self) else "0B"
        summary = f"{head}{len(self)} entries, {total}"
        return f"<div class='ipydock-volume'><p>{summary}</p>{self._tree_html()}</div>"

    def _tree_html(self) -> str:
        """Nested ``<details>``: the rows are pre-order, so a stack of open directories does."""
        previews = self.previews
        out: list[str] = []
        open_dirs: list[str] = []
        for r in self.itertuples():
            if r.path == "/":
                continue
            while open_dirs and not r.path.startswith(open_dirs[-1] + "/"):
                open_dirs.pop()
                out.append("</div></details>")
            name = html.escape(r.path.rsplit("/", 1)[-1])
            meta = (
                f"<span style='color:#666'>{html.escape(r.mode)} {human_size(r.size)} "
                f"{r.mtime.strftime('%Y-%m-%d %H:%M')}</span>"
            )
            if r.type == "dir":
                out.append(
                    f"<details open><summary><b>{name}/</b> {meta}</summary>"
                    "<div style='margin-left:1.2em'>"
                )
                open_dirs.append(r.path)
            elif r.path in previews:
                text = html.escape(previews[r.path])
                out.append(
                    f"<details><summary>{name} {meta}</summary><pre style='margin:0 0 0 1.2em;"
                    f"max-height:12em;overflow:auto;background:#f6f6f6'>{text}</pre></details>"
                )
            else:
                link = f" → {html.escape(r.link_target)}" if r.link_target else ""
                out.append(f"<div>{name}{link} {meta}</div>")
        out.extend("</div></details>" for _ in open_dirs)
        return "".join(out)


register(FileEntry, VolumeFilesFrame)


def _shown_path(r: Any) -> str:
    return f"{r.path} -> {r.link_target}" if r.link_target else str(r.path)
