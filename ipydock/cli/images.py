"""``ipydock image …``: ls, history, inspect, tag, rm, prune, save, load, import."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import (
    FILTER,
    FORMAT,
    NO_TRUNC,
    QUIET,
    arg,
    command,
    emit_inspect,
    emit_json,
)
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import (
    human_ago,
    human_size,
    layer_listing,
    layer_rows,
    short_id,
    table,
)
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import (
    HistoryRow,
    ImageDetail,
    ImageInfo,
    LayerFiles,
    LoadedImage,
    PruneResult,
    RemoveEvent,
)

# -- image ---------------------------------------------------------------------------------


def _ls(backend: Backend, a: argparse.Namespace) -> list[ImageInfo]:
    return backend.images(all=a.all, filters=a.filter)


@command("image", "ls", "List images", aliases=["list"], top=["images"], call=_ls)
@_args(
    arg(
        "-a",
        "--all",
        action="store_true",
        help="show all images (default hides intermediate images)",
    ),
    arg("--digests", action="store_true", help="show digests"),
    FILTER,
    NO_TRUNC,
    QUIET,
    FORMAT,
)
def image_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _ls(backend, a)
    if a.quiet:
        seen: list[str] = []
        for r in rows:
            ident = short_id(r.id, a.no_trunc)
            if ident not in seen:
                seen.append(ident)
        out.write("".join(f"{i}\n" for i in seen))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        digests = getattr(a, "digests", False)
        cells = [
            [
                r.repository,
                r.tag,
                *([r.digest] if digests else []),
                short_id(r.id, a.no_trunc),
                human_ago(r.created),
                human_size(r.size),
            ]
            for r in rows
        ]
        digest_head = ["DIGEST"] if digests else []
        head = ["REPOSITORY", "TAG", *digest_head, "IMAGE ID", "CREATED", "SIZE"]
        out.write(table(head, cells) + "\n")
    return 0


def _bool_word(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _history(backend: Backend, a: argparse.Namespace) -> list[HistoryRow]:
    return backend.history(a.image)


@command("image", "history", "Show the history of an image", top=["history"], call=_history)
@_args(
    arg(
        "-H",
        "--human",
        type=_bool_word,
        default=True,
        metavar="true|false",
        help="print sizes and dates in human readable format (default true)",
    ),
    NO_TRUNC,
    QUIET,
    FORMAT,
    arg("image"),
)
def image_history(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _history(backend, a)
    if a.quiet:
        out.write("".join(f"{short_id(r.id, a.no_trunc)}\n" for r in rows))
        return 0
    if a.format == "json":
        emit_json(rows, out)
        return 0
    cells = []
    for r in rows:
        created_by = r.created_by.replace("\t", " ").replace("\n", " ")
        if not a.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        if a.human:
            created = human_ago(r.created)
            size = human_size(r.size)
        else:
            created = r.created.isoformat() if r.created else "N/A"
            size = str(r.size)
        cells.append([short_id(r.id, a.no_trunc), created, created_by, size, r.comment])
    out.write(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], cells) + "\n")
    return 0


def _inspect(backend: Backend, a: argparse.Namespace) -> list[ImageDetail]:
    return [backend.inspect_image(name) for name in a.images]


@command("image", "inspect", "Display detailed information on one or more images", call=_inspect)
@_args(FORMAT, arg("images", nargs="+", metavar="IMAGE"))
def image_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    details = _inspect(backend, a)
    emit_inspect(details, a.format, out)
    return 0


def _tag(backend: Backend, a: argparse.Namespace) -> str:
    return backend.tag(a.source, a.target)


@command(
    "image",
    "tag",
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    top=["tag"],
    call=_tag,
)
@_args(arg("source", metavar="SOURCE_IMAGE[:TAG]"), arg("target", metavar="TARGET_IMAGE[:TAG]"))
def image_tag(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    _tag(backend, a)
    return 0


def _rm(backend: Backend, a: argparse.Namespace) -> list[RemoveEvent]:
    """The first refusal stops here (the CLI goes on with the other names, as docker does)."""
    return [ev for name in a.images for ev in backend.remove_image(name, force=a.force)]


@command(
    "image",
    "rm",
    "Remove one or more images",
    aliases=["remove", "rmi"],
    top=["rmi"],
    call=_rm,
)
@_args(
    arg("-f", "--force", action="store_true", help="force removal of the image"),
    arg("images", nargs="+", metavar="IMAGE"),
)
def image_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    status = 0
    for name in a.images:  # like docker: go on with the others, fail at the end
        try:
            events = backend.remove_image(name, force=a.force)
        except IPyDockError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
            continue
        for ev in events:
            out.write(f"{ev.action.capitalize()}: {ev.target}\n")
    return status


def _prune(backend: Backend, a: argparse.Namespace) -> PruneResult:
    """Without a prompt to answer, removing needs ``-f``, as docker does without a terminal."""
    if not a.force:
        raise UsageError(
            "image prune removes images without asking only with -f: "
            f"run `image prune {'-a ' if a.all else ''}-f`"
        )
    return backend.prune_images(all=a.all, filters=a.filter)


@command("image", "prune", "Remove unused images", call=_prune)
@_args(
    arg(
        "-a", "--all", action="store_true", help="remove all unused images, not just dangling ones"
    ),
    arg("-f", "--force", action="store_true", help="do not prompt for confirmation"),
    arg(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label=K[=V] or until=TIME",
    ),
)
def image_prune(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if not a.force:
        what = (
            "all images without at least one container associated to them"
            if a.all
            else "all dangling images"
        )
        out.write(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    result = backend.prune_images(all=a.all, filters=a.filter)
    if result.deleted:
        out.write("Deleted Images:\n")
        for ev in result.deleted:
            out.write(f"{'untagged' if ev.action == 'untagged' else 'deleted'}: {ev.target}\n")
        out.write("\n")
    out.write(f"Total reclaimed space: {human_size(result.space_reclaimed)}\n")
    return 0


def _save(backend: Backend, a: argparse.Namespace) -> str:
    if not a.output or a.output == "-":
        raise UsageError("image save needs -o FILE here (there is no stdout to write to)")
    backend.save(a.images, a.output)
    return str(a.output)


@command("image", "save", "Save one or more images to a tar archive", top=["save"], call=_save)
@_args(
    arg("-o", "--output", help="write to a file instead of STDOUT"),
    arg("images", nargs="+", metavar="IMAGE"),
)
def image_save(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.output and a.output != "-":
        backend.save(a.images, a.output)
        return 0
    if sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect")
    sys.stdout.flush()
    backend.save(a.images, sys.stdout.buffer)
    return 0


def _load(backend: Backend, a: argparse.Namespace) -> list[LoadedImage]:
    if a.input == "-":
        raise UsageError("image load needs -i FILE here (there is no stdin to read from)")
    return backend.load(a.input)


@command("image", "load", "Load an image from a tar archive or STDIN", top=["load"], call=_load)
@_args(
    arg("-i", "--input", default="-", help="read from a tar archive file instead of STDIN"),
    arg("-q", "--quiet", action="store_true", help="suppress the load output"),
)
def image_load(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.input == "-" and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty: use -i FILE")
    loaded = backend.load(a.input)
    if not a.quiet:
        for img in loaded:
            for name, old in img.replaced:
                out.write(
                    f"The image {name} already exists, renaming the old one with ID "
                    f"{old} to empty string\n"
                )
            for name in img.tags:
                out.write(f"Loaded image: {name}\n")
            if not img.tags:
                out.write(f"Loaded image ID: {img.id}\n")
    return 0


def _import(backend: Backend, a: argparse.Namespace) -> str:
    return backend.import_image(a.source, a.name, message=a.message, changes=a.change)


@command(
    "image",
    "import",
    "Import the contents from a tarball to create a filesystem image",
    top=["import"],
    call=_import,
)
@_args(
    arg(
        "-c",
        "--change",
        action="append",
        default=[],
        help="apply a Dockerfile instruction to the image (CMD, ENV, …)",
    ),
    arg("-m", "--message", default="", help="set the commit message"),
    arg("source", metavar="file|URL|-"),
    arg("name", nargs="?", metavar="REPOSITORY[:TAG]"),
)
def image_import(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    image_id = _import(backend, a)
    out.write(image_id + "\n")
    return 0


def _files(backend: Backend, a: argparse.Namespace) -> list[LayerFiles]:
    layers = backend.image_layers(a.image)
    if a.layer is not None and not 0 <= a.layer < len(layers):
        raise UsageError(f"{a.image} has layers 0 to {len(layers) - 1}, not {a.layer}")
    return layers if a.layer is None else [layers[a.layer]]


@command("image", "files", "Show what each layer adds, changes and deletes", call=_files)
@_args(
    arg("--layer", type=int, metavar="N", help="only layer N (0 is the bottom layer)"),
    FORMAT,
    arg("image"),
)
def image_files(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    layers = _files(backend, a)
    if a.format == "json":
        out.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in layer_rows(layers)))
    else:
        out.write(layer_listing(layers))
    return 0
