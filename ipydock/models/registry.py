"""Registries: progress events of ``pull``/``push`` and what they return."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PullResult", "PushResult", "TransferEvent"]


@dataclass(frozen=True)
class TransferEvent:
    """One progress event of a pull or push, delivered to the ``progress`` callback.

    ``id`` is the short (12 hex) digest of the layer or config concerned, or ``""`` for a line
    about the whole transfer (``text`` then holds it, e.g. ``latest: Pulling from library/x``).
    ``status`` is docker's word for the layer's state: ``Pulling fs layer``, ``Downloading``,
    ``Verifying Checksum``, ``Download complete``, ``Extracting``, ``Pull complete``,
    ``Already exists``; ``Preparing``, ``Pushing``, ``Pushed``, ``Layer already exists``,
    ``Mounted from REPO``. ``current``/``total`` count bytes while data moves.
    """

    id: str
    status: str
    current: int = 0
    total: int = 0
    text: str = ""


@dataclass(frozen=True)
class PullResult:
    """A pulled image: its local ``id`` (docker's image ID), the name as docker prints it
    (``docker.io/library/busybox:latest``), the manifest ``digest`` and whether it was new."""

    id: str
    reference: str
    digest: str
    status: str  # "Downloaded newer image for X" | "Image is up to date for X"


@dataclass(frozen=True)
class PushResult:
    """A pushed tag: ``tag``, the manifest ``digest`` and ``size`` in bytes, as docker prints
    them (``latest: digest: sha256:… size: 527``)."""

    repository: str
    tag: str
    digest: str
    size: int
