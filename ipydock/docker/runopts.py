"""``RunOptions`` (the flags of ``run``/``create``) as ``POST /containers/create`` arguments,
read client-side where the docker CLI does it too (``--env-file``, ``-v``, ``--mount``, ``-p``)."""

from __future__ import annotations

from typing import Any

from docker.types import Mount

from ipydock.commands.runflags import parse_mounts, parse_publish, parse_restart
from ipydock.models import RunOptions

__all__ = ["create_args"]


def create_args(api: Any, opts: RunOptions) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_container`` for ``opts``."""
    binds, anonymous, mounts = _mounts(opts)
    port_bindings, exposed = _publish(opts.publish)
    restart = parse_restart(opts.restart) if opts.restart and opts.restart != "no" else None
    host_config = api.create_host_config(
        binds=binds or None,
        mounts=mounts or None,
        mem_limit=opts.memory,
        pids_limit=opts.pids_limit,
        nano_cpus=int(opts.cpus * 1e9) if opts.cpus else None,
        network_mode=opts.network or "none",
        privileged=opts.privileged,
        devices=list(opts.devices) or None,
        cap_add=list(opts.cap_add) or None,
        cap_drop=list(opts.cap_drop) or None,
        **_security(opts),
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
        "tty": opts.tty,
        "host_config": host_config,
        "networking_config": networking,
    }


def _security(opts: RunOptions) -> dict[str, Any]:
    """``--security-opt`` (a profile file read here, as the docker CLI does), ``--group-add``,
    ``--ulimit``, ``--init``, ``--userns``, as ``create_host_config`` takes them."""
    from docker.types import Ulimit

    from ipydock.commands.security import check_userns, parse_security_opts, parse_ulimit

    ulimits = [parse_ulimit(u) for u in opts.ulimits]
    return {
        "security_opt": parse_security_opts(opts.security_opt) or None,
        "group_add": list(opts.group_add) or None,
        "ulimits": [Ulimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in ulimits]
        or None,
        "init": opts.init or None,
        "userns_mode": check_userns(opts.userns) or None,
    }


def _mounts(opts: RunOptions) -> tuple[list[str], list[str], list[Mount]]:
    """``-v`` and ``--mount`` read by the one parser both engines use, as the SDK wants them:
    ``SRC:DST[:ro]`` binds, anonymous volume targets, and ``Mount`` objects (tmpfs)."""
    binds, anonymous, mounts = [], [], []
    for m in parse_mounts(opts.volumes, ()):
        if m.type == "volume" and not m.source:
            anonymous.append(m.target)
        else:
            binds.append(f"{m.source}:{m.target}" + (":ro" if m.readonly else ""))
    for m in parse_mounts((), opts.mounts):
        options = dict(o.split("=", 1) for o in m.options)
        mounts.append(
            Mount(
                m.target,
                m.source or None,
                type=m.type,
                read_only=m.readonly,
                tmpfs_size=options.get("size"),
                tmpfs_mode=int(options["mode"], 8) if "mode" in options else None,
            )
        )
    return binds, anonymous, mounts


def _publish(specs: tuple[str, ...]) -> tuple[dict[str, Any], list[Any]]:
    """``-p`` (read by the request layer) as the SDK's port bindings and exposed ports."""
    bindings: dict[str, Any] = {}
    exposed: list[Any] = []
    for b in parse_publish(specs):
        host = b.host_port or None
        bindings.setdefault(b.key(), []).append((b.host_ip, host) if b.host_ip else host)
        exposed.append((b.container_port, b.protocol) if b.protocol != "tcp" else b.container_port)
    return bindings, exposed
