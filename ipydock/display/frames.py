"""Backend rows as pandas DataFrames, with a rich rendering for the tables people read most.

::

    [ImageInfo, ...]   ──> ImagesFrame   (dangling: count, size, the command that removes them)
    [HistoryRow, ...]  ──> HistoryFrame  (human sizes, a cumulative-size bar per layer)
    [any dataclass]    ──> DataFrame

Columns are the dataclass fields, i.e. the keys of the CLI's ``--format json`` lines; values keep
their types (sizes as integer bytes, times as UTC timestamps). The subclasses only change how a
frame *looks* (``_repr_html_`` in a notebook, ``_repr_pretty_`` in terminal IPython); anything
derived from them (``df.head()``, ``df[mask]``) is a plain DataFrame.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from ipydock.display.text import human_ago, human_size, short_id, table
from ipydock.models import HistoryRow, ImageInfo, to_record

__all__ = ["HistoryFrame", "ImagesFrame", "frame", "register"]


def frame(rows: Sequence[Any], row_type: type | None = None) -> pd.DataFrame:
    """A DataFrame of dataclass ``rows``; ``row_type`` gives the columns when there are none."""
    kind = type(rows[0]) if rows else row_type
    columns = [f.name for f in dataclasses.fields(kind)] if kind is not None else []
    records = [{c: _cell(getattr(r, c)) for c in columns} for r in rows]
    cls = _FRAMES.get(kind, pd.DataFrame) if kind is not None else pd.DataFrame
    df = cls(records, columns=columns)
    for c in columns:
        if records and all(isinstance(r[c], datetime) or r[c] is None for r in records):
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def _cell(value: Any) -> Any:
    """A cell as ``--format json`` has it: nested rows (a network's containers, a container's
    ports) as dicts."""
    if isinstance(value, (list, tuple)):
        return [to_record(v) if dataclasses.is_dataclass(v) else v for v in value]
    return value


def _when(value: Any) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


class _RichFrame(pd.DataFrame):
    """Base of the frames that draw themselves; ``_constructor`` stays ``DataFrame``."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def text(self) -> str:
        raise NotImplementedError


class ImagesFrame(_RichFrame):
    """``image ls`` rows; an all-dangling list also says what they weigh and how to remove them."""

    def dangling(self) -> bool:
        return len(self) > 0 and bool((self["repository"] == "<none>").all())

    def _summary(self) -> str:
        ids = self.drop_duplicates("id")
        size = human_size(int(ids["size"].sum()))
        n = len(ids)
        return (
            f"{n} dangling image{'s' if n != 1 else ''}, up to {size} reclaimable "
            "(layers shared with other images stay); remove them with `%image prune -f`"
        )

    def text(self) -> str:
        cells = [
            [r.repository, r.tag, short_id(r.id), human_ago(_when(r.created)), human_size(r.size)]
            for r in self.itertuples()
        ]
        out = table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], cells)
        return out + ("\n" + self._summary() if self.dangling() else "")

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            f"<td>{html.escape(r.repository)}</td><td>{html.escape(r.tag)}</td>"
            f"<td><code title='{html.escape(r.id)}'>{short_id(r.id)}</code></td>"
            f"<td>{human_ago(_when(r.created))}</td>"
            f"<td style='text-align:right'>{human_size(r.size)}</td></tr>"
            for r in self.itertuples()
        )
        note = ""
        if self.dangling():
            note = f"<p class='ipydock-note'>⚠ {html.escape(self._summary())}</p>"
        elif not len(self):
            note = "<p class='ipydock-note'>No images.</p>"
        return (
            f"<div class='ipydock-images'>{note}<table><thead><tr><th>REPOSITORY</th><th>TAG"
            "</th><th>IMAGE ID</th><th>CREATED</th><th>SIZE</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )


class HistoryFrame(_RichFrame):
    """``image history`` rows, newest first, drawn with a cumulative-size bar per step."""

    def cumulative(self) -> list[int]:
        """Bytes of the image up to and including each row (the oldest row first in the sum)."""
        sizes = [int(s) for s in self["size"]]
        out, total = [], 0
        for s in reversed(sizes):
            total += s
            out.append(total)
        return list(reversed(out))

    def text(self) -> str:
        cells = []
        for r, cum in zip(self.itertuples(), self.cumulative(), strict=True):
            by = r.created_by.replace("\t", " ").replace("\n", " ")
            by = by if len(by) <= 45 else by[:44] + "…"
            cells.append(
                [
                    short_id(r.id),
                    human_ago(_when(r.created)),
                    by,
                    human_size(r.size),
                    human_size(cum),
                    r.comment,
                ]
            )
        out = table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "TOTAL", "COMMENT"], cells)
        built = self.built()
        return f"{built}\n{out}" if built else out

    def built(self) -> str:
        """``Successfully built ID, tagged NAME`` for the history ``%%dockerfile`` returns (its
        ``attrs`` carry ``image_id`` and ``tags``); empty otherwise."""
        image_id = self.attrs.get("image_id", "")
        if not image_id:
            return ""
        tags = self.attrs.get("tags") or []
        return f"Successfully built {image_id}" + (f", tagged {', '.join(tags)}" if tags else "")

    def _repr_html_(self) -> str:
        cums = self.cumulative()
        top = max(cums, default=0) or 1
        rows = []
        for r, cum in zip(self.itertuples(), cums, strict=True):
            ident = "&lt;missing&gt;" if r.id == "<missing>" else f"<code>{short_id(r.id)}</code>"
            by = html.escape(r.created_by)
            short = by if len(r.created_by) <= 60 else html.escape(r.created_by[:59]) + "…"
            width = max(1, round(100 * cum / top)) if cum else 0
            bar = (
                f"<div style='background:#ddd;width:10em;height:.8em'>"
                f"<div style='background:#4a90d9;width:{width}%;height:100%'></div></div>"
            )
            rows.append(
                f"<tr><td>{ident}</td><td>{human_ago(_when(r.created))}</td>"
                f"<td title='{by}'><code>{short}</code></td>"
                f"<td style='text-align:right'>{human_size(r.size)}</td>"
                f"<td>{bar}</td><td style='text-align:right'>{human_size(cum)}</td>"
                f"<td>{html.escape(r.comment)}</td></tr>"
            )
        built = self.built()
        built = f"<p class='ipydock-built'>✔ {html.escape(built)}</p>" if built else ""
        return (
            f"{built}<table class='ipydock-history'><thead><tr><th>IMAGE</th><th>CREATED</th>"
            "<th>CREATED BY</th><th>SIZE</th><th colspan='2'>CUMULATIVE</th><th>COMMENT</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


_FRAMES: dict[type, type[pd.DataFrame]] = {ImageInfo: ImagesFrame, HistoryRow: HistoryFrame}


def register(kind: type, cls: type[pd.DataFrame]) -> None:
    """Draw rows of ``kind`` with ``cls`` (display modules of other tables register theirs)."""
    _FRAMES[kind] = cls
