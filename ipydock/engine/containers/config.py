"""``run``/``create`` flags plus the image config -> the container's Docker-like config (pure).

::

    RunOptions (flags as given) --+--> commands.runflags: -v / --mount -> MountSpec list, ...
    image config (Env, Cmd, ...) -'--> container_config() -> {"Config": ..., "HostConfig": ...}

Nothing here touches the disk: the container layer resolves volumes, image layers and users
and writes the result. Flag semantics are docker's: ``--entrypoint ""`` clears the image's
entrypoint (and then its CMD too), a command replaces CMD, ``-e K`` passes K from the caller's
environment, ``--memory 64m`` takes docker's units.
"""

from __future__ import annotations

from typing import Any

from ipydock.commands.runflags import (
    parse_bytes,
    parse_device,
    parse_restart,
)
from ipydock.engine.network import ports
from ipydock.errors import UsageError
from ipydock.models.containers import RunOptions

__all__ = ["RunOptions", "container_config"]


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


def _security(opts: RunOptions) -> dict[str, Any]:
    """``SecurityOpt`` (a profile file read and checked now: a bad one fails the create),
    ``GroupAdd``, ``Ulimits``, ``Init``, ``UsernsMode``, as docker's HostConfig has them."""
    from ipydock.commands.security import (
        check_userns,
        parse_security_opts,
        parse_ulimit,
        security_settings,
    )
    from ipydock.engine.runtime import seccomp

    security = parse_security_opts(opts.security_opt)
    _nnp, profile = security_settings(security)
    if profile not in ("", "unconfined"):
        seccomp.parse(profile, "(--security-opt seccomp)")
    if opts.init:
        from ipydock.engine.containers.specconv import init_binary

        init_binary()  # none on the host: say so now, not at start
    return {
        "SecurityOpt": security or None,
        "GroupAdd": list(opts.group_add) or None,
        "Ulimits": [parse_ulimit(u) for u in opts.ulimits] or None,
        "Init": opts.init or None,
        "UsernsMode": check_userns(opts.userns),
    }


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
            "Tty": opts.tty,
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
            "Devices": [parse_device(d) for d in opts.devices],
            "CapAdd": list(opts.cap_add),
            "CapDrop": list(opts.cap_drop),
            **_security(opts),
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
