"""The native pid 1 of a prepared container (``pid1.c``): the Python side.

A spare supervisor's candidate pid 1 (:class:`~ipydock.engine.runtime.spawn.Prepared`) execs
``ipydock-pid1`` while it waits, and the start hands it the plan (:func:`encode`) instead of a
pickle. Then a start runs no Python in pid 1: no copies of the pages of a fresh fork of the
supervisor for every object the setup touches, and no teardown of that fork's 30-40 MB when
it execs the command (``bench/bench_run.py`` shows the difference). It does the steps of
``spawn._build`` and ``spawn._finish`` for the plans :func:`fits` accepts, with the same
report lines and exit codes; the rest (fuse-overlayfs, a new user namespace) are spawned
by Python as before.

The binary is built by ``python -m ipydock.native_launcher install`` (``scripts/setup.sh``)
beside this file. Without it, or when ``pid1.c`` is newer than it, Python does it all.
"""

from __future__ import annotations

import base64
import os

from ipydock.engine.runtime.plan import CLONE_NEWUSER, FUSE_OVERLAYFS, MountStep, Plan

__all__ = ["BINARY", "SOURCE", "encode", "fits", "path"]

_HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(_HERE, "pid1.c")
BINARY = os.path.join(_HERE, "ipydock-pid1")
#: The first field of every plan; ``pid1.c`` refuses another (a binary older than this file).
VERSION = b"ipydock-pid1 1"


def path() -> str | None:
    """The built binary, if it is there and not older than its source (and not turned off:
    ``IPYDOCK_NATIVE_PID1=0``)."""
    if os.environ.get("IPYDOCK_NATIVE_PID1") == "0":
        return None
    try:
        built = os.stat(BINARY)
    except OSError:
        return None
    try:
        source = os.stat(SOURCE).st_mtime
    except OSError:
        source = 0.0  # an installation without the source: the binary is what was shipped
    if built.st_mtime < source or not os.access(BINARY, os.X_OK):
        return None
    return BINARY


def fits(plan: Plan) -> bool:
    """Whether ``pid1.c`` does this plan: a new pid namespace, no new user namespace (a
    rootless helper is in its own already), an overlay or bind root."""
    return (plan.new_pid and not plan.clone_flags & CLONE_NEWUSER
            and plan.root_mount.fstype != FUSE_OVERLAYFS)  # fmt: skip


def encode(plan: Plan, slots: list[int]) -> bytes:
    """``plan`` as ``pid1.c`` reads it: netstrings (``LEN:BYTES``) in a fixed order.
    ``slots``: the indexes, in the fds sent with it, of the report pipe, stdin, stdout,
    stderr, the go pipe and the console socket (-1: none)."""
    out: list[bytes] = [VERSION]

    def put(*values: object) -> None:
        for value in values:
            if isinstance(value, bytes):
                out.append(value)
            elif isinstance(value, bool):
                out.append(b"1" if value else b"0")
            elif isinstance(value, str):  # as the OS has it (surrogateescape)
                out.append(os.fsencode(value))
            else:
                out.append(str(value).encode())

    def put_list(values: tuple[object, ...] | list[object]) -> None:
        put(len(values), *values)

    def put_mount(step: MountStep) -> None:
        put(step.target, step.fstype, step.source, step.flags, step.data, step.readonly,
            step.kind)  # fmt: skip

    put(*slots)
    put(plan.root)
    put_mount(plan.root_mount)
    put(plan.clone_flags, plan.netns_path or "", plan.hostname or "")
    put(len(plan.mounts))
    for step in plan.mounts:
        put_mount(step)
    put(len(plan.devices))
    for dev in plan.devices:
        put(dev.path, dev.major, dev.minor, dev.mode, dev.type, dev.uid, dev.gid, dev.source)
    put_list([part for pair in plan.symlinks for part in pair])
    put_list(plan.masked_paths)
    put_list(plan.readonly_paths)
    put(plan.readonly_rootfs, plan.cwd)
    put_list(plan.args)
    put_list(plan.env)
    put(plan.uid, plan.gid)
    put_list(plan.groups)
    put(plan.cap_bounding, plan.cap_effective, plan.cap_permitted, plan.cap_inheritable,
        plan.cap_ambient, plan.no_new_privs, plan.die_with_parent)  # fmt: skip
    put(base64.b64decode(plan.seccomp), plan.seccomp_flags)
    put(len(plan.rlimits))
    for limit in plan.rlimits:
        put(*limit)
    put_list(plan.cgroup_procs)
    put(plan.rootless, plan.terminal, *plan.console_size)
    return b"".join(b"%d:%s" % (len(field), field) for field in out)
