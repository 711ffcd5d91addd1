"""``RunOptions`` (the flags of ``run``/``create``) as ``POST /containers/create`` arguments,
read client-side where the docker CLI does it too (``--env-file``, ``-v``, ``--mount``, ``-p``)."""

from __future__ import annotations

import os
from typing import Any

from docker.types import Mount

from ipydock.errors import InvalidMountSpec, UsageError
from ipydock.models import RunOptions

__all__ = ["create_args"]


def create_args(api: Any, opts: RunOptions) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_container`` for ``opts``."""
    binds, anonymous = _volumes(opts.volumes)
    port_bindings, exposed = _publish(opts.publish)
    restart: dict[str, Any] | None = None
    if opts.restart and opts.restart != "no":
        name, _, count = opts.restart.partition(":")
        restart = {"Name": name, "MaximumRetryCount": int(count or 0)}
    host_config = api.create_host_config(
        binds=binds or None,
        mounts=[_mount(m) for m in opts.mounts] or None,
        mem_limit=opts.memory,
        pids_limit=opts.pids_limit,
        nano_cpus=int(opts.cpus * 1e9) if opts.cpus else None,
        network_mode=opts.network or "none",
        privileged=opts.privileged,
        cap_add=list(opts.cap_add) or None,
        cap_drop=list(opts.cap_drop) or None,
        read_only=opts.read_only,
        restart_policy=restart,
        port_bindings=port_bindings or None,
        publish_all_ports=opts.publish_all,
        links={item.partition(":")[0]: item.partition(":")[2] or item for item in opts.links}
        or None,
    )
    networking = None
    if opts.network_aliases or opts.ip:  # --network-alias, --ip: the endpoint's config
        endpoint = api.create_endpoint_config(aliases=list(opts.network_aliases) or None,
                                              ipv4_address=opts.ip)  # fmt: skip
        networking = api.create_networking_config({opts.network: endpoint})
    return {
        "image": opts.image,
        "command": list(opts.command) or None,
        "name": opts.name,
        "environment": opts.environment() or None,
        "working_dir": opts.workdir,
        "user": opts.user,
        "entrypoint": [opts.entrypoint] if opts.entrypoint is not None else None,
        "hostname": opts.hostname,
        "volumes": anonymous or None,
        "ports": exposed or None,
        "labels": dict(opts.labels) or None,
        "stop_signal": opts.stop_signal,
        "stop_timeout": opts.stop_timeout,
        "stdin_open": opts.interactive,
        "host_config": host_config,
        "networking_config": networking,
    }


def _volumes(specs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``-v``: ``SRC:DST[:ro]`` binds (SRC a host path or a volume name) and ``DST``
    anonymous volumes."""
    binds, anonymous = [], []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 1:
            anonymous.append(parts[0])
        elif len(parts) in (2, 3):
            src = parts[0]
            if src.startswith((".", "~")):
                src = os.path.abspath(os.path.expanduser(src))
            binds.append(":".join([src, *parts[1:]]))
        else:
            raise InvalidMountSpec(spec, "use [SRC:]DST[:ro]")
    return binds, anonymous


def _mount(spec: str) -> Mount:
    """``--mount type=bind,source=/a,target=/b,readonly``."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        fields[key.strip()] = value if eq else "true"
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise InvalidMountSpec(spec, "target= is required")
    source = fields.get("source") or fields.get("src")
    kind = fields.get("type", "volume")
    if kind == "bind" and source:
        source = os.path.abspath(source)
    readonly = fields.get("readonly", fields.get("ro", "false")) in ("true", "1")
    return Mount(target, source, type=kind, read_only=readonly)


def _publish(specs: tuple[str, ...]) -> tuple[dict[str, Any], list[Any]]:
    """``-p [IP:][HOST:]CONTAINER[/PROTO]`` as port bindings and exposed ports."""
    bindings: dict[str, Any] = {}
    exposed: list[Any] = []
    for spec in specs:
        body, _, proto = spec.partition("/")
        proto = proto or "tcp"
        parts = body.rsplit(":", 2)
        try:
            container = int(parts[-1])
            host = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        except ValueError:
            raise UsageError(f"invalid -p {spec!r}: use [IP:][HOST:]CONTAINER[/tcp|udp]") from None
        ip = parts[0] if len(parts) == 3 else None
        key = f"{container}/{proto}"
        target = (ip, host) if ip else host
        bindings.setdefault(key, []).append(target)
        exposed.append((container, proto) if proto != "tcp" else container)
    return bindings, exposed
