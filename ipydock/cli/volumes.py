"""``ipydock volume …``: create, ls, inspect, rm, prune, files."""

from __future__ import annotations

import argparse
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import FORMAT, arg, command, each, emit_inspect, emit_json, print_each
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import human_size, table
from ipydock.models import ActionResult, FileEntry, VolumeInfo


def _create_call(backend: Backend, a: argparse.Namespace) -> VolumeInfo:
    labels = dict(item.partition("=")[::2] for item in a.label)
    return backend.create_volume(a.name, labels=labels)


@command("volume", "create", "Create a volume", call=_create_call)
@_args(arg("-l", "--label", action="append", default=[], metavar="K=V"),
       arg("name", nargs="?"))  # fmt: skip
def volume_create(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_create_call(backend, a).name + "\n")
    return 0


def _ls_call(backend: Backend, a: argparse.Namespace) -> list[VolumeInfo]:
    return backend.volumes()


@command("volume", "ls", "List volumes", aliases=["list"], call=_ls_call)
@_args(arg("-q", "--quiet", action="store_true", help="only show volume names"), FORMAT)
def volume_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = backend.volumes()
    if a.quiet:
        out.write("".join(f"{v.name}\n" for v in rows))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        out.write(table(["DRIVER", "VOLUME NAME"], [[v.driver, v.name] for v in rows]) + "\n")
    return 0


def _inspect_call(backend: Backend, a: argparse.Namespace) -> list[VolumeInfo]:
    return [backend.inspect_volume(n) for n in a.names]


@command("volume", "inspect", "Display detailed information on one or more volumes",
         call=_inspect_call)  # fmt: skip
@_args(FORMAT, arg("names", nargs="+", metavar="VOLUME"))
def volume_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    details = [backend.inspect_volume(n) for n in a.names]
    emit_inspect(details, a.format, out)
    return 0


def _rm_call(backend: Backend, a: argparse.Namespace) -> list[ActionResult]:
    return each(a.names, lambda name: backend.remove_volume(name, force=a.force))


@command("volume", "rm", "Remove one or more volumes", aliases=["remove"], call=_rm_call)
@_args(arg("-f", "--force", action="store_true", help="remove even if stopped containers use it"),
       arg("names", nargs="+", metavar="VOLUME"))  # fmt: skip
def volume_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    return print_each(_rm_call(backend, a), out)


@command("volume", "prune", "Remove unused anonymous volumes (-a: all unused volumes)",
         call=lambda backend, a: backend.prune_volumes(all=a.all))  # fmt: skip
@_args(
    arg("-a", "--all", action="store_true", help="named volumes too"),
    arg("-f", "--force", action="store_true", help="do not prompt (ipydock never prompts)"),
)
def volume_prune(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    result = backend.prune_volumes(all=a.all)
    if result.deleted:
        out.write("Deleted Volumes:\n" + "".join(f"{n}\n" for n in result.deleted) + "\n")
    out.write(f"Total reclaimed space: {human_size(result.space_reclaimed)}\n")
    return 0


def _files_call(backend: Backend, a: argparse.Namespace) -> list[FileEntry]:
    return backend.volume_files(a.name, a.path)


@command("volume", "files", "List the files of a volume", call=_files_call)
@_args(FORMAT, arg("name", metavar="VOLUME"), arg("path", nargs="?", default="/"))
def volume_files(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = backend.volume_files(a.name, a.path)
    if a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[r.mode, human_size(r.size), r.mtime.strftime("%Y-%m-%d %H:%M"), r.path]
                 for r in rows]  # fmt: skip
        out.write(table(["MODE", "SIZE", "MODIFIED", "PATH"], cells) + "\n")
    return 0
