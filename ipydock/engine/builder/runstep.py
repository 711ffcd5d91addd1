"""RUN: the command in a container on the parent image's layers; its writes become the layer.

When: the builder dispatches RUN on a cache miss. The container gets the image's env plus the
build args, its USER and WORKDIR, the stage's SHELL for the shell form, and its network: as
docker's classic builder, the default bridge (with outbound NAT) unless ``RUN --network=host|
none`` or ``build --network host|none`` say otherwise (an unprivileged user's RUN steps use
the host's network: bridges need root). Output is streamed line by line to the progress
callback while it runs; the last lines go into :class:`BuildStepFailed`.

::

    overlay:  lower = parent's snapshots  upper = staging/ (becomes the layer's snapshot as is:
              0/0 whiteouts, opaque xattrs; the mount is redirect_dir/metacopy-free)
    fuse-overlayfs: the same, mounted by the program (its whiteouts may be .wh. files)
    vfs:      root = copy of the parent's full root --export diff--> tar --> staging/

The overlay mount lives in the container's mount namespace and goes away with it; the cgroup
and the helper's child are cleaned up by ``Running.cleanup`` whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipydock.engine.builder.instructions import Run
from ipydock.engine.builder.rootview import RootView, lookup_user
from ipydock.engine.builder.state import PROXY_ARGS, StageState
from ipydock.engine.store.fsutil import owned_name, remove_tree
from ipydock.engine.store.snapshots import LAYERED
from ipydock.errors import BuildStepFailed, DockerfileError

if TYPE_CHECKING:  # the runtime is imported when a RUN runs, not when its cache key is made
    from ipydock.engine.runtime import EtcFiles, Rootfs, Runtime, Spec

__all__ = [
    "BUILD_CGROUP_PARENT",
    "RunContext",
    "build_network",
    "command_of",
    "ensure_can_run",
    "run_command",
]

#: RUN containers' cgroups live under this parent (apart from ``run``'s containers).
BUILD_CGROUP_PARENT = "ipydock-build"

_TAIL = 10


@dataclass
class RunContext:
    """What a RUN needs besides the stage: the runtime, the parent's layer dirs and driver."""

    runtime: Runtime
    lower: list[str]
    driver: str
    tmp_dir: str
    on_output: Callable[[str], None]
    #: ``build --ulimit``: (name, soft, hard)
    ulimits: tuple[tuple[str, int, int], ...] = ()
    network: str = "default"  # build --network
    store_root: str = ""  # whose default bridge records the RUN container's endpoint


def build_network(mode: str) -> str:
    """``build --network`` checked: default (``bridge`` is its other name), host or none."""
    from ipydock.errors import InvalidNetworkConfig

    if mode == "bridge":
        return "default"
    if mode not in ("default", "host", "none"):
        raise InvalidNetworkConfig("--network", f"{mode!r}: builds run on default (the "
                                   "bridge), host or none")  # fmt: skip
    return mode


def ensure_can_run(instr: Run) -> None:
    """Before a build's first RUN: refuse with what to do where containers cannot run (an
    unprivileged user without user namespaces); COPY/ADD steps before it have worked."""
    if os.geteuid() == 0:
        return
    from ipydock.engine.runtime.rootless import runtime_mode
    from ipydock.errors import NotSupported

    mode, reason = runtime_mode()
    if mode == "none":
        raise NotSupported(
            f"RUN (Dockerfile line {instr.line})", "bundled",
            f"this machine cannot run containers ({reason}); builds without RUN steps, images "
            "and volumes still work here, or use a Docker engine",
        )  # fmt: skip


def command_of(state: StageState, instr: Run) -> tuple[list[str], list[str]]:
    """``(argv, cmd)``: what runs, and the Cmd Docker records (``|N K=V ...`` + argv)."""
    if instr.json:
        argv = list(instr.command)
    elif instr.heredocs and instr.command[0].strip().lstrip("<-\"'").rstrip("\"'") in (
        h.name for h in instr.heredocs
    ):
        argv = [*state.shell, instr.heredocs[0].content]
    elif instr.heredocs:
        bodies = "".join(h.content + h.name + "\n" for h in instr.heredocs)
        argv = [*state.shell, instr.command[0] + "\n" + bodies]
    else:
        argv = [*state.shell, instr.command[0]]
    args = state.run_args()
    args = {k: v for k, v in args.items() if k not in PROXY_ARGS}
    prefix = [f"|{len(args)}", *(f"{k}={v}" for k, v in args.items())] if args else []
    return argv, prefix + argv


