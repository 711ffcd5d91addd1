"""A real docker-registry per test session (plain, and with htpasswd basic auth), a private
docker config per test, and a repository name per test."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.testing import REGISTRY_BINARY, LocalRegistry
from tests.conftest import require
from tests.registry.token_issuer import TokenIssuer

USER, PASSWORD = "ipdr-user", "ipdr-pass"
PREFIX = "ipdr-registry-"  # this suite's host objects: temp dirs of its registries


def need_registry() -> None:
    require(
        os.path.exists(REGISTRY_BINARY),
        "docker-registry is not installed (scripts/setup.sh --test)",
    )


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    need_registry()
    reg = LocalRegistry(prefix=PREFIX).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[LocalRegistry]:
    need_registry()
    require(shutil.which("htpasswd") is not None, "htpasswd (apache2-utils) is not installed")
    reg = LocalRegistry(users={USER: PASSWORD}, prefix=PREFIX).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with token auth (bearer), and its token issuer (``.issuer``)."""
    need_registry()
    require(shutil.which("openssl") is not None, "openssl is not installed")
    issuer = TokenIssuer(str(tmp_path_factory.mktemp("ipdr-token")), {USER: PASSWORD})
    reg = LocalRegistry(auth_yaml=issuer.auth_yaml(), prefix=PREFIX)
    reg.issuer = issuer  # type: ignore[attr-defined]
    try:
        yield reg.start()
    finally:
        reg.stop()
        issuer.stop()


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch) -> str:
    """Credentials go to a config.json of the test's own, never the user's ~/.docker."""
    path = str(tmp_path / "docker-config")
    monkeypatch.setenv("DOCKER_CONFIG", path)
    return path


@pytest.fixture
def repo(registry: LocalRegistry, request: pytest.FixtureRequest) -> str:
    """``127.0.0.1:PORT/ipdr/<test name>``: each test pushes to a repository of its own."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    return f"{registry.host}/ipdr/{name}"


@pytest.fixture
def other(tmp_path) -> BundledBackend:
    """A second, empty store: "another machine" that pulls what was pushed."""
    return BundledBackend(Store(str(tmp_path / "other-store")))
