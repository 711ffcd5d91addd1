"""``ipydock notebook export NB.ipynb [-o DIR]``: a notebook's ``%%dockerfile`` cells as
Dockerfiles, a build script and a ``binder/`` folder, so the same images build elsewhere.

::

    NB.ipynb ──> code cells starting with %%dockerfile ──> flags (-t, --build-arg, --target,
                 the context) + the cell's Dockerfile
             ──> DIR/NAME.Dockerfile …, DIR/build.sh (docker build … in notebook order),
                 DIR/binder/{requirements.txt, apt.txt, postBuild}

A notebook is JSON: read with the standard library, no Jupyter import. The context of a cell is
the notebook's directory unless the cell names one, as when the notebook ran. Flags that hold
``{python}`` expressions cannot be known outside the kernel: such a cell is exported with a
note in ``build.sh`` and listed in :attr:`Exported.unresolved`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from ipydock.errors import UsageError

__all__ = ["Exported", "ExportedImage", "binder_files", "dockerfile_cells", "export"]


@dataclass(frozen=True)
class ExportedImage:
    """One ``%%dockerfile`` cell: its place, its tags and where its Dockerfile went."""

    cell: int  # the cell's number in the notebook, from 1 (all cells, as Jupyter counts them)
    tags: list[str]
    dockerfile: str  # path written
    context: str  # relative to DIR (as build.sh uses it), or a URL
    build_args: list[str] = field(default_factory=list)
    target: str = ""


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote; prints as the list of files (the CLI's output)."""

    directory: str
    images: list[ExportedImage]
    files: list[str]
    unresolved: list[int] = field(default_factory=list)  # cells whose line had {expressions}

    def __repr__(self) -> str:
        lines = [os.path.relpath(f, self.directory) for f in self.files]
        notes = [
            f"cell {n}: fill in its {{python}} expressions in build.sh" for n in self.unresolved
        ]
        return "\n".join([f"{self.directory}/", *(f"  {line}" for line in lines), *notes])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def dockerfile_cells(notebook: str) -> list[tuple[int, str, str]]:
    """``(cell number, magic line, Dockerfile)`` of each ``%%dockerfile`` cell, in order."""
    try:
        with open(notebook, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {notebook} as a notebook: {exc}") from exc
    found = []
    for n, cell in enumerate(nb.get("cells", []), 1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        first, _, body = text.partition("\n")
        if first.startswith("%%dockerfile") and not re.search(r"(^|\s)--lint\b", first):
            found.append((n, first[len("%%dockerfile") :].strip(), body))
    return found


def export(notebook: str, out: str | None = None) -> Exported:
    """Write the Dockerfiles, ``build.sh`` and ``binder/`` under ``out`` (default: the notebook's
    path without ``.ipynb`` + ``-export``). Every cell's line is read before anything is
    written, so a bad line leaves nothing behind."""
    from ipydock.cli.cell import dockerfile_parser

    cells = dockerfile_cells(notebook)
    if not cells:
        raise UsageError(f"{notebook} has no %%dockerfile cell to export")
    nb_dir = os.path.dirname(os.path.abspath(notebook))
    out = os.path.abspath(out or os.path.splitext(os.path.abspath(notebook))[0] + "-export")
    parser = dockerfile_parser()
    used: set[str] = set()
    planned: list[tuple[ExportedImage, str, bool]] = []
    for n, line, body in cells:
        try:
            args = parser.parse_args(shlex.split(line))
        except (UsageError, ValueError) as exc:
            raise UsageError(f"cell {n}: %%dockerfile {line}: {exc}") from exc
        path = os.path.join(out, f"{_file_name(args.tag, n, used)}.Dockerfile")
        context = args.context or args.context_flag or "."
        if "://" not in context:
            context = os.path.relpath(os.path.join(nb_dir, os.path.expanduser(context)), out)
        image = ExportedImage(n, list(args.tag), path, context, list(args.build_arg), args.target)
        planned.append((image, body, bool(re.search(r"\{[^}]*\}", line))))
    os.makedirs(os.path.join(out, "binder"), exist_ok=True)
    images = [image for image, _, _ in planned]
    files = {
        image.dockerfile: body if body.endswith("\n") else body + "\n" for image, body, _ in planned
    }
    script = _SCRIPT_HEAD + "\n".join(_build_line(i, odd) for i, _, odd in planned) + "\n"
    files[os.path.join(out, "build.sh")] = script
    for rel, text in binder_files(images).items():
        files[os.path.join(out, "binder", rel)] = text
    for path, text in files.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        if path.endswith(("build.sh", "postBuild")):
            os.chmod(path, 0o755)
    unresolved = [image.cell for image, _, odd in planned if odd]
    return Exported(out, images, list(files), unresolved)


def _file_name(tags: list[str], cell: int, used: set[str]) -> str:
    base = f"cell{cell}"
    if tags:
        repo = tags[0].rsplit("/", 1)[-1]
        base = re.sub(r"[^A-Za-z0-9_.-]", "-", repo.replace(":", "-"))
    name, i = base, 2
    while name in used:
        name, i = f"{base}-{i}", i + 1
    used.add(name)
    return name


_SCRIPT_HEAD = """#!/bin/sh
# Made by `ipydock notebook export`: the notebook's %%dockerfile cells, in notebook order.
# Run it with docker (DOCKER=docker, the default) or ipydock (DOCKER=ipydock).
set -eu
cd "$(dirname "$0")"
DOCKER=${DOCKER:-docker}
"""


def _build_line(image: ExportedImage, unresolved: bool) -> str:
    words = ["$DOCKER", "build"]
    for tag in image.tags:
        words += ["-t", tag]
    for arg in image.build_args:
        words += ["--build-arg", arg]
    if image.target:
        words += ["--target", image.target]
    words += ["-f", os.path.basename(image.dockerfile), image.context]
    line = " ".join(w if w == "$DOCKER" else shlex.quote(w) for w in words)
    if unresolved:
        return f"# cell {image.cell} names Python expressions ({{…}}): fill them in\n# {line}"
    return line


def binder_files(images: list[ExportedImage] | None = None) -> dict[str, str]:
    """``binder/`` for an exported notebook: ipydock and its Debian tools; postBuild builds the
    exported images where the machine allows it (Binder gives no root: then it says so)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pinned = f"ipydock=={version('ipydock')}"
    except PackageNotFoundError:
        pinned = "ipydock"
    post = ["#!/bin/bash", "# Made by `ipydock notebook export`.", "set -euo pipefail"]
    if images:
        post.append('cd "$(dirname "$0")/.."')
        post.append(
            "DOCKER=ipydock sh build.sh || echo 'postBuild: the images could not be "
            "built here (no root or user namespaces); the notebook will say what runs'"
        )
    return {
        "requirements.txt": f"{pinned}\n",
        "apt.txt": "\n".join(BINDER_APT) + "\n",
        "postBuild": "\n".join(post) + "\n",
    }


#: Debian packages of binder/apt.txt (the repository's own binder/ has the same list).
BINDER_APT = ["busybox-static", "proot", "uidmap", "docker-registry", "curl"]
