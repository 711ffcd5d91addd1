"""``login [SERVER]`` / ``logout [SERVER]``: check credentials against a registry, keep them
where docker keeps them (see :mod:`auth`).

::

    login:  GET /v2/ ──401 challenge──> Basic: GET /v2/ with user:password
                                        Bearer: token endpoint with user:password (no scope)
            ──200──> config.json "auths" (or the configured credential helper)
"""

from __future__ import annotations

from ipydock.engine.registry import auth
from ipydock.engine.registry.client import Registry
from ipydock.engine.registry.reference import DEFAULT_DOMAIN
from ipydock.errors import RegistryAuthFailed, UsageError

__all__ = ["login", "logout", "server_domain"]


def server_domain(server: str | None) -> str:
    """``None``/``docker.io``/``https://index.docker.io/v1/`` -> ``docker.io``; ``HOST[:PORT]``
    with any scheme and path removed otherwise, as docker reads the argument."""
    if not server:
        return DEFAULT_DOMAIN
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if not host:
        raise UsageError(f"invalid registry server {server!r}: use HOST[:PORT]")
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_DOMAIN
    return host


def login(server: str | None, username: str, password: str) -> str:
    """Check the credentials with the registry and store them; return "Login Succeeded"."""
    if not username or not password:
        raise UsageError("login needs a username and a password (-u USER, --password-stdin)")
    domain = server_domain(server)
    creds = auth.Credentials(username, password)
    with Registry(domain, creds, use_stored_credentials=False) as reg:
        reg.ping()
        if reg.challenge is not None:
            resp = reg.request("GET", "/v2/", "")
            if resp.status_code == 401:
                raise RegistryAuthFailed(domain, "wrong username or password")
            reg.check(resp, "login")
    auth.store(domain, creds)
    return "Login Succeeded"


def logout(server: str | None) -> str:
    domain = server_domain(server)
    key = auth.server_key(domain)
    if not auth.erase(domain):
        return f"Not logged in to {key}"
    return f"Removing login credentials for {key}"
