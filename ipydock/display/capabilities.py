"""What this machine can show: the runtime mode (``%ipydock info``) as a table of the things the
teaching notebooks do, each with yes or no and why.

::

    info {"mode": "root" | "rootless" | "proot" | "none", ...} ──> CapabilityFrame
        feature                       here   why
        build COPY/ADD, history, …    yes    needs no kernel feature
        RUN steps and containers      yes    …

A pure function of the ``info`` dict; the notebooks call it in their first cells.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["FEATURES", "CapabilityFrame", "capabilities"]

#: (feature, the modes where it works, why not elsewhere)
FEATURES: list[tuple[str, tuple[str, ...], str]] = [
    (
        "images: import, COPY/ADD builds, history, layers, tags, prune",
        ("root", "rootless", "proot", "none"),
        "",
    ),
    ("volumes and their files", ("root", "rootless", "proot", "none"), ""),
    (
        "RUN steps and containers",
        ("root", "rootless", "proot"),
        "needs user namespaces or PRoot (apt-get install proot)",
    ),
    (
        "a container's own namespaces (pid, mount, uts, ipc, net)",
        ("root", "rootless"),
        "PRoot runs commands without namespaces: they see the machine's processes",
    ),
    ("memory, pids and cpu limits (cgroups)", ("root",), "cgroups need root here"),
    (
        "bridge networks: names, isolation, published ports",
        ("root",),
        "bridges and veths need root (rootless networks come later)",
    ),
    ("--network host and none", ("root", "rootless"), "needs namespaces"),
]


class CapabilityFrame(pd.DataFrame):
    """The table, drawn with ✔ and ✘ in a notebook; ``mode`` in ``attrs``."""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='text-align:left'>{html.escape(r.feature)}</td>"
            f"<td>{'✔' if r.here else '✘'}</td><td style='text-align:left'>"
            f"{html.escape(r.why)}</td></tr>"
            for r in self.itertuples()
        )
        mode = html.escape(str(self.attrs.get("mode", "")))
        reason = html.escape(str(self.attrs.get("reason", "")))
        return (
            f"<p><b>Mode {mode}</b>: {reason}</p><table class='ipydock-capabilities'>"
            "<thead><tr><th>what</th><th>here</th><th>why not</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )


def capabilities(info: Mapping[str, Any]) -> CapabilityFrame:
    """One row per feature: ``feature``, ``here`` (bool), ``why`` (empty when it works)."""
    mode = str(info.get("mode", "none"))
    engine = str(info.get("engine", "bundled"))
    rows = []
    for feature, modes, why in FEATURES:
        here = engine == "docker" or mode in modes
        rows.append({"feature": feature, "here": here, "why": "" if here else why})
    df = CapabilityFrame(rows, columns=["feature", "here", "why"])
    df.attrs.update(mode=mode, reason=info.get("mode_reason", ""))
    return df
