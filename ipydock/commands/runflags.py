"""docker's ``run``/``create`` flag syntax as plain data, for both engines and every front door.

::

    -v [SRC:]DST[:ro|rw], --mount type=…  --> parse_mounts()  --> [MountSpec]
    -m 64m / --memory-swap 1g             --> parse_bytes()   --> bytes
    --restart on-failure:3                --> parse_restart() --> {"Name", "MaximumRetryCount"}
    --device /dev/x[:/dev/y[:rwm]]        --> parse_device()  --> {"PathOnHost", …}
    -p [IP:][HOST:]PORT[/tcp|udp]          --> parse_publish() --> [Binding]

Pure functions (a ``--device`` path is stat'ed, nothing else touches the system); errors are
:class:`~ipydock.errors.InvalidMountSpec` or :class:`~ipydock.errors.UsageError` with docker's
wording. A source that starts with ``.`` or ``~`` is a host path made absolute, as docker 23+
reads it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Literal

from ipydock.errors import InvalidMountSpec, InvalidNetworkConfig, UsageError

__all__ = [
    "Binding",
    "MountSpec",
    "parse_bytes",
    "parse_device",
    "parse_mounts",
    "parse_publish",
    "parse_restart",
    "valid_volume_name",
]

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def valid_volume_name(name: str) -> bool:
    """docker's rule for a local volume's name."""
    return bool(_VOLUME_NAME.match(name))


@dataclass(frozen=True)
class MountSpec:
    """One mount as the user asked for it; ``source`` is a volume name, a host path or ''."""

    type: Literal["volume", "bind", "tmpfs"]
    target: str
    source: str = ""
    readonly: bool = False
    options: tuple[str, ...] = ()


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str | int | None) -> int | None:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``512k``, plain bytes."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", text.strip().lower())
    if not match:
        raise UsageError(f"invalid size: {text!r} (e.g. 64m, 1g)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def parse_restart(text: str) -> dict[str, Any]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]`` -> Docker's RestartPolicy."""
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy {text!r}: use no, always, on-failure[:N]")
    if count and (name != "on-failure" or not count.isdigit()):
        raise UsageError(f"invalid restart policy {text!r}: only on-failure takes a count")
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": int(count or 0)}


def parse_mounts(volumes: tuple[str, ...], mounts: tuple[str, ...]) -> list[MountSpec]:
    out = [_parse_volume_flag(v) for v in volumes] + [_parse_mount_flag(m) for m in mounts]
    targets = [m.target for m in out]
    for target in targets:
        if targets.count(target) > 1:
            raise InvalidMountSpec(target, "Duplicate mount point")
    return out


def _parse_volume_flag(text: str) -> MountSpec:
    """``-v [SOURCE:]TARGET[:ro|rw]``; SOURCE an absolute host path or a volume name."""
    parts = text.split(":")
    mode = ""
    if len(parts) == 3 or (len(parts) == 2 and parts[1] in ("ro", "rw")):
        mode = parts.pop()
    if mode not in ("", "ro", "rw") or len(parts) not in (1, 2):
        raise InvalidMountSpec(text, "use -v [NAME|/HOST/PATH:]/CONTAINER/PATH[:ro|rw]")
    target = parts[-1]
    if not target.startswith("/"):
        raise InvalidMountSpec(text, f"invalid mount path: {target!r} mount path must be absolute")
    ro = mode == "ro"
    if len(parts) == 1:
        return MountSpec("volume", os.path.normpath(target), "", ro)
    source = parts[0]
    if source.startswith((".", "~")):
        source = os.path.abspath(os.path.expanduser(source))
    if source.startswith("/"):
        return MountSpec("bind", os.path.normpath(target), os.path.normpath(source), ro)
    if not valid_volume_name(source):
        raise InvalidMountSpec(
            text, f'"{source}" includes invalid characters for a local volume name, only '
            "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (host paths must be absolute)",
        )  # fmt: skip
    return MountSpec("volume", os.path.normpath(target), source, ro)


