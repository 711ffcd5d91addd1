"""The engines beyond one machine: the session's two-node swarm (``cluster``, defined in
tests/conftest.py from :mod:`tests.engines.swarm`) and its manager's engine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from ipydock.docker import DockerBackend
from tests.engines.swarm import Cluster, wait_for
from tests.notebook.conftest import ip  # noqa: F401  (a shell with the magics, for the tests)


@pytest.fixture
def manager(cluster: Cluster) -> Iterator[DockerBackend]:
    """The manager's engine; services, stacks and networks a test made are removed after."""
    b = DockerBackend(cluster.manager.host)
    before = {s.id for s in b.swarm.services()}
    nets = {n.name for n in b.networks()}
    try:
        yield b
    finally:
        for s in b.swarm.services():
            if s.id not in before:
                b.swarm.remove_service(s.id)
        wait_for(lambda: not [c for c in cluster.manager.run("ps", "-aq").stdout.split()]
                 and not cluster.worker.run("ps", "-aq").stdout.split(),
                 "the removed services' containers to go")  # fmt: skip
        for n in b.networks():
            if n.name not in nets:
                with contextlib.suppress(Exception):  # a swarm may take it down itself
                    b.remove_network(n.name)
        b.close()
