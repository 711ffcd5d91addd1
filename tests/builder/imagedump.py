"""A stable text dump of a built image, for golden files and side-by-side checks.

::

    history                                  one line per step, oldest first
      0 layer 1984230  <base>
      3 empty 0        /bin/sh -c #(nop)  ENV A=1
      4 layer 8        /bin/sh -c #(nop) COPY file:<hash> in /app/
    config                                   Docker keys that a Dockerfile sets
      Env: ["PATH=...", "A=1"]
    layer 1                                  entries of each layer after the base
      d 0755 0:0       app/
      f 0644 0:0 6     app/a.txt
      w                etc/.wh.group

COPY/ADD content hashes differ between engines (Docker's tarsum vs ours), so they print as
``<hash>``; mtimes are left out (they depend on the checkout).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable
from typing import Any

CONFIG_KEYS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
)
_HASH = re.compile(r"(file|dir|multi):[0-9a-f]{64}\S*")


def normalise_created_by(text: str) -> str:
    return _HASH.sub(r"\1:<hash>", text)


def dump(history: list[dict[str, Any]], sizes: list[int], config: dict[str, Any],
         layers: Iterable[tarfile.TarFile]) -> str:  # fmt: skip
    """``history`` oldest first with ``sizes`` (bytes per step); ``layers`` after the base."""
    out = ["history"]
    for i, (h, size) in enumerate(zip(history, sizes, strict=True)):
        kind = "empty" if h.get("empty_layer") else "layer"
        by = normalise_created_by(h.get("created_by", "")).replace("\n", "\\n") or "<base>"
        out.append(f"  {i} {kind} {size:<8} {by}")
    out.append("config")
    for key in CONFIG_KEYS:
        value = config.get(key)
        if value:
            out.append(f"  {key}: {json.dumps(value, sort_keys=True)}")
    for n, tar in enumerate(layers, 1):
        out.append(f"layer {n}")
        out += [f"  {entry}" for entry in layer_entries(tar)]
    return "\n".join(out) + "\n"


def layer_entries(tar: tarfile.TarFile) -> list[str]:
    rows = []
    for m in tar.getmembers():
        name = m.name.rstrip("/")
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".wh."):
            rows.append(f"w                  {name}")
            continue
        kind = "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "f"
        size = str(m.size) if m.isreg() else (m.linkname if m.issym() or m.islnk() else "")
        rows.append(f"{kind} {m.mode & 0o7777:04o} {m.uid}:{m.gid:<5} {size:<6} {name}")
    return sorted(rows, key=lambda r: r.rsplit(" ", 1)[-1])


def dump_ours(store: Any, backend: Any, image: str) -> str:
    rec = store.resolve(image)
    config = store.config(rec)
    rows = list(reversed(backend.history(image)))
    chain = iter(store.layer_chain(rec))
    tars = []
    for h in config["history"]:  # the imported base (no created_by) is not dumped
        if h.get("empty_layer"):
            continue
        layer = next(chain)
        if h.get("created_by"):
            tars.append(tarfile.open(store.blobs.path(layer.diff_id)))  # noqa: SIM115
    try:
        return dump(config["history"], [r.size for r in rows], config["config"], tars)
    finally:
        for t in tars:
            t.close()
