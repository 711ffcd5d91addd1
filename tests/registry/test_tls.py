"""A registry behind TLS with a CA made for the test: refused with a clear error until the CA
is in the registry's certs.d dir, as docker reads it; skopeo reads what ipydock pushed there."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.errors import RegistryUnreachable
from ipydock.testing import LocalRegistry
from tests.conftest import require
from tests.registry.conftest import PREFIX, need_registry


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    need_registry()
    require(subprocess.run(["which", "openssl"], capture_output=True).returncode == 0,
            "openssl is not installed")  # fmt: skip
    d = str(tmp_path_factory.mktemp("ipdr-tls"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "1", "-subj", "/CN=ipdr test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext",
             cwd=d)  # fmt: skip
    reg = LocalRegistry(prefix=PREFIX, tls=(f"{d}/server.crt", f"{d}/server.key"))
    reg.ca = f"{d}/ca.crt"  # type: ignore[attr-defined]
    try:
        yield reg.start()
    finally:
        reg.stop()


def test_tls_needs_the_registry_ca_in_certs_d(
    backend: BundledBackend, busybox: str, tls_registry: LocalRegistry, other: BundledBackend,
    tmp_path, monkeypatch, skopeo: str,
) -> None:  # fmt: skip
    name = f"{tls_registry.host}/ipdr/tls:1"
    backend.tag("busybox", name)
    certs = tmp_path / "certs.d"
    monkeypatch.setenv("IPYDOCK_CERTS_D", str(certs))
    with pytest.raises(RegistryUnreachable, match="TLS certificate does not verify") as info:
        backend.push(name)
    assert f"/etc/docker/certs.d/{tls_registry.host}/ca.crt" in str(info.value)

    (certs / tls_registry.host).mkdir(parents=True)
    with open(tls_registry.ca) as f:  # type: ignore[attr-defined]
        (certs / tls_registry.host / "ca.crt").write_text(f.read())
    pushed = backend.push(name)
    assert other.pull(name).digest == pushed.digest
    out = subprocess.run(
        [skopeo, "inspect", "--cert-dir", str(certs / tls_registry.host), f"docker://{name}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert pushed.digest in out
