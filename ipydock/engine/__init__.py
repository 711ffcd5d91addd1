"""The bundled engine: a plain Python library, no IPython, pandas or widgets.

::

    cli / magics / dock ──> backends.BundledBackend ──> store/      blobs, layers, images,
                                                                    archives, check
                                                    ──> builder/    Dockerfile -> images
                                                    ──> containers/ records, supervisors, exec
                                                    ──> volumes.py, network/, registry/
                            containers/, builder/ ──> runtime/      namespaces, overlay,
                                                                    cgroups, devices
    the request layer they share (-v, .dockerignore): ipydock.commands

Nothing is imported here eagerly: the runtime's fork server imports only what it needs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Store", "default_root"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ipydock.engine import store

        return getattr(store, name)
    raise AttributeError(name)
