"""The layer explorer: pick a layer, see its file tree with A/C/D markers and wasted bytes.

::

    +-- header: N layers, size, wasted, efficiency -----------------------------+
    | [Select: 0  2MB  ADD rootfs.tar.gz /     ] | layer 2: RUN rm /data/big    |
    | [        1  5kB  RUN dd ... (5kB wasted) ] |  C data/                     |
    | [        2  21B  RUN rm /data/big        ] |    D big                     |
    +--------------------------------------------+------------------------------+

Given the :class:`~ipydock.models.LayerFiles` a backend returned; draws, never reads the store.
``LayerListing`` is the same content as text, for terminal IPython.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ipydock.display.text import human_size, layer_listing, layer_rows
from ipydock.models import LayerFile, LayerFiles

__all__ = ["LayerExplorer", "LayerListing", "layer_frame", "tree_html"]

_COLOURS = {"A": "#2e7d32", "C": "#b26a00", "D": "#c62828"}
_OPEN_LIMIT = 40  # directories with more entries than this start collapsed


def layer_frame(layers: Sequence[LayerFiles]) -> pd.DataFrame:
    """Every entry of every layer: ``layer``, then :class:`LayerFile`'s fields."""
    columns = ["layer", "path", "change", "type", "size", "mode", "wasted", "link_target"]
    return pd.DataFrame(layer_rows(layers), columns=columns)


def _summary(layers: Sequence[LayerFiles]) -> tuple[int, int]:
    return sum(layer.size for layer in layers), sum(layer.wasted for layer in layers)


def _label(layer: LayerFiles) -> str:
    wasted = f"  ({human_size(layer.wasted)} wasted)" if layer.wasted else ""
    step = " ".join(layer.created_by.split())
    step = step if len(step) <= 48 else step[:47] + "…"
    return f"{layer.index:>2}  {human_size(layer.size):>7}  {step or '-'}{wasted}"


def tree_html(files: Sequence[LayerFile]) -> str:
    """A layer's entries as nested ``<details>`` (directories) and lines (files)."""
    root: dict[str, Any] = {}
    for f in files:
        node = root
        parts = f.path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {"/": None})
        leaf = node.setdefault(parts[-1], {"/": None})
        leaf["/"] = f
    return "<div class='ipydock-tree' style='font-family:monospace'>" + _branch(root) + "</div>"


def _line(name: str, f: LayerFile | None) -> str:
    if f is None:  # a parent directory the layer did not record itself
        return f"<span style='color:#888'>· {html.escape(name)}/</span>"
    marker = f"<b style='color:{_COLOURS.get(f.change, '#000')}'>{f.change}</b>"
    text = html.escape(name) + ("/" if f.type == "dir" else "")
    if f.change == "D":
        text = f"<s>{text}</s>"
    extra = f" → {html.escape(f.link_target)}" if f.link_target else ""
    size = f" <span style='color:#666'>{human_size(f.size)}</span>" if f.type == "file" else ""
    wasted = (
        f" <span style='color:#c62828'>({human_size(f.wasted)} wasted)</span>" if f.wasted else ""
    )
    return f"{marker} {text}{extra}{size}{wasted}"


def _branch(node: dict[str, Any]) -> str:
    parts = []
    for name in sorted(k for k in node if k != "/"):
        child = node[name]
        kids = [k for k in child if k != "/"]
        line = _line(name, child["/"])
        if kids:
            state = " open" if len(kids) <= _OPEN_LIMIT else ""
            parts.append(
                f"<details{state}><summary>{line} <span style='color:#888'>({len(kids)})</span>"
                f"</summary><div style='margin-left:1.4em'>{_branch(child)}</div></details>"
            )
        else:
            parts.append(f"<div style='margin-left:1.1em'>{line}</div>")
    return "".join(parts)


class LayerExplorer(widgets.VBox):
    """A layer picker and the picked layer's file tree; ``files`` holds every entry as rows."""

    def __init__(self, layers: Sequence[LayerFiles], image: str = "") -> None:
        self.layers = list(layers)
        self.image = image
        self.files = layer_frame(self.layers)
        size, wasted = _summary(self.layers)
        efficiency = 100 * (1 - wasted / size) if size else 100.0
        header = widgets.HTML(
            f"<b>{html.escape(image)}</b> {len(self.layers)} layers, {human_size(size)}, "
            f"<span style='color:#c62828'>{human_size(wasted)} wasted</span>, "
            f"efficiency {efficiency:.1f}% &nbsp; "
            + " ".join(
                f"<b style='color:{c}'>{k}</b> {w}"
                for k, c, w in (
                    ("A", _COLOURS["A"], "added"),
                    ("C", _COLOURS["C"], "changed"),
                    ("D", _COLOURS["D"], "deleted"),
                )
            )
        )
        self.picker = widgets.Select(
            options=[(_label(layer), i) for i, layer in enumerate(self.layers)],
            rows=min(max(len(self.layers), 2), 10),
            layout=widgets.Layout(width="45%"),
        )
        self.tree = widgets.HTML(layout=widgets.Layout(width="55%", max_height="30em"))
        self.tree.layout.overflow = "auto"
        self.picker.observe(lambda change: self.show(change["new"]), names="value")
        super().__init__([header, widgets.HBox([self.picker, self.tree])])
        if self.layers:
            self.show(len(self.layers) - 1)

    def show(self, position: int) -> None:
        """Show the layer at ``position`` in the list (what picking it does), the top one first."""
        layer = self.layers[position]
        self.picker.value = position
        title = html.escape(layer.created_by or "(no build step recorded)")
        self.tree.value = f"<div><b>layer {layer.index}</b> <code>{title}</code></div>" + (
            tree_html(layer.files) if layer.files else "<i>no files</i>"
        )


class LayerListing:
    """The explorer's content as text (terminal IPython): per layer its A/C/D entries."""

    def __init__(self, layers: Sequence[LayerFiles], image: str = "") -> None:
        self.layers = list(layers)
        self.image = image
        self.files = layer_frame(self.layers)

    def text(self) -> str:
        size, wasted = _summary(self.layers)
        head = f"{self.image} {len(self.layers)} layers, {human_size(size)}, "
        return head + f"{human_size(wasted)} wasted\n" + layer_listing(self.layers)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())
