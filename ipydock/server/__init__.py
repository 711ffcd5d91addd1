"""The Jupyter server extension behind the lab's "Containers" panel: REST over the Backend.

::

    browser (labextension/src/request.ts)
        |  GET/POST/DELETE /ipydock/api/...     GET events, containers/ID/logs?follow=1 (SSE)
        v                                         ^
    handlers.py  routes, a few lines each:     streams.py  the two streams; the Hub shares one
        |        words in, one Backend call,       |       watcher among the open event streams
        |        to_record out (base.py: the       |
        |        one error -> HTTP mapping)        |
        v                                          |
    session.py   the Backend (bundled on IPYDOCK_ROOT, or docker), a thread pool for its calls,
        |        errors -> HTTP status in one table
        v                                          |
    watch.py     inotify on the store (index.json, containers/, volumes/) or docker's /events
                 -> "changed" to every open event stream, within ~0.1 s

Enabled by ``jupyter-config/server-config/ipydock.json`` (installed into
``etc/jupyter/jupyter_server_config.d``); the engine is a setting: ``--IPyDockServer.engine=docker``
or ``c.IPyDockServer.engine`` in a config file, and switchable at run time (``PUT engine``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "_jupyter_server_extension_points",
    "_load_jupyter_server_extension",
    "_unload_jupyter_server_extension",
]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ipydock.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the routes to the server (jupyter_server calls this once at start-up)."""
    from ipydock.server.handlers import setup_handlers

    setup_handlers(serverapp)


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    """Stop the watcher and the thread pool (jupyter_server calls this at shut-down)."""
    from ipydock.server.handlers import teardown_handlers

    teardown_handlers(serverapp)