def _parse_mount_flag(text: str) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        fields[key.strip().lower()] = value if eq else "true"
    kind = fields.pop("type", "volume")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    ro = fields.pop("readonly", fields.pop("ro", "false")) in ("true", "1")
    size = fields.pop("tmpfs-size", "")
    mode = fields.pop("tmpfs-mode", "")
    if fields:
        raise InvalidMountSpec(text, f"unexpected key '{sorted(fields)[0]}' in '{text}'")
    if not target.startswith("/"):
        raise InvalidMountSpec(text, "target is required and must be an absolute path")
    if kind == "bind":
        if source.startswith((".", "~")):
            source = os.path.abspath(os.path.expanduser(source))
        if not source.startswith("/"):
            raise InvalidMountSpec(text, "bind source must be an absolute host path")
        return MountSpec("bind", os.path.normpath(target), os.path.normpath(source), ro)
    if kind == "volume":
        if source and not valid_volume_name(source):
            raise InvalidMountSpec(text, f"invalid volume name {source!r}")
        return MountSpec("volume", os.path.normpath(target), source, ro)
    if kind == "tmpfs":
        if source:
            raise InvalidMountSpec(text, "source is not allowed for tmpfs mounts")
        opts = tuple(o for o in (f"size={parse_bytes(size)}" if size else "",
                                 f"mode={mode}" if mode else "") if o)  # fmt: skip
        return MountSpec("tmpfs", os.path.normpath(target), "", ro, opts)
    raise InvalidMountSpec(text, f"mount type {kind!r} is not bind, volume or tmpfs")


def parse_device(text: str) -> dict[str, str]:
    """``--device HOST[:CONTAINER[:PERMS]]`` -> Docker's HostConfig ``Devices`` entry; the
    host path must be a device node (checked now, read again at each start)."""
    parts = text.split(":")
    if len(parts) == 2 and parts[1] and set(parts[1]) <= set("rwm"):
        parts = [parts[0], parts[0], parts[1]]  # HOST:PERMS, as docker reads it
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise UsageError(f"invalid device {text!r}: use HOST[:CONTAINER[:PERMS]]")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if not perms or set(perms) - set("rwm"):
        raise UsageError(f"invalid device {text!r}: permissions {perms!r} are not r, w, m")
    if not host.startswith("/") or not inside.startswith("/"):
        raise UsageError(f"invalid device {text!r}: paths must be absolute")
    try:
        mode = os.stat(host).st_mode
    except OSError as exc:
        raise UsageError(
            f"error gathering device information while adding custom device {host!r}: "
            f"{exc.strerror}"
        ) from exc
    if not (stat.S_ISBLK(mode) or stat.S_ISCHR(mode)):
        raise UsageError(f"--device {host}: not a device node (give a path under /dev)")
    return {"PathOnHost": host, "PathInContainer": os.path.normpath(inside),
            "CgroupPermissions": perms}  # fmt: skip


@dataclass(frozen=True)
class Binding:
    """One published port; ``host_port`` 0 means a free one, chosen when bound."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0

    def key(self) -> str:
        return f"{self.container_port}/{self.protocol}"


def _port(text: str, flag: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidNetworkConfig("-p", f"invalid {flag} port {text!r} in {flag!r}")
    return int(text)


def parse_publish(items: tuple[str, ...] | list[str]) -> list[Binding]:
    """``-p`` values as docker reads them: ``80``, ``8080:80``, ``127.0.0.1:8080:80``,
    ``127.0.0.1::80``, each with an optional ``/tcp``, ``/udp`` or ``/sctp``."""
    out = []
    for item in items:
        spec, _, proto = item.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidNetworkConfig("-p", f"invalid proto {proto!r} in {item!r}")
        parts = spec.rsplit(":", 2)
        container = _port(parts[-1], "container")
        host = parts[-2] if len(parts) >= 2 else ""
        ip = parts[0] if len(parts) == 3 else ""
        if ip:
            try:
                ipaddress.IPv4Address(ip)
            except ValueError as exc:
                raise InvalidNetworkConfig("-p", f"invalid IP address {ip!r} in {item!r}") from exc
        out.append(Binding(container, proto, ip, _port(host, "host") if host else 0))
    return out
