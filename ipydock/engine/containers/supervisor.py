"""The per-container supervisor: owns pid 1, so a container outlives whoever started it.

Forked in its own session by a kernel's warm helper (a spare, ahead of need), by the
command server's zygote (a detached start: :func:`zygote`), by a single-threaded CLI, or
started as ``python -m ipydock.engine.containers.supervisor ROOT ID
NOTIFY_FD`` (see ``lifecycle.start``); single-threaded, so it may call
:func:`ipydock.engine.runtime.spawn.spawn` itself (rootless: from a forked runner in a user
namespace of its own). It lives exactly as long as the container does, restarts included, and
exits when the container is done::

    loop:  cgroup (if limited) + plan --spawn()--> pid 1 --stdout/stderr pipes--> <id>-json.log
           state.json <- running + supervisor pid and start time (one write)
           notify pipe <- {"event": "started", "pid"} | {"event": "failed", "error"}
           -t: the terminal's master (runtime/console.py) -> TerminalHub (ttyhub.py): the
               log, attach.sock and its clients (the starter's socket on our fd 0 first)
           select: pipes | pidfd (exit) | ctl fifo ("kill SIG", "stop SIG TIMEOUT") | timer
                   | the hub's master, listener and clients
           exit: waitpid, OOM from the cgroup, remove cgroup, state -> exited | restarting
                 (--rm: no write, the record goes next)
           restart policy (no | on-failure[:N] | always), unless a stop/kill was asked for:
           back-off 100 ms, doubling, woken early by the ctl fifo
    notify pipe <- {"event": "exited", "exit_code", "oom_killed"}; --rm: unname the container
    (rename into tmp, under the store lock), close the notify pipe, then delete its files

A detached start (nobody waits on fd 0) of a container that is root's, without a terminal,
open stdin or a network to wire (:meth:`Supervisor.lean_eligible`) keeps its supervisor
small while it idles (:func:`_start_lean`): a forked child takes the loop's first steps as
far as "started", pid 1 becoming our own child, and we only ``poll`` until pid 1 exits or
the ctl fifo speaks; then the loop goes on here.

Other processes talk to it through the ``ctl`` fifo (a fifo has no path-length limit, unlike a
unix socket) and find it through ``state.json``. If it is killed, pid 1 gets its parent-death
SIGKILL, and the next reader of the state finds a dead supervisor and settles the record
(``lifecycle.refresh``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import os
import select
import selectors
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ipydock.engine.containers import network, specconv
from ipydock.engine.containers.logs import LineSplitter, LogWriter, now_rfc3339
from ipydock.engine.containers.records import Record, Records, process_start, unname_record
from ipydock.engine.containers.state import State, Status, transition
from ipydock.engine.containers.ttyhub import TerminalHub, read_size
from ipydock.engine.runtime import cgroups, protocol
from ipydock.engine.runtime.console import recv_master
from ipydock.engine.runtime.detach import detach, raw_fork
from ipydock.engine.runtime.plan import Plan, build_plan
from ipydock.engine.runtime.process import ExitStatus
from ipydock.engine.runtime.proctitle import set_title
from ipydock.engine.runtime.spawn import (
    CAN_SPAWN_SIBLING,
    PR_SET_PDEATHSIG,
    Child,
    Prepared,
    enter_user_namespace,
    prctl,
    read_report,
    spawn,
)
from ipydock.engine.runtime.spec import Resources, cgroup_resources
from ipydock.engine.store.fsutil import owner_alive_in, owner_tag, remove_tree
from ipydock.errors import CgroupError

__all__ = ["PROOT_MARKER", "cgroup_parent", "main", "rootfs_dirs", "run_detached"]

#: In a container's directory: it runs through PRoot (runtime/proot.py).
PROOT_MARKER = "proot"
_BACKOFF_START = 0.1
_BACKOFF_MAX = 60.0


def cgroup_parent() -> str:
    """Where container cgroups go: ``$IPYDOCK_CGROUP_PARENT`` (tests use their own), else
    ``ipydock``."""
    return os.environ.get("IPYDOCK_CGROUP_PARENT", "ipydock")


def rootfs_dirs(rec: Record) -> dict[str, str]:
    """The container's own paths that its Spec names."""
    return {
        "upper": rec.path("upper"),
        "work": rec.path("work"),
        "merged": rec.path("merged"),
        "hostname": rec.path("hostname"),
        "hosts": rec.path("hosts"),
        "resolv_conf": rec.path("resolv.conf"),
    }


