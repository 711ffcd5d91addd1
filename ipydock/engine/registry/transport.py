"""The network side of a registry session: plain http or TLS, which CAs, offline mode, and
the one place where ``httpx``'s transport errors become ipydock's.

::

    host ──loopback?──> plain http first, then https                  (is_loopback)
         ──listed insecure?──> https first, then http                  (is_insecure)
         ──IPYDOCK_OFFLINE and not loopback?──> refused at once        (offline)
         ──certs.d/HOST/*.crt, NAME.cert + NAME.key──> an SSLContext    (tls_context)
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from ipydock.errors import RegistryUnreachable

__all__ = ["certs_dirs", "is_insecure", "is_loopback", "offline", "tls_context", "transport_errors"]


def is_insecure(host: str) -> bool:
    """Plain http is allowed for loopback registries, as docker allows it, and for hosts in
    ``IPYDOCK_INSECURE_REGISTRIES`` (comma-separated) or daemon.json's insecure-registries."""
    if is_loopback(host):
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    listed = [h.strip() for h in os.environ.get("IPYDOCK_INSECURE_REGISTRIES", "").split(",")]
    try:
        with open("/etc/docker/daemon.json", "rb") as f:
            listed += json.load(f).get("insecure-registries") or []
    except (OSError, ValueError, AttributeError):
        pass
    return host in listed or name in listed


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def offline(host: str) -> bool:
    """``IPYDOCK_OFFLINE=1``: no traffic to registries beyond this machine (teaching rooms,
    test suites); a pull from elsewhere fails at once instead of waiting for a network."""
    return os.environ.get("IPYDOCK_OFFLINE", "") not in ("", "0") and not is_loopback(host)


def certs_dirs(host: str) -> list[str]:
    """Docker's per-registry TLS dirs: ``/etc/docker/certs.d/HOST[:PORT]`` and the user's
    ``~/.config/docker/certs.d/…`` (rootless docker's); ``IPYDOCK_CERTS_D`` replaces both."""
    bases = [os.environ["IPYDOCK_CERTS_D"]] if os.environ.get("IPYDOCK_CERTS_D") else [
        "/etc/docker/certs.d", os.path.expanduser("~/.config/docker/certs.d")]  # fmt: skip
    return [os.path.join(b, host) for b in bases if os.path.isdir(os.path.join(b, host))]


def tls_context(host: str) -> ssl.SSLContext:
    """The TLS context for a registry: httpx's CAs, or (with a certs.d dir) the system's,
    those and the registry's ``*.crt`` files plus its client certificate (``NAME.cert`` +
    ``NAME.key``), as docker reads them. Loaded at the first handshake: parsing the CA bundle
    costs ~0.1 s that a plain-http (localhost) registry never needs."""
    return _LazyContext(partial(_load_cas, certs_dirs(host)))


def _load_cas(dirs: list[str], ctx: ssl.SSLContext) -> None:
    """What httpx's ``verify=True`` loads (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's
    bundle), and with a certs.d dir the system's CAs and that dir's files too."""
    if os.environ.get("SSL_CERT_FILE"):
        ctx.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        ctx.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
    else:
        try:
            import certifi

            ctx.load_verify_locations(certifi.where())
        except ImportError:  # pragma: no cover - httpx depends on certifi
            ctx.load_default_certs()
    if dirs:
        ctx.load_default_certs()
    for d in dirs:
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".crt"):
                ctx.load_verify_locations(path)
            elif name.endswith(".cert"):
                ctx.load_cert_chain(path, path[: -len(".cert")] + ".key")


class _LazyContext(ssl.SSLContext):
    """A client context (hostname checked, certificate required, as ``create_default_context``
    makes it) that loads its certificates just before its first handshake."""

    def __new__(cls, loader: Callable[[ssl.SSLContext], None]) -> _LazyContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, loader: Callable[[ssl.SSLContext], None]) -> None:
        self._loader: Callable[[ssl.SSLContext], None] | None = loader
        self._lock = threading.Lock()
        self.verify_mode = ssl.CERT_REQUIRED
        self.check_hostname = True

    def _ready(self) -> None:
        with self._lock:
            if self._loader is not None:
                self._loader(self)
                self._loader = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        self._ready()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:  # type: ignore[override]
        self._ready()
        return super().wrap_bio(*args, **kwargs)


@contextlib.contextmanager
def transport_errors(registry: str) -> Iterator[None]:
    """The one place where httpx's transport errors become ipydock's."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise RegistryUnreachable(registry, f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        why = str(exc) or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in why:
            why = (
                f"its TLS certificate does not verify ({why}); put the CA that signed it in "
                f"/etc/docker/certs.d/{registry}/ca.crt"
            )
        raise RegistryUnreachable(registry, why) from exc
