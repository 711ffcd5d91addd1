"""Docker image references: parse, normalise (``docker.io/library/``) and print them.

The grammar is the one of distribution/reference: an optional registry host, lowercase path
components, an optional ``:tag`` and an optional ``@sha256:…`` digest. Kernel-free and pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipydock.errors import InvalidReference

__all__ = ["DEFAULT_DOMAIN", "Reference", "familiar_parts", "is_digest", "parse", "try_parse"]

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Fully qualified repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """Repository as docker prints it: ``busybox``, ``me/app``, ``localhost:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix("library/")

    @property
    def full(self) -> str:
        """The stored form, e.g. ``docker.io/library/busybox:latest``."""
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """``busybox`` means ``busybox:latest``; a digest reference keeps no default tag."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG, None)

    def __str__(self) -> str:
        return self.familiar


def parse(text: str) -> Reference:
    """Parse and normalise a reference; raise :class:`InvalidReference` when it is not one."""
    if not text or text != text.strip():
        raise InvalidReference(text, "empty or surrounded by spaces")
    if _HEX64_RE.match(text):
        raise InvalidReference(text, "a 64-hex image ID cannot be used as a repository name")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(text, "digest must be sha256: and 64 lowercase hex digits")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(text, f"bad tag {tag!r}")
    domain, path = _split_domain(rest)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(text, f"bad registry host {domain!r}")
    if not _PATH_RE.match(path):
        raise InvalidReference(text, "repository names must be lowercase letters, digits and . _ -")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference(text, "repository name longer than 255 characters")
    return Reference(domain, path, tag, digest)


def familiar_parts(full: str) -> tuple[str, str]:
    """(repository, tag) as docker prints them, from a stored, already valid ``full`` name.

    A fast path for listing thousands of tags; anything else should use :func:`parse`.
    """
    name, _, tag = full.rpartition(":")
    if "/" in tag or not name:  # the colon was a registry port: no tag
        name, tag = full, "<none>"
    if name.startswith("docker.io/"):
        name = name[len("docker.io/") :].removeprefix("library/")
    return name, tag


def try_parse(text: str) -> Reference | None:
    try:
        return parse(text)
    except InvalidReference:
        return None


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    return domain, path
