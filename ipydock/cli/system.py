"""``ipydock system …`` and ``ipydock info``: info, df, check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from ipydock.api import Backend
from ipydock.cli.registry import FORMAT, arg, command, emit_json
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import human_size, table
from ipydock.models import CheckReport, DiskUsage, to_record

# -- system --------------------------------------------------------------------------------


def _info(backend: Backend, a: argparse.Namespace) -> dict[str, Any]:
    return backend.info()


@command("system", "info", "Display system-wide information", top=["info"], call=_info)
@_args(FORMAT)
def system_info(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    info = _info(backend, a)
    if a.format == "json":
        out.write(json.dumps(info) + "\n")
    else:
        width = max(len(k) for k in info)
        out.write(
            "".join(f"{k.replace('_', ' ').capitalize():<{width}}  {v}\n" for k, v in info.items())
        )
    return 0


def _df(backend: Backend, a: argparse.Namespace) -> list[DiskUsage]:
    return backend.disk_usage()


@command("system", "df", "Show disk usage", call=_df)
@_args(FORMAT)
def system_df(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _df(backend, a)
    if a.format == "json":
        emit_json(rows, out)
        return 0
    cells = []
    for r in rows:
        pct = f" ({100 * r.reclaimable // r.size}%)" if r.size else ""
        cells.append(
            [
                r.type,
                str(r.total),
                str(r.active),
                human_size(r.size),
                human_size(r.reclaimable) + pct,
            ]
        )
    out.write(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], cells) + "\n")
    return 0


def _check(backend: Backend, a: argparse.Namespace) -> CheckReport:
    return backend.check(repair=a.repair)


@command("system", "check", "Check that the store is consistent (and mend it)", call=_check)
@_args(
    arg(
        "--repair",
        action="store_true",
        help="remove leftovers of interrupted writes and unname broken images",
    ),
    FORMAT,
)
def system_check(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    report = _check(backend, a)
    if a.format == "json":
        out.write(json.dumps(to_record(report)) + "\n")
        return 0 if report.ok or a.repair else 1
    for p in report.problems:
        out.write(f"problem: {p}\n")
    for g in report.garbage:
        out.write(f"leftover: {g}\n")
    for r in report.repaired:
        out.write(f"repaired: {r}\n")
    if report.ok:
        extra = (
            f" ({len(report.garbage)} leftovers; `--repair` removes them)"
            if report.garbage and not a.repair
            else ""
        )
        out.write(f"store is consistent{extra}\n")
        return 0
    if a.repair:
        out.write("store repaired\n")
        return 0
    print(
        f"Error: {len(report.problems)} problems; run `ipydock system check --repair`",
        file=sys.stderr,
    )
    return 1


def _server_call(backend: Backend, a: argparse.Namespace) -> dict[str, Any]:
    """The server's state (``running``, ``pid``, ``socket``); ``stop`` adds ``stopped``."""
    from ipydock.cli import server

    if a.action == "stop":
        return {**server.status(), "stopped": server.stop()}
    return server.status()


@command("system", "server", "Show or stop the warm command server behind `ipydock`",
         call=_server_call, engine=False)  # fmt: skip
@_args(
    arg("action", nargs="?", choices=["status", "stop"], default="status", help="status or stop"),
    FORMAT,
)
def system_server(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if a.action == "stop":
        stopped = _server_call(backend, a)["stopped"]
        out.write("stopped\n" if stopped else "no server was running\n")
        return 0
    state = _server_call(backend, a)
    if a.format == "json":
        out.write(json.dumps(state) + "\n")
    elif state["running"]:
        out.write(f"running, pid {state['pid']}, socket {state['socket']}\n")
    else:
        out.write(f"not running (it starts with the next command; socket {state['socket']})\n")
    return 0
