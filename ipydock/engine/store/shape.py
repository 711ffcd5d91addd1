"""The shape of JSON documents that come from outside: archives' manifest.json and index.json,
registries' manifests and indexes, image configs.

When: before any code indexes into such a document. A document of the wrong shape (a list
where an object belongs, a number for a digest, bytes that are not UTF-8 JSON) raises
:class:`ShapeError` naming the field; each boundary turns it into its own error once
(``archive_errors`` -> ArchiveError, ``pull`` -> RegistryError).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "ShapeError",
    "array",
    "descriptor",
    "digest",
    "json_object",
    "json_value",
    "obj",
    "text",
]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


class ShapeError(ValueError):
    """A document does not have the shape its format says."""


def json_value(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ShapeError(f"{what} is not valid JSON ({exc})") from None


def json_object(data: bytes, what: str) -> dict[str, Any]:
    return obj(json_value(data, what), what)


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} is not a JSON object")
    return value


def array(value: Any, what: str) -> list[Any]:
    """A list; a missing (null) one is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{what} is not a list")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ShapeError(f"{what} is not a string")
    return value


def digest(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise ShapeError(f"{what} is not a sha256 digest")
    return value


def descriptor(value: Any, what: str) -> dict[str, Any]:
    """An OCI descriptor: an object with a sha256 digest and, if given, a size >= 0."""
    desc = obj(value, what)
    digest(desc.get("digest"), f"{what}'s digest")
    size = desc.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ShapeError(f"{what}'s size is not a byte count")
    if not isinstance(desc.get("mediaType", ""), str):
        raise ShapeError(f"{what}'s mediaType is not a string")
    return desc
