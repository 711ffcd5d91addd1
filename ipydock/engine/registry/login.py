"""``login [SERVER]``: check credentials against a registry, keep them where docker keeps them
(:mod:`ipydock.commands.credentials`, which also does ``logout``).

::

    login:  GET /v2/ ──401 challenge──> Basic: GET /v2/ with user:password
                                        Bearer: token endpoint with user:password (no scope)
            ──200──> config.json "auths" (or the configured credential helper)
"""

from __future__ import annotations

from ipydock.commands.credentials import Credentials, server_domain, store
from ipydock.engine.registry.client import Registry
from ipydock.errors import RegistryAuthFailed, UsageError

__all__ = ["login"]


def login(server: str | None, username: str, password: str) -> str:
    """Check the credentials with the registry and store them; return "Login Succeeded"."""
    if not username or not password:
        raise UsageError("login needs a username and a password (-u USER, --password-stdin)")
    domain = server_domain(server)
    creds = Credentials(username, password)
    with Registry(domain, creds, use_stored_credentials=False) as reg:
        reg.ping()
        if reg.challenge is not None:
            resp = reg.request("GET", "/v2/", "")
            if resp.status_code == 401:
                raise RegistryAuthFailed(domain, "wrong username or password")
            reg.check(resp, "login")
    store(domain, creds)
    return "Login Succeeded"
