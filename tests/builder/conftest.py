"""Fixtures for builder tests: a backend with the busybox test image, and a leak check."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.builder.runstep import BUILD_CGROUP_PARENT
from ipydock.engine.runtime import cgroups
from tests.conftest import require


def leftovers(store_root: str) -> list[str]:
    """What a build must not leave behind: mounts under the store, temp dirs, cgroups."""
    found = []
    mounts = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET,OPTIONS"], capture_output=True, text=True, check=False
    ).stdout
    found += [f"mount: {line}" for line in mounts.splitlines() if store_root in line]
    tmp = os.path.join(store_root, "tmp")
    if os.path.isdir(tmp):
        found += [f"tmp: {name}" for name in os.listdir(tmp)]
    parent = os.path.join(cgroups.CGROUP_ROOT, BUILD_CGROUP_PARENT)
    if os.path.isdir(parent):
        found += [
            f"cgroup: {p}" for p in os.listdir(parent) if os.path.isdir(os.path.join(parent, p))
        ]
    return found


@pytest.fixture
def builder(backend: BundledBackend, busybox: str, store) -> Iterator[BundledBackend]:
    """The backend with ``busybox:latest``; after the test nothing may be left behind."""
    require(os.geteuid() == 0, "building RUN steps needs root")
    yield backend
    assert leftovers(store.root) == []
