"""``stack deploy -c compose.yml NAME``: a compose file as swarm services and overlay networks.

::

    compose.yml ──load()──> {"services": …, "networks": …}
        networks:  NAME_default and each declared one a service uses ──> NAME_net,
                   driver overlay, attachable, labelled com.docker.stack.namespace=NAME
        services:  NAME_svc ──> Swarm.create_service (image, command, environment, ports,
                   deploy.replicas / deploy.mode, hostname), or an update when it exists

The compose keys docker's ``stack deploy`` understands and a notebook's cluster needs are
read; keys a swarm does not use (``build``, ``container_name``, …) are listed in one warning,
as docker prints "Ignoring unsupported options". Anything else unknown is an error naming it.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from ipydock.errors import UsageError

if TYPE_CHECKING:
    from ipydock.docker.swarm import Swarm

__all__ = ["deploy", "load"]

_SERVICE_KEYS = {"image", "command", "entrypoint", "environment", "ports", "networks",
                 "deploy", "hostname", "labels"}  # fmt: skip
_IGNORED = {"build", "container_name", "depends_on", "restart", "links", "volumes",
            "cap_add", "cap_drop", "devices", "tmpfs", "security_opt"}  # fmt: skip


def load(path: str) -> dict[str, Any]:
    """The compose file at ``path``, parsed (one clear error for a file that is not one)."""
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise UsageError(f"stack deploy: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"stack deploy: {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise UsageError(f"stack deploy: {path} has no `services:` mapping (a compose file "
                         "lists its services under `services:`)")  # fmt: skip
    return data


def deploy(swarm: Swarm, name: str, compose: dict[str, Any]) -> list[str]:
    """Create (or update) the stack's networks and services; docker's lines of what it did."""
    done: list[str] = []
    ignored = sorted({k for svc in compose["services"].values() for k in (svc or {})
                      if k in _IGNORED})  # fmt: skip
    if ignored:
        swarm.warnings.append(f"Ignoring unsupported options: {', '.join(ignored)}")
    for svc_name, svc in compose["services"].items():
        unknown = set(svc or {}) - _SERVICE_KEYS - _IGNORED
        if unknown:
            raise UsageError(f"stack deploy: service {svc_name}: unsupported keys "
                             f"{', '.join(sorted(unknown))}")  # fmt: skip
        if not (svc or {}).get("image"):
            raise UsageError(f"stack deploy: service {svc_name} has no image (a swarm runs "
                             "images: build and push it first)")  # fmt: skip
    label = {"com.docker.stack.namespace": name}
    existing = {n["Name"] for n in swarm.api.networks()}
    declared = dict(compose.get("networks") or {})
    used = {n for svc in compose["services"].values() for n in _networks(svc or {})}
    for net in [n for n in ("default", *declared) if n in used]:  # docker makes only these
        full = f"{name}_{net}"
        if full in existing:
            continue
        opts = declared.get(net) or {}
        swarm.api.create_network(full, driver=opts.get("driver", "overlay"), attachable=True,
                                 labels=label, check_duplicate=True)  # fmt: skip
        done.append(f"Creating network {full}")
    current = {s["Spec"]["Name"]: s for s in swarm.api.services(filters={"label": label})}
    for svc_name, svc in compose["services"].items():
        full = f"{name}_{svc_name}"
        if full in current:
            swarm.update_service(full, image=svc["image"], replicas=_replicas(svc))
            done.append(f"Updating service {full} (id: {current[full]['ID']})")
            continue
        swarm.create_service(
            svc["image"], _command(svc), name=full, replicas=_replicas(svc),
            mode=(svc.get("deploy") or {}).get("mode", "replicated"),
            networks=[f"{name}_{n}" for n in _networks(svc)], publish=_ports(svc),
            env=_environment(svc), labels=label, hostname=svc.get("hostname"),
            container_labels=label, endpoint_mode=(svc.get("deploy") or {}).get("endpoint_mode"),
        )  # fmt: skip
        done.append(f"Creating service {full}")
    return done


def _replicas(svc: dict[str, Any]) -> int | None:
    deploy = svc.get("deploy") or {}
    if deploy.get("mode", "replicated") == "global":
        return None
    return int(deploy.get("replicas", 1))


def _command(svc: dict[str, Any]) -> list[str]:
    entry, cmd = svc.get("entrypoint"), svc.get("command")
    words = [*_words(entry), *_words(cmd)]
    return words


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _networks(svc: dict[str, Any]) -> list[str]:
    nets = svc.get("networks") or ["default"]
    return list(nets) if not isinstance(nets, dict) else list(nets.keys())


def _ports(svc: dict[str, Any]) -> list[str]:
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append(f"{p['published']}:{p['target']}/{p.get('protocol', 'tcp')}")
        else:
            out.append(str(p))
    return out


def _environment(svc: dict[str, Any]) -> list[str]:
    env = svc.get("environment") or []
    if isinstance(env, dict):
        return [f"{k}={'' if v is None else v}" for k, v in env.items()]
    return [str(e) for e in env]
