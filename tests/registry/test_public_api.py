"""The registry package's public names, pinned: a change here is a change of API."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "auth": ["Challenge", "parse_challenge"],
    "client": ["MANIFEST_TYPES", "Registry"],
    "codec": ["Decoder", "gzip_compressor"],
    "login": ["login"],
    "meta": ["candidates", "record"],
    "parallel": ["Aborted", "Jobs", "run_all", "serialised"],
    "pull": ["host_platform", "parse_platform", "pull"],
    "push": ["push"],
    "transport": [
        "certs_dirs", "is_insecure", "is_loopback", "offline", "tls_context", "transport_errors",
    ],
}  # fmt: skip


def test_credentials_are_the_request_layers() -> None:
    """Kept as docker's client keeps them, for both engines (ipydock.commands)."""
    from ipydock.commands import credentials

    assert credentials.__all__ == ["Credentials", "config_path", "erase", "forget", "lookup",
                                   "server_domain", "server_key", "store"]  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module: str) -> None:
    mod = importlib.import_module(f"ipydock.engine.registry.{module}")
    assert mod.__all__ == PUBLIC[module]
    assert all(hasattr(mod, name) for name in mod.__all__)


def test_listing_images_does_not_import_the_http_client() -> None:
    """Start-up time: httpx (and the registry client) load only for pull, push and login."""
    code = (
        "import sys; from ipydock.cli import build_parser; "
        "build_parser(['--root', '/x', 'images']); import ipydock.backends; print(*sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not {"httpx", "ipydock.engine.registry.client", "isal", "zstandard"} & loaded
