"""The connection to a Docker engine and the one place Docker's errors become ipydock's.

::

    connect(endpoint) ──> docker.APIClient (version negotiated: the daemon answers, or
                          EngineUnavailable says where nothing answered and what to do);
                          the endpoint (host, TLS, context) comes from docker/endpoint.py,
                          ssh:// goes through a local socket to ssh (docker/sshtunnel.py)
    with errors(host, "image", name): api call
        404 ──> ImageNotFound / ContainerNotFound / VolumeNotFound / NetworkNotFound
        409, 403 ──> NameInUse, ContainerRunning, ContainerNotRunning, VolumeInUse,
                     ImageInUse, ImageHasChildren, ImageMultiplyReferenced, Conflict
        400 ──> UsageError     503 "…swarm…" ──> SwarmUnavailable
        other ──> EngineError  no answer ──> EngineUnavailable
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import docker.tls
import requests

from ipydock.docker.endpoint import DEFAULT_HOST, Endpoint, resolve
from ipydock.errors import (
    Conflict,
    ContainerNotFound,
    ContainerNotRunning,
    ContainerRunning,
    EngineError,
    EngineUnavailable,
    ImageHasChildren,
    ImageInUse,
    ImageMultiplyReferenced,
    ImageNotFound,
    IPyDockError,
    NameInUse,
    NetworkInUse,
    NetworkNotFound,
    NotFound,
    ServiceNotFound,
    SwarmUnavailable,
    UsageError,
    VolumeInUse,
    VolumeNotFound,
)

__all__ = ["DEFAULT_HOST", "connect", "errors", "translate"]


PROBE_TIMEOUT = 15  # seconds an engine has to answer ``/version``: a hung one fails in time


def connect(endpoint: Endpoint | str | None = None, timeout: int = 60
            ) -> tuple[Any, str, Callable[[], None]]:  # fmt: skip
    """``(APIClient, host, close)`` for ``endpoint`` (a URL, or :func:`resolve`'s answer for
    none), after the daemon answered a version request; ``close`` ends the client and, for an
    ``ssh://`` host, its ssh sessions (:mod:`ipydock.docker.sshtunnel`)."""
    if not isinstance(endpoint, Endpoint):
        endpoint = resolve(endpoint)
    host = endpoint.host
    tls: Any = False
    if endpoint.tls is not None:
        t = endpoint.tls
        tls = docker.tls.TLSConfig(
            client_cert=(t.cert, t.key) if t.cert else None, ca_cert=t.ca or None,
            verify=t.ca if (t.verify and t.ca) else t.verify,
        )  # fmt: skip
    tunnel = None
    if host.startswith("ssh://"):
        from ipydock.docker.sshtunnel import SshTunnel

        tunnel = SshTunnel(host)
    try:
        api = _client(tunnel.url if tunnel else host, tls, timeout)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        why = _reason(exc)
        if isinstance(exc, requests.exceptions.Timeout) or "timed out" in why:
            why = f"no answer in {min(timeout, PROBE_TIMEOUT)} s"  # it accepts, says nothing
        hint = "check --tlscacert/--tlscert/--tlskey or DOCKER_CERT_PATH" if why.startswith(
            "TLS:") else ""  # fmt: skip
        if tunnel is not None:
            tunnel.close()
            why = tunnel.last_error or why  # ssh's own words: refused, host key, denied
            hint = (f"check that `{' '.join(tunnel.argv[:-1])} docker version` works: keys, "
                    "known_hosts, docker on the remote host")  # fmt: skip
        raise EngineUnavailable(host, why, hint) from exc

    def close() -> None:
        api.close()
        if tunnel is not None:
            tunnel.close()

    return api, host, close


def _client(host: str, tls: Any, timeout: int) -> Any:
    """An APIClient at the API version both sides speak (docker's negotiation, from the
    server's ``/version``). With TLS, ``requests`` must not trust the environment: it would
    put ``$REQUESTS_CA_BUNDLE`` before the CA the engine's certificate is checked against."""
    from docker.constants import DEFAULT_DOCKER_API_VERSION, MINIMUM_DOCKER_API_VERSION
    from docker.utils import version_lt

    kw: dict[str, Any] = {"base_url": host, "timeout": timeout, "tls": tls}
    probe = docker.APIClient(
        version=MINIMUM_DOCKER_API_VERSION, **{**kw, "timeout": min(timeout, PROBE_TIMEOUT)}
    )  # asks nothing yet
    probe.trust_env = not tls
    try:
        server = str(probe.version(api_version=False)["ApiVersion"])
    finally:
        probe.close()
    version = server if version_lt(server, DEFAULT_DOCKER_API_VERSION) else \
        DEFAULT_DOCKER_API_VERSION  # fmt: skip
    api = docker.APIClient(version=version, **kw)
    api.trust_env = not tls
    return api


@contextmanager
def errors(host: str, kind: str = "", name: str = "") -> Iterator[None]:
    """Translate what the ``docker`` SDK raises inside; ``kind`` (image, container, volume,
    network) and ``name`` say what a bare 404 is about."""
    try:
        yield
    except IPyDockError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise translate(exc, host, kind, name) from exc


