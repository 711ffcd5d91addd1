"""Containers: records on disk, a state machine, a supervisor per container, volumes in use.

::

    backend --RunOptions--> lifecycle.create --> Records (ROOT/containers/<id>/)   created
            --start-------> supervisor process (own session) --spawn()--> pid 1   running
                                 |  stdout/stderr -> <id>-json.log, exit -> state.json
                                 |  -t: the pty's master (ttyhub) <--attach.sock-- terminal.py
            --stop/kill---> ctl fifo ----------'                                   exited
            --exec--------> execute (nsexec; -t: a pty of the container's own)
            --inspect/ls/logs/diff/top/commit/cp--> views, changes (read the records)

Why a package beside ``runtime/`` and not inside it: ``runtime`` runs one isolated process from
pure data and knows nothing of the store; containers are records *in* the store (image IDs,
layers, volumes, names) with a lifecycle that outlives any process. Keeping the two apart keeps
the runtime testable without a store, and lets the supervisor import only the runtime.
"""

from __future__ import annotations

from typing import Any

from ipydock.engine.containers.state import ALLOWED, State, Status, transition

__all__ = ["ALLOWED", "Record", "Records", "RunOptions", "State", "Status", "transition"]

_LAZY = {"RunOptions": "config", "Record": "records", "Records": "records"}


def __getattr__(name: str) -> Any:
    """Load the heavier modules on first use: a supervisor's start-up imports little."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
