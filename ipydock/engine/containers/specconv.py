"""A container record -> the runtime's :class:`~ipydock.engine.runtime.Spec` (run at each start).

::

    config.json (Config, HostConfig, Mounts) --+
    image lower dirs + the container's init dir -+--> build_spec() --> Spec --> build_plan()
    /etc/passwd, /etc/group of the merged view -'     (user "app" -> uid, gid, groups, HOME)

Users are resolved at start, against the container's own files (upper dir first), as Docker
does: ``name``, ``uid``, ``name:group``, ``uid:gid``; a name that is not in the image's
``/etc/passwd`` is an error naming it.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from typing import Any, Literal

from ipydock.commands.security import security_settings
from ipydock.engine.runtime import EtcFiles, Mount, Network, Resources, Rootfs, Spec, User
from ipydock.engine.runtime.spec import DeviceNode, Ulimit, default_env
from ipydock.engine.store.layerview import LayerView
from ipydock.errors import UsageError

__all__ = ["build_spec", "parse_signal", "resolve_user", "terminal_env"]


def parse_signal(text: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``15`` -> 15, as docker's ``--signal`` and ``StopSignal``."""
    if isinstance(text, int) or str(text).isdigit():
        return int(text)
    name = str(text).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError as exc:
        raise UsageError(f"invalid signal: {text}") from exc


def _table(text: str | None) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines() if line and line[0] != "#"]


def resolve_user(user: str, root: LayerView) -> tuple[User, str]:
    """(uid, gid, additional gids) and HOME for ``user``, read from the container's root."""
    passwd = _table(root.read_text("etc/passwd"))
    groups = _table(root.read_text("etc/group"))
    name, _, group = (user or "0").partition(":")
    entry = next((p for p in passwd if len(p) >= 7 and (p[0] == name or p[2] == name)), None)
    if entry is None and not name.isdigit():
        raise UsageError(
            f"unable to find user {name}: no matching entries in passwd file (use a uid)"
        )
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    if group:
        found = next((g for g in groups if len(g) >= 3 and (g[0] == group or g[2] == group)), None)
        if found is None and not group.isdigit():
            raise UsageError(f"unable to find group {group}: no matching entries in group file")
        gid = int(found[2]) if found else int(group)
    login = entry[0] if entry else None
    extra = tuple(
        int(g[2]) for g in groups
        if len(g) >= 4 and login and login in g[3].split(",") and int(g[2]) != gid
    )  # fmt: skip
    return User(uid, gid, extra), home


def build_spec(
    config: dict[str, Any], lower: list[str], dirs: dict[str, str], *, rootless: bool = False,
    console_size: tuple[int, int] = (0, 0),
) -> Spec:  # fmt: skip
    """``lower``: bottom first; ``dirs``: upper, work, merged, hostname, hosts, resolv_conf.
    ``rootless``: spawned from a user namespace (no cgroup limits: the caller warns).
    ``Config.Tty``: a terminal of ``console_size`` (rows, cols) and ``TERM=xterm``."""
    cfg, host = config["Config"], config["HostConfig"]
    tty = bool(cfg.get("Tty"))
    view = LayerView([*lower, dirs["upper"]])
    user, home = resolve_user(cfg.get("User") or "", view)
    if host.get("GroupAdd"):
        user = _add_groups(user, host["GroupAdd"], view)
    memory = host.get("Memory") or None
    driver = config.get("GraphDriver", {}).get("Name")
    if driver == "vfs":  # rootless on vfs: the supervisor made ``merged`` a copy of the root
        rootfs = Rootfs.directory(dirs["merged"])
    else:
        # --rm: the layer goes with the run, no sync when it is unmounted (as Podman's)
        rootfs = Rootfs.overlay(lower, dirs["upper"], dirs["work"], dirs["merged"],
                                fuse=driver == "fuse-overlayfs",
                                volatile=bool(host.get("AutoRemove")))  # fmt: skip
    nnp, profile = security_settings(host.get("SecurityOpt") or ())
    args, init_mounts = _with_init((config["Path"], *config["Args"]), host.get("Init"))
    return Spec(
        rootfs=rootfs,
        args=args,
        env=terminal_env(default_env(tuple(cfg["Env"]), cfg["Hostname"], home), tty),
        cwd=cfg.get("WorkingDir") or "/",
        user=user,
        hostname=cfg["Hostname"],
        etc=EtcFiles(dirs["hostname"], dirs["hosts"], dirs["resolv_conf"]),
        mounts=(*init_mounts, *(_mount(m) for m in config.get("Mounts", []))),
        readonly_rootfs=host.get("ReadonlyRootfs", False),
        cap_add=tuple(host.get("CapAdd") or ()),
        cap_drop=tuple(host.get("CapDrop") or ()),
        privileged=host.get("Privileged", False),
        no_new_privs=True if nnp is None else nnp,
        seccomp=profile,
        ulimits=tuple(Ulimit(u["Name"], u["Soft"], u["Hard"]) for u in host.get("Ulimits") or ()),
        devices=tuple(_device(d) for d in host.get("Devices") or ()),
        network=_network(host.get("NetworkMode") or "none"),
        resources=Resources(
            memory=memory,
            pids_limit=host.get("PidsLimit"),
            cpus=(host.get("NanoCpus") or 0) / 1e9 or None,
        ),
        rootless=rootless,
        rootless_ids=_rootless_ids() if rootless else 1,
        rootless_why=_why_single() if rootless and (user.uid, user.gid) != (0, 0) else "",
        terminal=tty,
        console_size=console_size,
    )