def run_command(
    state: StageState, instr: Run, argv: list[str], ctx: RunContext, staging: str
) -> None:
    """Run ``argv`` for ``instr``; its changes end up in ``staging`` (overlay layout)."""
    from ipydock.engine.runtime import Network, Spec, User, default_env
    from ipydock.engine.runtime.idranges import mapped_ids, why_single
    from ipydock.engine.runtime.spec import Ulimit

    rootless = os.geteuid() != 0

    view = RootView(ctx.lower)
    env = state.container.get("Env") or []
    extra = dict(state.run_args())
    extra.update({k: v for k, v in state.given_args.items() if k in PROXY_ARGS and v is not None})
    env = [*env, *(f"{k}={v}" for k, v in extra.items())]
    user = state.container.get("User") or "root"
    try:
        uid, gid = lookup_user(view, user)
    except KeyError as exc:
        raise DockerfileError(instr.line, instr.text, str(exc.args[0])) from None
    mode = instr.network if instr.network != "default" else ctx.network
    if mode == "default" and rootless:
        mode = "host"
    scratch = os.path.join(ctx.tmp_dir, owned_name("run-"))
    os.mkdir(scratch, 0o700)
    try:
        if ctx.driver in LAYERED:
            rootfs = _overlay_root(ctx.lower, staging, scratch, fuse=ctx.driver != "overlay")
        else:
            rootfs = _vfs_root(ctx.lower, scratch)
        hostname = secrets.token_hex(6)
        spec = Spec(
            rootfs=rootfs,
            args=tuple(argv),
            env=default_env(tuple(env), hostname),
            cwd=state.container.get("WorkingDir") or "/",
            user=User(uid, gid),
            hostname=hostname,
            etc=_etc_files(view, mode),
            network=Network("host") if mode == "host" else Network("none"),
            rootless=rootless,  # spawned in the user's namespace, without a cgroup
            rootless_ids=mapped_ids() if rootless else 1,
            rootless_why=why_single() if rootless and (uid, gid) != (0, 0) else "",
            ulimits=tuple(Ulimit(*u) for u in ctx.ulimits),
        )
        _execute(spec, instr, ctx, bridged=mode == "default")
        if ctx.driver == "fuse-overlayfs":
            from ipydock.engine.store.snapshots import tidy_fuse_upper

            tidy_fuse_upper(staging, ctx.lower)
        if ctx.driver not in LAYERED:
            _vfs_diff(ctx.lower, rootfs.path or "", staging, ctx.tmp_dir)
    finally:
        remove_tree(scratch)


def _overlay_root(lower: list[str], upper: str, scratch: str, *, fuse: bool = False) -> Rootfs:
    from ipydock.engine.runtime import Rootfs

    work, merged = os.path.join(scratch, "work"), os.path.join(scratch, "merged")
    os.mkdir(work)
    os.mkdir(merged)
    if not lower:
        empty = os.path.join(scratch, "empty")
        os.mkdir(empty)
        lower = [empty]
    # volatile: the step's upper dir is read into a layer tar next (the store syncs that), so
    # unmounting need not sync the whole filesystem first
    return Rootfs.overlay(lower, upper, work, merged, fuse=fuse, volatile=True)


def _vfs_root(lower: list[str], scratch: str) -> Rootfs:
    from ipydock.engine.runtime import Rootfs
    from ipydock.engine.store.snapshots import copy_tree

    root = os.path.join(scratch, "root")
    if lower:
        copy_tree(lower[-1], root)
    else:
        os.mkdir(root)
    return Rootfs.directory(root)


def _vfs_diff(lower: list[str], root: str, staging: str, tmp_dir: str) -> None:
    """The diff of a vfs root against its parent, laid out as an overlay upper dir."""
    import tempfile

    from ipydock.engine.store.layertar import apply_tar
    from ipydock.engine.store.snapshots import VfsDriver

    with tempfile.TemporaryFile(dir=tmp_dir) as tar:
        VfsDriver().export(root, lower[-1] if lower else None, tar)  # type: ignore[arg-type]
        tar.seek(0)
        # .wh. files, not 0/0 devices: no mknod (refused on some filesystems, overlayfs in a
        # user namespace); write_tar reads both
        apply_tar(tar, staging, source="RUN", whiteouts="files")  # type: ignore[arg-type]


def _etc_files(view: RootView, network: str) -> EtcFiles:
    """The host's resolv.conf over the image's, when the image has one (no new file is made
    in the layer: a bind mount over an existing file leaves the upper dir alone)."""
    from ipydock.engine.runtime import EtcFiles

    if network == "none" or view.lstat("etc/resolv.conf") is None:
        return EtcFiles()
    if not os.path.exists("/etc/resolv.conf"):
        return EtcFiles()
    return EtcFiles(resolv_conf="/etc/resolv.conf")


def _execute(spec: Spec, instr: Run, ctx: RunContext, *, bridged: bool = False) -> None:
    """Start (on the default bridge: paused, wired, then let go), stream output on this thread
    until every writer is gone (pid 1's exit ends the pid namespace, so background children
    cannot hold the pipe open), then reap and free the endpoint."""
    from ipydock.engine.runtime import Stdio
    from ipydock.errors import StartFailed

    read_fd, write_fd = os.pipe()
    tail: deque[str] = deque(maxlen=_TAIL)
    with os.fdopen(read_fd, "rb") as pipe, _bridge(ctx, bridged) as wire:
        try:
            running = ctx.runtime.run(spec, Stdio(stdout=write_fd, stderr=write_fd),
                                      paused=bridged)  # fmt: skip
        except StartFailed as exc:
            raise BuildStepFailed(instr.line, instr.text, exc.exit_code, [str(exc)]) from exc
        finally:
            os.close(write_fd)
        if bridged:
            try:
                wire(running.pid, spec.hostname)
            except BaseException:
                running.cleanup()
                raise
            running.start()
        with running:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                tail.append(line)
                ctx.on_output(line)
            status = running.wait()
    assert status is not None
    if status.exit_code != 0:
        raise BuildStepFailed(instr.line, instr.text, status.exit_code, list(tail))


@contextlib.contextmanager
def _bridge(ctx: RunContext, bridged: bool) -> Iterator[Callable[[int, str], object]]:
    """A RUN container's endpoint on the default bridge: ``wire(pid, hostname)`` attaches
    it (a veth into pid 1's netns, an address); it is released when the step ends."""
    if not bridged:
        yield lambda _pid, _hostname: None
        return
    from ipydock.engine.network.bridge import Networks

    nets = Networks(ctx.store_root)
    bid = secrets.token_hex(32)
    try:
        yield lambda pid, hostname: nets.attach_build(bid, pid, hostname)
    finally:
        nets.release(bid)