_NOT_FOUND = (
    (re.compile(r"No such image: (\S+)", re.I), ImageNotFound),
    (re.compile(r"No such container: (\S+)", re.I), ContainerNotFound),
    (re.compile(r"network (\S+) not found", re.I), NetworkNotFound),
    (re.compile(r"(?:get|remove) (\S+): no such volume", re.I), VolumeNotFound),
    (re.compile(r"no such volume:? (\S+)", re.I), VolumeNotFound),
    (re.compile(r"service (\S+) not found", re.I), ServiceNotFound),
)
_BY_KIND: dict[str, type[NotFound]] = {
    "image": ImageNotFound,
    "container": ContainerNotFound,
    "volume": VolumeNotFound,
    "network": NetworkNotFound,
    "service": ServiceNotFound,
}


def translate(exc: Exception, host: str, kind: str = "", name: str = "") -> IPyDockError:
    """The ipydock error for one SDK exception (see the module docstring)."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):  # it answered, but not JSON
        return EngineError(0, f"the engine at {host} answered something that is not JSON "
                           f"({exc})")  # fmt: skip
    if not isinstance(exc, docker.errors.APIError) or exc.response is None:
        if isinstance(exc, docker.errors.APIError):
            return EngineError(0, str(exc.explanation or exc))
        return EngineUnavailable(host, _reason(exc))
    status = exc.response.status_code
    message = str(exc.explanation or exc).strip()
    if status == 404:
        for pattern, cls in _NOT_FOUND:
            m = pattern.search(message)
            if m:
                return cls(m.group(1))  # type: ignore[call-arg]
        return _BY_KIND.get(kind, ImageNotFound)(name or message)  # type: ignore[call-arg]
    if status in (403, 409):
        return _conflict(message)
    if status == 400:
        return UsageError(message)
    if status == 500:  # Podman answers its refusals as 500s, in its own words
        conflict = _conflict(message)
        if type(conflict) is not Conflict:
            return conflict
    if status == 503 and "swarm" in message.lower():  # not a manager, not in a swarm
        return SwarmUnavailable(host, message.split(". ")[0])
    return EngineError(status, message)


def _conflict(message: str) -> Conflict:
    m = re.search(r'container name "/([^"]+)" is already in use by container "(\w+)"', message)
    m = m or re.search(r'the container name "([^"]+)" is already in use by (\w+)', message)
    if m:  # dockerd's words (409), Podman's (500)
        return NameInUse(m.group(1), m.group(2))
    m = re.search(r"You cannot remove a running container (\w+)", message) or re.search(
        r"cannot remove container (\w+) as it is running", message
    )  # dockerd's, Podman's
    if m:
        return ContainerRunning(m.group(1))
    m = re.search(r"Container (\w+) is not running", message)
    if m:
        return ContainerNotRunning(m.group(1))
    m = re.search(r"remove (\S+): volume is in use - \[([^\]]*)\]", message) or re.search(
        r"volume (\S+) is being used by the following container\(s\): ([\w, ]+)", message
    )  # dockerd's words, then Podman's  # fmt: skip
    if m:
        return VolumeInUse(m.group(1), [c.strip() for c in m.group(2).split(",") if c.strip()])
    m = re.search(r'"([^"]+)" has associated containers with it', message)
    if m:  # Podman: rm of a network with containers (it names none)
        return NetworkInUse(m.group(1), [])
    return _image_conflict(message) or Conflict(message)


def _image_conflict(message: str) -> Conflict | None:
    """dockerd's ``image rm`` refusals as the bundled engine's typed errors, so that a caller
    branches the same way on both engines (the IDs are what dockerd names, often short)."""
    m = re.search(r"container (\w+) is using its referenced image (\w+)", message)
    if m:  # untagging the last name of an image a stopped container uses
        return ImageInUse(m.group(2), [m.group(1)], running=False)
    m = re.search(r"unable to delete (\w+) .* image is being used by (running|stopped) "
                  r"container (\w+)", message)  # fmt: skip
    if m:
        return ImageInUse(m.group(1), [m.group(3)], running=m.group(2) == "running")
    m = re.search(r"unable to delete (\w+) .* image has dependent child images", message)
    if m:
        return ImageHasChildren(m.group(1), [])
    m = re.search(r"unable to delete (\w+) .* image is referenced in multiple repositories",
                  message)  # fmt: skip
    if m:
        return ImageMultiplyReferenced(m.group(1), [])
    m = re.search(r"image (?:sha256:)?(\w+) is in use: image used by (\w+)", message)
    if m:  # Podman's words; it does not say whether the container runs (it refuses both)
        return ImageInUse(m.group(1), [m.group(2)], running=False)
    m = re.search(r'unable to delete image "(\w+)" by ID with more than one tag \(\[([^\]]*)\]',
                  message)  # Podman's words  # fmt: skip
    if m:
        from ipydock.docker.convert import familiar

        return ImageMultiplyReferenced(m.group(1), [familiar(t) for t in m.group(2).split()])
    return None


def _reason(exc: BaseException) -> str:
    """A one-line why: the innermost cause (``No such file or directory``, ``Connection
    refused``) rather than urllib3's nested wrapper text."""
    text = str(exc)
    m = re.search(r"certificate verify failed: [^'\"(]+", text)
    if m:  # the engine's certificate is not signed by the CA given (--tlscacert)
        return f"TLS: {m.group(0).strip()}"
    m = re.search(r"(\[Errno \d+\] [^'\")]+)", text)
    if m:
        return m.group(1).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