def _add_groups(user: User, groups: list[str], root: LayerView) -> User:
    """``--group-add``: names looked up in the container's ``/etc/group``, or gids."""
    table = _table(root.read_text("etc/group"))
    extra = list(user.additional_gids)
    for group in groups:
        found = next((g for g in table if len(g) >= 3 and g[0] == group), None)
        if found is None and not group.isdigit():
            raise UsageError(f"Unable to find group {group}: no matching entries in group file "
                             "(use a gid)")  # fmt: skip
        gid = int(found[2]) if found else int(group)
        if gid not in extra:
            extra.append(gid)
    return User(user.uid, user.gid, tuple(extra))


#: Where ``--init`` puts its init in the container, as docker does.
INIT_PATH = "/sbin/docker-init"


def init_binary() -> str:
    """The host's init for ``--init``: ``$IPYDOCK_INIT``, else tini's static build (docker's
    own ``docker-init`` on Debian is a link to it): static, so it runs in any image, also
    ``FROM scratch`` ones without a C library."""
    for candidate in (os.environ.get("IPYDOCK_INIT"), "tini-static", "docker-init"):
        path = candidate and shutil.which(candidate)
        if path:
            return os.path.realpath(path)
    raise UsageError("--init needs tini's static build on the host (apt-get install tini), "
                     "or IPYDOCK_INIT=/path/to/a/static/init")  # fmt: skip


def _with_init(
    args: tuple[str, ...], init: bool | None
) -> tuple[tuple[str, ...], tuple[Mount, ...]]:
    """``--init``: the init runs as pid 1 with the command as its child (docker's
    ``/sbin/docker-init -- CMD``), bound read-only from the host."""
    if not init:
        return args, ()
    return (INIT_PATH, "--", *args), (Mount(INIT_PATH, "bind", init_binary(), readonly=True),)


def terminal_env(env: tuple[str, ...], tty: bool) -> tuple[str, ...]:
    """With a terminal, ``TERM=xterm`` unless the container sets TERM, as docker's daemon
    adds it (at start, so ``inspect`` does not show it)."""
    if not tty or any(item.startswith("TERM=") for item in env):
        return env
    return ("TERM=xterm", *env)


def _device(d: dict[str, str]) -> DeviceNode:
    """A ``--device`` entry as the host has it now; raises UsageError if it is gone."""
    host = d["PathOnHost"]
    try:
        st = os.stat(host)
    except OSError as exc:
        raise UsageError(f"--device {host}: {exc.strerror}") from exc
    if not (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        raise UsageError(f"--device {host}: not a device node")
    kind: Literal["b", "c"] = "b" if stat.S_ISBLK(st.st_mode) else "c"
    return DeviceNode(d["PathInContainer"], kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                      d.get("CgroupPermissions") or "rwm", host)  # fmt: skip


def _rootless_ids() -> int:
    from ipydock.engine.runtime.idranges import mapped_ids

    return mapped_ids()


def _why_single() -> str:
    from ipydock.engine.runtime.idranges import why_single

    return why_single()


def _network(mode: str) -> Network:
    """host, or a netns of its own: bridge networks are wired into it before exec."""
    return Network(mode="host") if mode == "host" else Network(mode="none")


def _mount(m: dict[str, Any]) -> Mount:
    if m["Type"] == "tmpfs":
        return Mount(m["Destination"], "tmpfs", readonly=not m["RW"],
                     options=tuple(m.get("Options", ())))  # fmt: skip
    return Mount(m["Destination"], "bind", m["Source"], readonly=not m["RW"])
