"""Registry credentials as docker's client keeps them, for both engines:
``~/.docker/config.json`` and credential helpers.

::

    config.json  {"auths": {"localhost:5000": {"auth": base64("user:password")}},
                  "credsStore": "pass",                      (all registries: a helper)
                  "credHelpers": {"ghcr.io": "gh"}}           (one registry: a helper)
    helper       docker-credential-NAME get|store|erase, JSON on stdin/stdout

Docker Hub's key is ``https://index.docker.io/v1/``, as docker writes it; other registries are
keyed by ``HOST[:PORT]``. ``DOCKER_CONFIG`` names another directory, as for docker.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass

from ipydock.errors import IPyDockWarning, RegistryError, UsageError

__all__ = [
    "Credentials",
    "config_path",
    "erase",
    "forget",
    "lookup",
    "server_domain",
    "server_key",
    "store",
]

HUB_KEY = "https://index.docker.io/v1/"
HUB_DOMAIN = "docker.io"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str  # or an identity token when username is "<token>"


def server_domain(server: str | None) -> str:
    """``None``/``docker.io``/``https://index.docker.io/v1/`` -> ``docker.io``; ``HOST[:PORT]``
    with any scheme and path removed otherwise, as docker reads the argument."""
    if not server:
        return HUB_DOMAIN
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if not host:
        raise UsageError(f"invalid registry server {server!r}: use HOST[:PORT]")
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return HUB_DOMAIN
    return host


def server_key(domain: str) -> str:
    """The key docker files a registry's credentials under."""
    return HUB_KEY if domain in ("docker.io", "index.docker.io", "registry-1.docker.io") else domain


def config_path() -> str:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _read_config() -> dict:
    try:
        with open(config_path(), "rb") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(config_path(), f"cannot read the docker config ({exc})") from exc
    return doc if isinstance(doc, dict) else {}


def _write_config(doc: dict) -> None:
    """Rewrite config.json atomically, keeping every key we do not know about."""
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def _helper_for(doc: dict, key: str) -> str:
    helpers = doc.get("credHelpers") or {}
    return helpers.get(key) or doc.get("credsStore") or ""


def _run_helper(helper: str, action: str, data: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, action], input=data, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError as exc:
        if action == "get":  # a config copied from another machine: go on without
            import warnings

            warnings.warn(
                IPyDockWarning(f"credential helper {program} is not installed; "
                               "going on without credentials (see config.json)"),
                stacklevel=3,
            )  # fmt: skip
            return ""
        raise RegistryError(
            "credentials", f"credential helper {program} is not installed (see config.json)"
        ) from exc
    if proc.returncode != 0:
        out = (proc.stdout or proc.stderr).strip()
        if action == "get" and "credentials not found" in out.lower():
            return ""
        raise RegistryError("credentials", f"{program} {action} failed: {out}")
    return proc.stdout


def lookup(domain: str) -> Credentials | None:
    """The stored credentials for a registry, or None (anonymous)."""
    doc = _read_config()
    key = server_key(domain)
    helper = _helper_for(doc, key)
    if helper:
        out = _run_helper(helper, "get", key)
        if out.strip():
            got = json.loads(out)
            if got.get("Username") or got.get("Secret"):
                return Credentials(got.get("Username", ""), got.get("Secret", ""))
    entry = (doc.get("auths") or {}).get(key) or {}
    if entry.get("identitytoken"):
        return Credentials("<token>", entry["identitytoken"])
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError as exc:
            raise RegistryError(config_path(), f"bad auth entry for {key}") from exc
        return Credentials(user, password)
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""))
    return None


def store(domain: str, creds: Credentials) -> str:
    """Save credentials as docker login does; return the file or helper that holds them."""
    doc = _read_config()
    key = server_key(domain)
    helper = _helper_for(doc, key)
    auths = doc.setdefault("auths", {})
    if helper:
        data = json.dumps({"ServerURL": key, "Username": creds.username, "Secret": creds.password})
        _run_helper(helper, "store", data)
        auths[key] = {}
        where = f"docker-credential-{helper}"
    else:
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        auths[key] = {"auth": token}
        where = config_path()
    _write_config(doc)
    return where


def erase(domain: str) -> bool:
    """Remove a registry's credentials; False when there were none."""
    doc = _read_config()
    key = server_key(domain)
    helper = _helper_for(doc, key)
    auths = doc.get("auths") or {}
    found = key in auths
    if helper:
        _run_helper(helper, "erase", key)
        found = True
    if key in auths:
        del auths[key]
    if found:
        _write_config(doc)
    return found


def forget(server: str | None) -> str:
    """``logout [SERVER]``: drop the stored credentials; docker's answer line."""
    domain = server_domain(server)
    key = server_key(domain)
    if not erase(domain):
        return f"Not logged in to {key}"
    return f"Removing login credentials for {key}"
