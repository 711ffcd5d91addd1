"""The Docker Engine API backend: ``backends.connect("docker", host=URL)``.

::

    DockerBackend (backend.py) ──> client.py   connect, one translation of Docker's errors
          │                   ──> convert.py  API JSON -> ipydock.models (pure)
          │                   ──> runopts.py  RunOptions -> POST /containers/create
          └────────────────── ──> build.py    classic builder; its stream -> BuildEvents

It talks to any engine that speaks Docker's API (dockerd, Podman's service), through the
``docker`` SDK (the ``docker`` extra). It never imports :mod:`ipydock.engine`.
"""

from __future__ import annotations

from ipydock.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