class Supervisor:
    def __init__(
        self, root: str, container_id: str, notify_fd: int, stdin_given: bool = True
    ) -> None:
        self.records = Records(root, os.path.join(root, "tmp"))
        self.rec = self.records.load(container_id)
        self.notify_fd = notify_fd
        self.stdin_given = stdin_given  # fd 0 is the starter's input (run -i), not /dev/null
        self.ctl = os.open(self.rec.path("ctl"), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.log = LogWriter(self.rec.log_path)
        self.stop_deadline: float | None = None
        self.stop_requested = False
        # Not root: each run is spawned from a user namespace of its own (uid 0 = us).
        self.rootless = os.geteuid() != 0
        # ... or, where no user namespace can be made, through PRoot (runtime/proot.py).
        self.proot = self.rootless and _proot_mode()
        self.proot_group = 0  # PRoot's process group, while it runs
        self.pid = os.getpid()  # a rootless run's runner records us, not itself
        self.start_time = process_start(self.pid) or 0
        # A terminal container: fd 0 is the starter's attach socket (if it attached), whose
        # first message is the window size (ttyhub.py); the terminal replaces stdin.
        self.tty = bool(self.rec.config["Config"].get("Tty"))
        self.starter, self.console_size = _starter(self.tty)
        self.doomed_links: list[str] = []  # veths of a --rm container, deleted in finish()
        self.mounts_fd = -1  # pid 1's mount namespace, held (_hold_mounts)
        # a --rm container's cgroup: removing one waits for the kernel (~3 ms for four
        # hierarchies here), so it goes in finish() after the starter has the exit code
        self.doomed_cgroup: cgroups.Cgroup | None = None

    # -- state -------------------------------------------------------------------------------

    def update(self, change: Any) -> State:
        """Read-modify-write state.json under the container lock."""
        with self.records.locked(self.rec):
            state = self.records.read_state(self.rec)
            change(state)
            self.records.write_state(self.rec, state)
            return state

    def tell(self, message: dict[str, Any]) -> None:
        if self.notify_fd < 0:
            return
        try:
            os.write(self.notify_fd, json.dumps(message).encode() + b"\n")
        except OSError:  # the starter went away (detached run, killed CLI): fine
            os.close(self.notify_fd)
            self.notify_fd = -1

    # -- one run -----------------------------------------------------------------------------

    def run_once(self) -> ExitStatus | None:
        """Start pid 1 and follow it to its end; None if it failed to start."""
        self._let_mounts_go()  # a restart's: the last run's
        if self.proot:
            return self._run_here()
        return self._run_in_user_namespace() if self.rootless else self._run_here()

    def _run_in_user_namespace(self) -> ExitStatus | None:
        """Rootless: one run in a forked runner that enters a user namespace of its own (uid 0
        = us) and spawns from there. A spawner must give its pid namespace back after each
        fork, and an unprivileged one cannot, so each run gets a fresh, single-use runner;
        it dies with us (parent-death signal) and pid 1 with it."""
        r, w = os.pipe2(os.O_CLOEXEC)
        slirp = network.SlirpChannel() if network.wants_wiring(self.rec.config, True) else None
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(r)
                if slirp is not None:  # slirp4netns is started out here (see network.py)
                    slirp.as_runner()
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                enter_user_namespace()
                status = self._run_here()
                os.write(w, json.dumps(None if status is None else vars(status)).encode())
                code = 0
            except BaseException:  # noqa: BLE001 - never return into the supervisor's loop
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(w)
        if self.starter is not None:  # the runner serves it: EOF must not wait for us
            self.starter.close()
            self.starter = None
        if slirp is not None:
            slirp.serve(self.records.dir, self.rec.id, self.rec.config)
        try:
            with os.fdopen(r, "rb") as f:
                data = f.read()
            os.waitpid(pid, 0)
        finally:
            if slirp is not None:
                slirp.close()
        found = json.loads(data) if data else None
        if found is None and not data:
            self.failed({"step": "spawn", "errno": 0, "exit_code": 125,
                         "detail": "the rootless runner failed (see supervisor.log)"})  # fmt: skip
        return None if found is None else ExitStatus(**found)

    def _run_here(self) -> ExitStatus | None:
        lower = self.rec.config["GraphDriver"]["Data"]["LowerDirs"]
        try:
            if self.proot:
                _copy_root(lower, rootfs_dirs(self.rec)["merged"])
                with open(self.rec.path(PROOT_MARKER), "w"):
                    pass  # exec goes through PRoot too
            elif self.rec.config["GraphDriver"]["Name"] == "vfs":  # rootless, no overlayfs
                _copy_root(lower, rootfs_dirs(self.rec)["merged"])
            spec = specconv.build_spec(self.rec.config, lower, rootfs_dirs(self.rec),
                                       rootless=self.rootless,
                                       console_size=self.console_size)  # fmt: skip
            name = f"{cgroup_parent()}/{self.rec.id}"
            cgroup = None if self.rootless else self._cgroup(name, cgroup_resources(spec))
        except Exception as exc:  # noqa: BLE001 - reported as a failed start
            self.failed({"step": "spec", "errno": 0, "detail": str(exc), "exit_code": 125})
            return None
        try:
            return self._spawn_and_follow(spec, cgroup)
        finally:
            if cgroup is not None and self._removed_after_run():
                self.doomed_cgroup = cgroup  # removed in finish(), off the starter's clock
            elif cgroup is not None:
                cgroup.remove()

    def _cgroup(self, name: str, resources: Resources) -> cgroups.Cgroup | None:
        """The spare's prepared cgroup renamed for this container (first run), else a new one."""
        if _prepared is not None:
            try:
                return cgroups.adopt(_prepared[1], name, resources)
            except CgroupError as exc:
                print(f"the prepared cgroup could not be used: {exc}", file=sys.stderr)
                _discard_prepared()
        return _cgroup_for(name, resources)

    def _spawn(
        self, plan: Plan, stdio: tuple[int, int, int], paused: bool, sibling: bool = False
    ) -> Child:
        """pid 1: from the spare's prepared candidate (first run, in its cgroup already) when
        it fits, else a new fork (``sibling``: our parent's child, see ``spawn``)."""
        global _prepared
        if _prepared is not None:
            candidate, _cgroup = _prepared
            _prepared = None
            plan_there = replace(plan, cgroup_procs=())  # it has joined
            if candidate.fits(plan_there):
                try:
                    return candidate.start(plan_there, stdio, paused)
                except OSError as exc:
                    print(f"the prepared pid 1 was gone ({exc}): forking a new one",
                          file=sys.stderr)  # fmt: skip
            candidate.discard()
        return spawn(plan, stdio, paused=paused, sibling=sibling)

    def _spawn_and_follow(self, spec: Any, cgroup: cgroups.Cgroup | None) -> ExitStatus | None:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        stdin, held = self._stdin()
        wired = network.wants_wiring(self.rec.config, self.rootless)
        if spec.rootfs.volatile and spec.rootfs.work:  # a run before this one: it was not lost
            remove_tree(os.path.join(spec.rootfs.work, "work", "incompat"))
        try:
            if wired:
                spec = network.with_link_env(self.records.dir, self.rec.config, spec)
            plan = build_plan(spec, cgroup.procs_files() if cgroup is not None else ())
            if self.proot:
                from ipydock.engine.runtime import proot

                child = proot.spawn(plan, (stdin, out_w, err_w))
            else:
                child = self._spawn(plan, (stdin, out_w, err_w), paused=wired)
        except Exception as exc:  # noqa: BLE001
            for fd in (out_r, out_w, err_r, err_w, *((stdin, held) if held >= 0 else ())):
                os.close(fd)
            errno = getattr(exc, "errno", 0) or 0
            self.failed({"step": "spawn", "errno": errno, "detail": str(exc), "exit_code": 125})
            return None
        os.close(out_w)
        os.close(err_w)
        if held >= 0:
            os.close(stdin)
        try:
            return self._follow_child(child, spec, cgroup, out_r, err_r, wired)
        finally:
            if held >= 0:
                os.close(held)

    def _stdin(self) -> tuple[int, int]:
        """(the fd pid 1 gets as stdin, -1 or the write end we hold). ``-i`` with the
        starter's stdin: ours (fd 0); ``-di`` (nobody's input): a pipe kept open and empty
        for the run, as docker's open stdin (``cat`` waits, it does not see EOF); no ``-i``:
        /dev/null."""
        if not self.rec.config["Config"].get("OpenStdin"):
            return -1, -1
        if self.stdin_given:
            return 0, -1
        return os.pipe2(os.O_CLOEXEC)

    def _follow_child(
        self, child: Any, spec: Any, cgroup: cgroups.Cgroup | None, out_r: int, err_r: int,
        wired: bool,
    ) -> ExitStatus | None:  # fmt: skip
        """The spawned pid 1 from its report to its exit."""
        report = read_report(child.report_fd)
        if wired and report == {"ready": True}:  # pid 1 waits before exec: wire its netns
            report = network.wire(self.records.dir, self.rec.id, self.rec.config, child,
                                  rootless=self.rootless)  # fmt: skip
        os.close(child.report_fd)
        hub = None
        master = child.master
        if child.console is not None:
            with child.console:
                master = recv_master(child.console) if report is None else -1
        if master >= 0 and report is not None:
            os.close(master)
        elif master >= 0:
            hub = TerminalHub(master, self.rec.dir, LineSplitter("stdout", self.log),
                              self.starter)  # fmt: skip
            self.starter = None  # the first run's; a restart's clients attach anew
        if report is not None:
            os.waitpid(child.pid, 0)
            os.close(child.pidfd)
            self._drain({out_r: LineSplitter("stdout", self.log),
                         err_r: LineSplitter("stderr", self.log)})  # fmt: skip
            self.failed(report)
            return None
        self.started(child.pid, cgroup)
        self._hold_mounts(child.pid)
        self.proot_group = child.pid if self.proot else 0
        try:
            pipes = {out_r: LineSplitter("stdout", self.log),
                     err_r: LineSplitter("stderr", self.log)}  # fmt: skip
            raw = self._follow(child.pid, child.pidfd, pipes, hub)
        finally:
            if hub is not None:
                hub.close()
            if wired:  # a --rm container's veths go after its starter is let go (finish)
                self.doomed_links = network.unwire(
                    self.records.dir, self.rec.id, rootless=self.rootless,
                    keep_links=bool(self.rec.config["HostConfig"].get("AutoRemove")),
                )  # fmt: skip
            if self.proot_group:
                from ipydock.engine.runtime import proot

                proot.forget(child.pid)
        base = ExitStatus.from_wait_status(raw)
        return ExitStatus(base.exit_code, base.signal, cgroup is not None and cgroup.oom_killed())

    def started(self, pid: int, cgroup: cgroups.Cgroup | None) -> None:
        """Running, and who supervises it (one write: a start waits for it). Until then the
        record says ``created`` without a supervisor; if we die before, pid 1 dies with us
        (parent-death signal) and that stays true."""

        def change(state: State) -> None:
            transition(self.rec.id, state, Status.RUNNING)
            state.supervisor_pid, state.supervisor_start = self.pid, self.start_time
            state.stop_requested = False
            state.pid = pid
            state.started_at = now_rfc3339()
            state.error = ""
            state.cgroup = list(cgroup.dirs) if cgroup is not None else []

        self.update(change)
        self.tell({"event": "started", "pid": pid})

    def failed(self, error: dict[str, Any]) -> None:
        code = int(error.get("exit_code", 125))

        def change(state: State) -> None:
            if state.status == Status.RESTARTING:
                transition(self.rec.id, state, Status.EXITED)
            state.exit_code = code
            state.error = str(error.get("detail", ""))
            state.finished_at = now_rfc3339()
            state.pid = 0

        self.update(change)
        self.tell({"event": "failed", "error": error})
        return None

    def _follow(
        self, pid: int, pidfd: int, pipes: dict[int, LineSplitter], hub: TerminalHub | None = None
    ) -> int:
        """Copy output to the log, obey ctl messages; returns the wait status of pid 1. A
        terminal's output comes from ``hub`` (the pipes then only see EOF)."""
        sel = selectors.DefaultSelector()
        for fd in pipes:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(pidfd, selectors.EVENT_READ)
        sel.register(self.ctl, selectors.EVENT_READ)
        if hub is not None:
            hub.register(sel)
        try:
            while True:
                timeout = None
                if self.stop_deadline is not None:
                    timeout = max(0.0, self.stop_deadline - time.monotonic())
                events = sel.select(timeout)
                if not events and self.stop_deadline is not None:
                    self._signal(pidfd, signal.SIGKILL)
                    self.stop_deadline = None
                for key, mask in events:
                    if key.fd == pidfd:
                        sel.unregister(pidfd)
                        for fd in pipes:
                            with contextlib.suppress(KeyError):
                                sel.unregister(fd)
                        self._drain(pipes)
                        if hub is not None:
                            hub.drain()
                        _, raw = os.waitpid(pid, 0)
                        return raw
                    if key.fd == self.ctl:
                        self._on_ctl(pidfd)
                    elif hub is not None and key.fd in hub.fds():
                        hub.handle(key.fd, mask)
                    elif key.fd not in pipes:
                        continue  # a hub client dropped earlier in this round
                    elif not self._pump(key.fd, pipes[key.fd]):
                        sel.unregister(key.fd)
        finally:
            sel.close()
            os.close(pidfd)
            for fd in pipes:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _pump(self, fd: int, splitter: LineSplitter) -> bool:
        data = os.read(fd, 65536)
        if not data:
            splitter.flush()
            return False
        splitter.feed(data)
        return True

    def _drain(self, pipes: dict[int, LineSplitter]) -> None:
        """Read what is left: every writer is dead once pid 1 is (its namespace died too)."""
        for fd, splitter in pipes.items():
            with contextlib.suppress(OSError):
                while self._pump(fd, splitter):
                    pass
                os.close(fd)

    def _on_ctl(self, pidfd: int | None) -> None:
        """``kill SIG`` or ``stop SIG TIMEOUT``: signal pid 1; a stop SIGKILLs after TIMEOUT."""
        try:
            data = os.read(self.ctl, 4096).decode()
        except BlockingIOError:
            return
        for line in data.splitlines():
            word, *args = line.split()
            if word not in ("kill", "stop"):
                continue
            self.stop_requested = True
            self.update(lambda s: setattr(s, "stop_requested", True))
            if pidfd is not None:
                self._signal(pidfd, int(args[0]))
            if word == "stop" and pidfd is not None and self.stop_deadline is None:
                self.stop_deadline = time.monotonic() + float(args[1])

    def _signal(self, pidfd: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proot_group:  # PRoot and its tracees: they outlive a killed tracer
                os.killpg(self.proot_group, sig)
                return
            signal.pidfd_send_signal(pidfd, sig)

    # -- after an exit -----------------------------------------------------------------------

    def exited(self, status: ExitStatus) -> bool:
        """Record the exit; True if the restart policy wants another run."""
        host = self.rec.config["HostConfig"]
        policy = host.get("RestartPolicy") or {}
        self.stop_deadline = None
        if host.get("AutoRemove") and policy.get("Name") in (None, "", "no"):
            return False  # --rm: the record goes next; the exit code goes to the starter

        def change(state: State) -> None:
            restart = not (state.stop_requested or self.stop_requested) and _wants_restart(
                policy, status.exit_code, state.restart_count
            )
            transition(self.rec.id, state, Status.RESTARTING if restart else Status.EXITED)
            state.exit_code = status.exit_code
            state.oom_killed = status.oom_killed
            state.finished_at = now_rfc3339()
            state.pid = 0
            state.cgroup = []

        return self.update(change).status == Status.RESTARTING

    def backoff(self, attempt: int) -> bool:
        """Wait before a restart; False if a stop/kill came meanwhile (then: exited)."""
        delay = min(_BACKOFF_START * 2**attempt, _BACKOFF_MAX)
        sel = selectors.DefaultSelector()
        sel.register(self.ctl, selectors.EVENT_READ)
        ready = sel.select(delay)
        sel.close()
        if ready:
            self._on_ctl(None)
        if self.stop_requested:
            self.update(lambda s: transition(self.rec.id, s, Status.EXITED))
            return False
        self.update(_count_restart)
        return True

    def run(self, followed: Followed | None = None) -> int:
        """Run (and restart) the container to its end; ``followed``: its first run was
        started by :func:`_start_lean` and is under way."""
        attempt = 0
        status: ExitStatus | None = None
        try:
            while True:
                status = self.run_once() if followed is None else self._resume(followed)
                followed = None
                if status is None or not self.exited(status):
                    break
                if not self.backoff(attempt):
                    break
                attempt += 1
        finally:
            self.finish(status)
        return 0

    def _resume(self, run: Followed) -> ExitStatus:
        """Follow a run :func:`_start_lean` started, to its exit."""
        try:
            raw = self._follow(run.pid, run.pidfd, run.pipes)
            base = ExitStatus.from_wait_status(raw)
            oom = run.cgroup is not None and run.cgroup.oom_killed()
            return ExitStatus(base.exit_code, base.signal, oom)
        finally:
            if run.cgroup is not None:
                run.cgroup.remove()

    def lean_eligible(self) -> bool:
        """Its run may be started by :func:`_start_lean`: root, no terminal, no open stdin,
        nothing to wire after the fork (network none, host or another container's)."""
        cfg = self.rec.config
        return (CAN_SPAWN_SIBLING and not self.rootless and not self.tty
                and not cfg["Config"].get("OpenStdin")
                and not network.wants_wiring(cfg, False))  # fmt: skip

    def lean_plan(self) -> tuple[Plan, cgroups.Cgroup | None] | dict[str, Any]:
        """A :meth:`lean_eligible` run's plan and cgroup (as :meth:`_run_here` makes them:
        no root to copy, no link variables), or the failure to report."""
        lower = self.rec.config["GraphDriver"]["Data"]["LowerDirs"]
        try:
            spec = specconv.build_spec(self.rec.config, lower, rootfs_dirs(self.rec),
                                       console_size=self.console_size)  # fmt: skip
            cgroup = self._cgroup(f"{cgroup_parent()}/{self.rec.id}", cgroup_resources(spec))
        except Exception as exc:  # noqa: BLE001 - reported as a failed start
            return {"step": "spec", "errno": 0, "detail": str(exc), "exit_code": 125}
        try:
            return build_plan(spec, cgroup.procs_files() if cgroup is not None else ()), cgroup
        except Exception as exc:  # noqa: BLE001
            if cgroup is not None:
                cgroup.remove()
            errno = getattr(exc, "errno", 0) or 0
            return {"step": "spawn", "errno": errno, "detail": str(exc), "exit_code": 125}

    def finish(self, status: ExitStatus | None) -> None:
        """Report the exit; ``--rm``: unname the container, let the starter go (EOF on the
        notify pipe), and only then delete its veths and files, off the starter's clock."""
        if status is not None:
            self.tell({"event": "exited", "exit_code": status.exit_code,
                       "oom_killed": status.oom_killed})  # fmt: skip
        self.log.close()
        if not self.rec.config["HostConfig"].get("AutoRemove"):
            self._let_mounts_go()
            self.update(_forget_supervisor)
            return
        root = self.records.dir.rsplit("/containers", 1)[0]
        doomed = unname_record(root, self.rec, volumes=True)
        if self.notify_fd >= 0:
            os.close(self.notify_fd)
            self.notify_fd = -1
        self._let_mounts_go()
        if self.doomed_cgroup is not None:  # if we die first: `system check --repair`
            self.doomed_cgroup.remove()
        network.delete_links(self.doomed_links)
        remove_tree(doomed)

    def _removed_after_run(self) -> bool:
        """A ``--rm`` container without a restart policy: its run is its last."""
        host = self.rec.config["HostConfig"]
        policy = (host.get("RestartPolicy") or {}).get("Name")
        return bool(host.get("AutoRemove")) and policy in (None, "", "no")

    def _hold_mounts(self, pid: int) -> None:
        """Keep pid 1's mount namespace alive past its exit: the last process of a namespace
        unmounts its ~20 mounts on its way out (and waits for an RCU grace period) before its
        exit is seen; held, that happens when :meth:`_let_mounts_go` lets go, after the
        starter has the exit code."""
        with contextlib.suppress(OSError):
            self.mounts_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)

    def _let_mounts_go(self) -> None:
        if self.mounts_fd >= 0:
            os.close(self.mounts_fd)
            self.mounts_fd = -1


# -- a detached container's first run, started so that the supervisor stays small -------------


@dataclass
class Followed:
    """A run started by :func:`_start_lean`: pid 1 (our child), its pidfd, its output pipes
    with what they buffered, its cgroup."""

    pid: int
    pidfd: int
    pipes: dict[int, LineSplitter]
    cgroup: cgroups.Cgroup | None


def _start_lean(root: str, container_id: str) -> bool:
    """A detached start whose supervisor stays small: False if the container cannot have one
    (:meth:`Supervisor.lean_eligible`; the caller runs it as usual), else True once it ran to
    its end (restarts included).

    Every page of Python's heap our code touches becomes ours alone for as long as we live
    (we share the rest with the process we were forked from and every supervisor forked from
    it). So a forked child does the start, as far as "running" in the state and "started" to
    the starter: it loads the record, makes the plan and the cgroup (or adopts the prepared
    ones) and starts pid 1 as *our* child (the prepared candidate is ours already; else
    ``spawn(sibling=True)``): we reap it and it dies with us. Then it exits, and we only copy
    output to the log until pid 1 exits or the ctl fifo speaks; then the whole
    :class:`Supervisor` takes over. Idle, this process has run little more than ``poll``::

        we: ctl fifo, pipes --raw fork--> child: Supervisor, plan, cgroup, pid 1 (ours),
            poll: pipes -> log                    state "running" (supervisor: us), "started"
            <----- {"pid", "cgroup"} | {"failed"} | {"lean": false} ------------ exit
            pidfd | ctl readable --> Supervisor(...).run(Followed(...))
    """
    cdir = os.path.join(root, "containers", container_id)
    ctl = os.open(os.path.join(cdir, "ctl"), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = raw_fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            answer = _lean_child(root, container_id, parent, (out_r, out_w, err_r, err_w))
            os.write(w, json.dumps(answer).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - never return into the supervisor's code
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in (w, out_w, err_w):
        os.close(fd)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    answer = json.loads(data) if data else {}
    if answer.get("lean") is False:
        for fd in (ctl, out_r, err_r):
            os.close(fd)
        return False
    if "pid" not in answer or "failed" in answer:  # it recorded the failure, if it could
        for fd in (ctl, out_r, err_r):
            os.close(fd)
        if "pid" in answer:
            _forget_prepared(answer["pid"])
            os.waitpid(answer["pid"], 0)
        else:
            _discard_prepared()  # and a pid 1 it may have started
        sup = Supervisor(root, container_id, 3, stdin_given=False)
        if "failed" not in answer:
            sup.failed({"step": "supervisor", "errno": 0, "exit_code": 125,
                        "detail": "the start failed (see supervisor.log)"})  # fmt: skip
        sup.finish(None)
        return True
    pid1 = int(answer["pid"])
    _forget_prepared(pid1)
    pidfd = os.pidfd_open(pid1)
    log = LogWriter(os.path.join(cdir, f"{container_id}-json.log"))
    pipes = {out_r: LineSplitter("stdout", log), err_r: LineSplitter("stderr", log)}
    _copy_output(pipes, pidfd, ctl)
    sup = Supervisor(root, container_id, 3, stdin_given=False)
    os.close(ctl)  # after the Supervisor opened its own: what was written waits in the fifo
    placed = answer["cgroup"]
    cgroup = None
    if placed is not None:
        cgroup = cgroups.Cgroup(placed["name"], placed["version"],
                                tuple((c, d) for c, d in placed["placed"]))  # fmt: skip
    sup.log.close()
    sup.log = log
    sup.run(Followed(pid1, pidfd, pipes, cgroup))
    return True


def _copy_output(pipes: dict[int, LineSplitter], pidfd: int, ctl: int) -> None:
    """Copy the pipes to the log until pid 1 exits or the ctl fifo has a message (both left
    unread); a pipe at EOF is closed and dropped from ``pipes``."""
    poll = select.poll()
    for fd in (*pipes, pidfd, ctl):
        poll.register(fd, select.POLLIN)
    while True:
        events = poll.poll()
        if any(fd in (pidfd, ctl) for fd, _ in events):
            return
        for fd, _ in events:
            data = os.read(fd, 65536)
            if data:
                pipes[fd].feed(data)
                continue
            pipes.pop(fd).flush()
            poll.unregister(fd)
            os.close(fd)


def _lean_child(
    root: str, container_id: str, parent: int, fds: tuple[int, int, int, int]
) -> dict[str, Any]:
    """The forked child of :func:`_start_lean`: start the run as ``parent``'s."""
    out_r, out_w, err_r, err_w = fds
    sup = Supervisor(root, container_id, 3, stdin_given=False)
    if not sup.lean_eligible():
        return {"lean": False}
    sup.pid, sup.start_time = parent, process_start(parent) or 0
    found = sup.lean_plan()
    if isinstance(found, dict):
        sup.failed(found)
        return {"failed": True}
    plan, cgroup = found
    try:
        child = sup._spawn(plan, (-1, out_w, err_w), paused=False, sibling=True)
    except Exception as exc:  # noqa: BLE001
        if cgroup is not None:
            cgroup.remove()
        errno = getattr(exc, "errno", 0) or 0
        sup.failed({"step": "spawn", "errno": errno, "detail": str(exc), "exit_code": 125})
        return {"failed": True}
    os.close(out_w)
    os.close(err_w)
    report = read_report(child.report_fd)
    os.close(child.report_fd)
    if report is not None:  # pid 1 failed before exec and is gone (our parent reaps it)
        sup._drain({out_r: LineSplitter("stdout", sup.log), err_r: LineSplitter("stderr", sup.log)})
        if cgroup is not None:
            cgroup.remove()
        sup.failed(report)
        return {"failed": True, "pid": child.pid}
    sup.started(child.pid, cgroup)
    return {"pid": child.pid, "cgroup": None if cgroup is None else dataclasses.asdict(cgroup)}


def _forget_prepared(pid1: int) -> None:
    """The child of :func:`_start_lean` used our prepared pid 1 (``pid1``) and cgroup, or
    discarded them: let go of our copies (a discarded candidate is reaped here)."""
    global _prepared
    if _prepared is None:
        return
    candidate, _cgroup = _prepared
    _prepared = None
    if candidate.pid != pid1:
        candidate.discard()
        return
    for fd in candidate.fds():
        os.close(fd)


def _starter(tty: bool) -> tuple[socket.socket | None, tuple[int, int]]:
    """A terminal container's starter socket on fd 0 (see ``lifecycle.start``) and the window
    size it sent first; fd 0 becomes /dev/null."""
    if not tty or not stat.S_ISSOCK(os.fstat(0).st_mode):
        return None, (0, 0)
    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sock.setblocking(False)
    size = (0, 0)
    with contextlib.suppress(BlockingIOError):  # sent before we were started, or never
        size = read_size(sock.recv(256)) or size
    return sock, size


#: :func:`_proot_mode`'s answer, found by :func:`warm_up` in the helper that forks the spares
#: (they inherit it): a rootless start then makes no forked try of its own.
_proot_answer: bool | None = None


def _proot_mode() -> bool:
    """PRoot is installed and this user cannot make a user namespace (a forked try, 1-5 ms;
    once per helper when its spares were warmed up)."""
    if _proot_answer is not None:
        return _proot_answer
    from ipydock.engine.runtime import proot
    from ipydock.engine.runtime.plan import CLONE_NEWUSER
    from ipydock.engine.runtime.spawn import unshare

    if not proot.available():
        return False
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            unshare(CLONE_NEWUSER)
        except OSError:
            code = 1
        finally:
            os._exit(code)
    _, raw = os.waitpid(pid, 0)
    return raw != 0


def _copy_root(lower: list[str], merged: str) -> None:
    """PRoot mode, and an ordinary user's vfs store (the kernel refuses overlayfs there): the
    container's root is a copy of its layers (the image's top snapshot and the init layer),
    made once; its changes stay there (no diff or commit: views.tracked says so)."""
    import subprocess

    if os.listdir(merged):
        return  # a restart: the container's files as it left them
    for layer in lower:
        subprocess.run(["cp", "-a", "--", f"{layer}/.", merged], check=True,
                       capture_output=True)  # fmt: skip


def _cgroup_for(name: str, resources: Resources) -> cgroups.Cgroup | None:
    """A cgroup when a limit or the device rules need one: every container but a privileged
    one without limits. Joining a cgroup v1 hierarchy makes the first writer of
    ``cgroup.procs`` wait for an RCU grace period (5-15 ms here), so only the hierarchies in
    use are joined (``devices`` alone by default); ``top`` finds the processes by the pid
    namespace either way."""
    if resources.devices is None and not resources.limits():
        return None
    return cgroups.create(name, resources)


def _forget_supervisor(state: State) -> None:
    state.supervisor_pid = 0
    state.supervisor_start = 0


def _wants_restart(policy: dict[str, Any], exit_code: int, restarts: int) -> bool:
    name = policy.get("Name") or ""
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and exit_code != 0:
        limit = int(policy.get("MaximumRetryCount") or 0)
        return limit == 0 or restarts < limit
    return False


def _count_restart(state: State) -> None:
    state.restart_count += 1


#: What :func:`prepare` made in a spare for the first run: a pid 1 waiting in a cgroup.
_prepared: tuple[Prepared, cgroups.Cgroup] | None = None
_SPARE_PREFIX = "spare-"


def prepare() -> Callable[[], None] | None:
    """Called by a spare before it waits for its container (``forkserver``): as root on cgroup
    v1, a cgroup ``PARENT/spare-PID_START`` with docker's device rules and a pid 1 forked into it
    (``spawn.Prepared``), so a start pays neither the cgroup join's RCU grace period nor the
    fork. Returns what discards them when no container comes; None where nothing was made
    (rootless, PRoot, cgroup v2, no cgroup rights: each start then does it all)."""
    global _prepared
    if os.geteuid() != 0 or cgroups.detect() != "v1":
        return None
    _sweep_spares()
    try:
        cgroup = cgroups.create_spare(f"{cgroup_parent()}/{_SPARE_PREFIX}{owner_tag()}")
    except CgroupError:
        return None
    try:
        _prepared = (Prepared(cgroup.procs_files()), cgroup)
    except OSError:
        cgroup.remove()
        return None
    _rehearse()
    return _discard_prepared


def _rehearse() -> None:
    """Make the record, spec and plan of a made-up container once, touching nothing on disk.
    A fork shares its parent's pages until one is written, and Python writes to every object it
    uses: the first start in a fresh process pays those copies (1-1.5 ms here for the spec and
    plan alone), so a spare pays them now, while it waits (after its last fork)."""
    from ipydock.engine.containers.config import RunOptions, container_config

    with contextlib.suppress(Exception):
        fake = "/nonexistent/ipydock-rehearsal"
        config = container_config("0" * 64, "rehearsal", "sha256:" + "0" * 64, "rehearsal",
                                  {"config": {"Cmd": ["true"]}}, RunOptions("rehearsal"),
                                  "1970-01-01T00:00:00Z")  # fmt: skip
        config = json.loads(json.dumps(config))  # as a record's config.json is read
        dirs = {k: f"{fake}/{k}" for k in ("upper", "work", "merged", "hostname", "hosts",
                                           "resolv_conf")}  # fmt: skip
        build_plan(specconv.build_spec(config, [f"{fake}/lower"], dirs), ())


def _discard_prepared() -> None:
    global _prepared
    if _prepared is not None:
        candidate, cgroup = _prepared
        _prepared = None
        candidate.discard()
        with contextlib.suppress(CgroupError):
            cgroup.remove()


def _sweep_spares() -> None:
    """Remove spare cgroups whose spare is gone (it was killed before it could): each is
    named for its spare's pid and start time (``owner_tag``), which a reused pid cannot take."""
    for mount in set(cgroups.v1_mounts().values()):
        parent = os.path.join(mount, cgroup_parent())
        with contextlib.suppress(OSError):
            for name in os.listdir(parent):
                if name.startswith(_SPARE_PREFIX) and owner_alive_in(name) is False:
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(parent, name))


def warm_up() -> None:
    """Imports a supervisor needs beyond this module: netlink (pyroute2, ~100 ms, and the
    message classes of rtnl.py), IPAM, ports, rules, DNS for a container on a bridge network,
    pickle for the prepared pid 1 (``spawn.Prepared``),
    and docker's seccomp profile compiled. The fork-server helper calls it once before it forks
    spare supervisors, so none of them pays it on a container's clock. Not root: whether
    starts go through PRoot, asked once here."""
    import importlib

    global _proot_answer
    for name in ("pyroute2", "pyroute2.netlink.rtnl.ifinfmsg", "pyroute2.netlink.rtnl.ifaddrmsg",
                 "pyroute2.netlink.rtnl.rtmsg", "ipydock.engine.network.netlink",
                 "ipydock.engine.network.ports", "ipydock.engine.network.firewall",
                 "ipydock.engine.network.dns", "ipydock.engine.network.slirp",
                 "pickle"):  # fmt: skip
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    if os.geteuid() != 0:
        _proot_answer = _proot_mode()
    # Docker's seccomp profile for the default capabilities, compiled (or read from the
    # cache) once here: every spare forked after has it in memory.
    with contextlib.suppress(Exception):
        from ipydock.engine.runtime import seccomp
        from ipydock.engine.runtime.caps import DOCKER_DEFAULT_CAPS

        seccomp.compile_profile(seccomp.default_profile_text(), DOCKER_DEFAULT_CAPS)


def run_detached(root: str, container_id: str, notify_fd: int, stdin_fd: int = -1) -> None:
    """Body of a supervisor forked by the warm fork-server helper or by a single-threaded
    CLI (already in its own session): take stdio and nothing else from the forking process,
    then run; never returns."""
    code = 1
    try:
        os.dup2(stdin_fd if stdin_fd >= 0 else os.open(os.devnull, os.O_RDONLY), 0)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        log = os.open(os.path.join(root, "containers", container_id, "supervisor.log"),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)  # fmt: skip
        os.dup2(log, 2)
        os.dup2(notify_fd, 3)
        # the helper's sockets, pidfds and pipes are not ours; what prepare() made is
        keep = sorted(_prepared[0].fds()) if _prepared is not None else []
        for low, high in zip([4, *(k + 1 for k in keep)], [*keep, 1 << 16], strict=True):
            os.closerange(low, high)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        set_title(f"ipydock-supervisor {container_id[:12]}")
        # What we inherited stays shared with our siblings only if nothing writes to it: the
        # collector would (it marks every object it visits), so it leaves those alone.
        gc.freeze()
        if stdin_fd < 0 and _start_lean(root, container_id):
            code = 0
        else:
            code = Supervisor(root, container_id, 3, stdin_given=stdin_fd >= 0).run()
    except BaseException:  # noqa: BLE001 - report, never return into the helper's loop
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def zygote(sock: socket.socket) -> None:
    """A quiet warm process that forks detached supervisors (the command server keeps one,
    see ``cli/server.py``; its workers hand it their detached starts through
    ``lifecycle.use_zygote``), until ``sock`` reads EOF; then it ``_exit``s. One message per
    supervisor: ``{"args": [root, id], "env": {...}, "umask": N}`` with the notify pipe (and
    the starter's stdin) as fds; the supervisor runs with the caller's environment and umask.

    A supervisor forked here shares its pages with every other one forked here, and little
    runs here between forks (no commands, no collector: ``gc.freeze``), so they stay shared;
    forked from the command's worker instead, each would own a copy of what that worker wrote
    (a spare of the fork-server helper: what it prepared). For the same reason what is the
    same for every supervisor is done here, before the fork: the caller's environment and
    umask, the signals a supervisor ignores; and the fork skips Python's at-fork hooks.
    """
    set_title("ipydock-server-zygote")  # a session helper for tests/reliability/leaks.py
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
    gc.freeze()
    while True:
        message, fds = protocol.recv(sock)
        if message is None:
            os._exit(0)
        try:
            if message["env"] != os.environ:
                os.environ.clear()
                os.environ.update(message["env"])
            os.umask(int(message["umask"]))
            detach(functools.partial(run_detached, *message["args"], *fds), raw=True)
        finally:
            for fd in fds:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root, container_id, notify, *flags = argv  # flags: "no-stdin" (fd 0 is /dev/null)

    def supervise() -> None:
        set_title(f"ipydock-supervisor {container_id[:12]}")
        with contextlib.suppress(FileNotFoundError):  # removed before we got going
            Supervisor(root, container_id, int(notify), "no-stdin" not in flags).run()

    detach(supervise)  # the starter reaps us at once; the supervisor is nobody's child
    return 0


if __name__ == "__main__":
    sys.exit(main())
