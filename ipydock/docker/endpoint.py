"""Which Docker engine to talk to, and how: a host URL, TLS files, or a docker context by name.

::

    --host URL | --context NAME | $DOCKER_HOST | $DOCKER_CONTEXT | config.json currentContext
        ──resolve()──> Endpoint(host, tls, context)
    unix:///var/run/docker.sock      the local engine (the default)
    tcp://HOST:2376 + TLS            --tlsverify/--tlscacert/--tlscert/--tlskey, or
                                     $DOCKER_TLS_VERIFY and $DOCKER_CERT_PATH (ca/cert/key.pem)
    ssh://user@host[:port]           through the system's ssh client, as the docker CLI does
                                     (docker/sshtunnel.py)
    contexts                         $DOCKER_CONFIG/contexts/meta/<sha256 of name>/meta.json and
                                     …/tls/<sha256 of name>/docker/{ca,cert,key}.pem

The order is docker's: an explicit host or context first (both at once is an error), then
the environment, then the config file's current context, then the local socket.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from ipydock.errors import UsageError

__all__ = ["DEFAULT_HOST", "Endpoint", "TLSFiles", "config_dir", "resolve"]

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class TLSFiles:
    """Client TLS material: ``verify`` checks the engine's certificate against ``ca``."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    verify: bool = True


@dataclass(frozen=True)
class Endpoint:
    host: str
    tls: TLSFiles | None = None
    context: str = ""  # the docker context it came from, if any


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def resolve(
    host: str | None = None, context: str | None = None, *, tlsverify: bool | None = None,
    tlscacert: str | None = None, tlscert: str | None = None, tlskey: str | None = None,
) -> Endpoint:  # fmt: skip
    """The engine to use for these options (see the module docstring)."""
    if host and context:
        raise UsageError("conflicting options: either specify --host or --context, not both")
    if not host and not context:
        host = os.environ.get("DOCKER_HOST") or None
    if not host:
        context = context or os.environ.get("DOCKER_CONTEXT") or _current_context()
        if context and context != "default":
            return _from_context(context)
    host = host or DEFAULT_HOST
    return Endpoint(host, _tls_options(tlsverify, tlscacert, tlscert, tlskey))


def _tls_options(verify: bool | None, ca: str | None, cert: str | None, key: str | None
                 ) -> TLSFiles | None:  # fmt: skip
    """TLS as the docker CLI decides it: any --tls* flag, or $DOCKER_TLS_VERIFY, turns it on;
    ``--tlsverify`` (or the variable) checks the engine's certificate. Files come from the
    flags, else $DOCKER_CERT_PATH, else ~/.docker (ca.pem, cert.pem, key.pem); a client
    certificate is sent when both of its files exist."""
    verify = bool(verify) or os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    if not (verify or ca or cert or key):
        return None
    base = os.environ.get("DOCKER_CERT_PATH") or config_dir()
    for label, given in (("--tlscacert", ca), ("--tlscert", cert), ("--tlskey", key)):
        if given and not os.path.exists(given):
            raise UsageError(f"TLS: {label} {given} does not exist")
    ca = ca or os.path.join(base, "ca.pem")
    if verify and not os.path.exists(ca):
        raise UsageError(f"TLS: no CA certificate at {ca} to verify the engine with "
                         "(give --tlscacert, or set DOCKER_CERT_PATH to a folder with "
                         "ca.pem)")  # fmt: skip
    cert, key = cert or os.path.join(base, "cert.pem"), key or os.path.join(base, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        cert = key = ""
    return TLSFiles(ca=ca if os.path.exists(ca) else "", cert=cert, key=key, verify=verify)


def _current_context() -> str:
    try:
        with open(os.path.join(config_dir(), "config.json")) as f:
            return str(json.load(f).get("currentContext") or "")
    except (OSError, ValueError):
        return ""


def _from_context(name: str) -> Endpoint:
    """A context made by ``docker context create NAME --docker host=…,ca=…,cert=…,key=…``."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = os.path.join(config_dir(), "contexts", "meta", digest, "meta.json")
    try:
        with open(meta) as f:
            data = json.load(f)
    except OSError:
        raise UsageError(f"context {name!r} does not exist (see `docker context ls`; "
                         "make one with `docker context create NAME --docker host=URL`)"
                         ) from None  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"context {name!r}: {meta} is not valid JSON: {exc}") from exc
    docker = (data.get("Endpoints") or {}).get("docker") or {}
    if not docker.get("Host"):
        raise UsageError(f"context {name!r} has no docker endpoint (see `docker context "
                         f"inspect {name}`)")  # fmt: skip
    tls_dir = os.path.join(config_dir(), "contexts", "tls", digest, "docker")
    ca, cert, key = (os.path.join(tls_dir, f) for f in ("ca.pem", "cert.pem", "key.pem"))
    tls = None
    if any(os.path.exists(p) for p in (ca, cert, key)):
        tls = TLSFiles(ca=ca if os.path.exists(ca) else "",
                       cert=cert if os.path.exists(cert) else "",
                       key=key if os.path.exists(key) else "",
                       verify=not docker.get("SkipTLSVerify"))  # fmt: skip
    return Endpoint(str(docker["Host"]), tls, name)
