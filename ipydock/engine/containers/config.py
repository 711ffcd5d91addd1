"""``run``/``create`` flags plus the image config -> the container's Docker-like config (pure).

::

    RunOptions (flags as given) --+--> parse_mounts()  -v / --mount -> MountSpec list
    image config (Env, Cmd, ...) -'--> container_config() -> {"Config": ..., "HostConfig": ...}

Nothing here touches the disk: the container layer resolves volumes, image layers and users
and writes the result. Flag semantics are docker's: ``--entrypoint ""`` clears the image's
entrypoint (and then its CMD too), a command replaces CMD, ``-e K`` passes K from the caller's
environment, ``--memory 64m`` takes docker's units.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from ipydock.engine.network import ports
from ipydock.engine.volumes import valid_name
from ipydock.errors import InvalidMountSpec, UsageError
from ipydock.models.containers import RunOptions

__all__ = [
    "MountSpec",
    "RunOptions",
    "container_config",
    "parse_bytes",
    "parse_mounts",
    "parse_restart",
]


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
    if source.startswith("/"):
        return MountSpec("bind", os.path.normpath(target), os.path.normpath(source), ro)
    if not valid_name(source):
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
        if not source.startswith("/"):
            raise InvalidMountSpec(text, "bind source must be an absolute host path")
        return MountSpec("bind", os.path.normpath(target), os.path.normpath(source), ro)
    if kind == "volume":
        if source and not valid_name(source):
            raise InvalidMountSpec(text, f"invalid volume name {source!r}")
        return MountSpec("volume", os.path.normpath(target), source, ro)
    if kind == "tmpfs":
        if source:
            raise InvalidMountSpec(text, "source is not allowed for tmpfs mounts")
        opts = tuple(o for o in (f"size={parse_bytes(size)}" if size else "",
                                 f"mode={mode}" if mode else "") if o)  # fmt: skip
        return MountSpec("tmpfs", os.path.normpath(target), "", ro, opts)
    raise InvalidMountSpec(text, f"mount type {kind!r} is not bind, volume or tmpfs")


def _merge_env(image_env: list[str], extra: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image_env, *extra]:
        key, _, value = item.partition("=")
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def _bindings(opts: RunOptions, img: dict[str, Any]) -> list[ports.Binding]:
    """``-p`` values, and with ``-P`` every exposed port not published by ``-p``."""
    given = ports.parse(opts.publish)
    if opts.publish_all:
        done = {b.key() for b in given}
        given += [b for b in ports.parse(sorted(img.get("ExposedPorts") or {}))
                  if b.key() not in done]  # fmt: skip
    return given


def container_config(
    container_id: str, name: str, image_id: str, image_ref: str, image_config: dict[str, Any],
    opts: RunOptions, created: str,
) -> dict[str, Any]:  # fmt: skip
    """The record ``config.json`` keeps: what docker's inspect shows, minus networking."""
    img = image_config.get("config") or {}
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = list(opts.command)
    else:
        entrypoint = list(img.get("Entrypoint") or [])
        cmd = list(opts.command) or list(img.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise UsageError("No command specified (the image has no CMD/ENTRYPOINT; give one)")
    if opts.network.startswith("container:"):
        raise UsageError(f"--network {opts.network}: not supported by the bundled engine")
    hostname = opts.hostname or container_id[:12]
    return {
        "Id": container_id,
        "Name": "/" + name,
        "Created": created,
        "Image": image_id,
        "Path": argv[0],
        "Args": argv[1:],
        "Config": {
            "Hostname": hostname,
            "User": opts.user if opts.user is not None else img.get("User", ""),
            "Env": _merge_env(list(img.get("Env") or []), opts.environment()),
            "Cmd": cmd,
            "Entrypoint": entrypoint or None,
            "WorkingDir": opts.workdir or img.get("WorkingDir") or "",
            "Image": image_ref,
            "Volumes": img.get("Volumes") or None,
            "StopSignal": opts.stop_signal or img.get("StopSignal") or "SIGTERM",
            "StopTimeout": opts.stop_timeout,
            "OpenStdin": opts.interactive,
            "Labels": {**(img.get("Labels") or {}), **opts.labels},
            "ExposedPorts": img.get("ExposedPorts") or None,
        },
        "HostConfig": {
            "Binds": list(opts.volumes),
            "Mounts": list(opts.mounts),
            "Memory": parse_bytes(opts.memory) or 0,
            "PidsLimit": opts.pids_limit,
            "NanoCpus": round(opts.cpus * 1e9) if opts.cpus else 0,
            "NetworkMode": opts.network,
            "Privileged": opts.privileged,
            "CapAdd": list(opts.cap_add),
            "CapDrop": list(opts.cap_drop),
            "ReadonlyRootfs": opts.read_only,
            "RestartPolicy": parse_restart(opts.restart),
            "AutoRemove": opts.auto_remove,
            "Links": list(opts.links),
            "PortBindings": ports.to_host_config(_bindings(opts, img)),
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                opts.network: {"Aliases": list(opts.network_aliases), "IPv4Address": opts.ip or ""}
            }
        },
        "Mounts": [],
    }
