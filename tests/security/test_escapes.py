"""The escape suite: each attempt runs inside a default container and is judged on the host.

A default container is what ``run`` gives without flags: Docker's capabilities, device rules,
masked and read-only ``/proc`` and ``/sys`` paths, seccomp profile, its own namespaces (plus the
one flag an attempt is about: ``--read-only``, ``:ro``, ``--pids-limit``, ``-m``). An attempt is
contained when the host shows no trace of it: the file, process, device, clock, host name,
kernel setting or module list it went for is as it was, and nothing of the host came out.
Each attempt also runs under the private dockerd (docker 20.10 here) and must come out the
same: contained there too; and from a rootless container (nobody's), all but the fork bomb and
the memory hog (rootless containers have no cgroup: those limits are not applied, with a
warning).

Attempts are shell lines over busybox plus ``/h/escape`` (``escape_helper.c``, one raw system
call each: keyctl, bpf, perf_event_open, init_module, open_by_handle_at, unshare, clone,
ptrace, chroot breakout). The session ends with "escape attempts: N, contained: N".
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.testing import Dockerd, busybox_tarball
from tests.conftest import private_dockerd
from tests.rootless.conftest import NOBODY, as_user
from tests.security.conftest import Bait
from tests.security.tally import TALLY

pytestmark = pytest.mark.root


@dataclass
class Outcome:
    rc: int
    out: str
    changed: list[str]  # paths of the container's writable layer (diff)
    oom_killed: bool
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class Attempt:
    name: str
    script: Callable[[Bait], str]
    judge: Callable[[Bait, Outcome], bool]
    #: RunOptions fields beyond the helper at /h (values may name the bait: see _flags)
    flags: dict[str, Any] = field(default_factory=dict)
    #: host state read before and after the attempt (Outcome.before / .after)
    probe: Callable[[Bait], Any] | None = None


def refused(out: str) -> bool:
    """No helper call worked (each prints ``NAME: ok`` when it does)."""
    return ": ok" not in out


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def sysrq_lines(_bait: Bait) -> int:
    text = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    return sum("sysrq" in line.lower() for line in text.splitlines())


def host_state(_bait: Bait) -> tuple[str, str]:
    """The host name and the loaded modules (none listed: a kernel without module support)."""
    modules = read("/proc/modules") if os.path.exists("/proc/modules") else ""
    return socket.gethostname(), modules


def alive_untraced(bait: Bait) -> bool:
    try:
        status = read(f"/proc/{bait.pid}/status")
    except OSError:
        return False
    tracer = next(line.split()[1] for line in status.splitlines() if line.startswith("TracerPid"))
    return tracer == "0" and "State:\tZ" not in status


def loop_numbers(bait: Bait) -> str:
    rdev = os.stat(bait.disk).st_rdev
    return f"{os.major(rdev)} {os.minor(rdev)}"


BURST = "/proc/sys/kernel/printk_ratelimit_burst"
PRINTK_TIME = "/sys/module/printk/parameters/time"

ATTEMPTS = [
    Attempt("mount a filesystem",
            lambda b: "mount -t tmpfs none /mnt; echo rc=$?; /h/escape mount",
            lambda b, o: "rc=0" not in o.out and refused(o.out)),
    Attempt("remount the read-only root and /proc/sys writable",
            lambda b: "mount -o remount,rw / ; mount -o remount,rw /proc/sys; "
                      "touch /escaped; echo 1 > /proc/sys/kernel/ipds 2>/dev/null; true",
            lambda b, o: [p for p in o.changed if p != "/h"] == [],  # docker lists its mount point
            flags={"read_only": True}),
    Attempt("write /proc/sys (a global kernel setting)",
            lambda b: f"echo $(( $(cat {BURST}) + 1 )) > {BURST}; cat {BURST}",
            lambda b, o: o.before == o.after,
            probe=lambda b: read(BURST)),
    Attempt("write /proc/sysrq-trigger",
            lambda b: "echo h > /proc/sysrq-trigger",
            lambda b, o: o.before == o.after and o.rc != 0,
            probe=sysrq_lines),
    Attempt("write /sys (a module parameter)",
            lambda b: f"v=$(cat {PRINTK_TIME}); [ $v = Y ] && n=N || n=Y; echo $n > {PRINTK_TIME}",
            lambda b, o: o.before == o.after and o.rc != 0,
            probe=lambda b: read(PRINTK_TIME)),
    Attempt("mknod a host block device and read and write it",
            lambda b: f"mknod /tmp/disk b {loop_numbers(b)}; head -c 40 /tmp/disk; "
                      "echo ESCAPED > /tmp/disk",
            lambda b, o: b.token not in o.out and read(b.backing).startswith(b.token)),
    Attempt("read /proc/kcore",
            lambda b: "head -c 4096 /proc/kcore 2>/dev/null | wc -c",
            lambda b, o: o.out.split() == ["0"]),
    Attempt("see or signal a host process",
            lambda b: f"ls -d /proc/{b.pid}; kill -9 {b.pid}; /h/escape kill {b.pid}",
            lambda b, o: alive_untraced(b) and refused(o.out) and o.rc != 0),
    Attempt("ptrace a host process",
            lambda b: f"/h/escape ptrace {b.pid}",
            lambda b, o: alive_untraced(b) and refused(o.out)),
    Attempt("reach host files through /proc/*/root",
            lambda b: f"cat /proc/*/root{b.secret} /proc/1/root/../../..{b.secret} "
                      f"/proc/self/root/../{b.secret}; ls /proc/*/root/",
            lambda b, o: b.token not in o.out),
    Attempt("break out of a nested chroot",
            lambda b: f"/h/escape chroot-breakout {b.secret}",
            lambda b, o: b.token not in o.out and refused(o.out)),
    Attempt("unshare a user namespace and mount",
            lambda b: "unshare -Urm sh -c 'mount -t tmpfs none /mnt && echo mount: ok'; "
                      "/h/escape unshare-user-mount; /h/escape clone-newuser",
            lambda b, o: refused(o.out)),
    Attempt("load a kernel module",
            lambda b: "insmod /nonexistent.ko; /h/escape init_module; /h/escape finit_module",
            lambda b, o: refused(o.out) and o.before == o.after,
            probe=host_state),
    Attempt("change the host name",
            lambda b: "hostname ipds-escaped; /h/escape sethostname",
            lambda b, o: refused(o.out) and o.before == o.after,
            probe=host_state),
    Attempt("change the clock",
            lambda b: "date -s '2001-01-01 00:00:00'; /h/escape clock_settime",
            lambda b, o: refused(o.out) and abs(o.after - o.before) < 600,
            probe=lambda b: time.time() - time.monotonic()),
    Attempt("keyctl / add_key (the kernel keyring)",
            lambda b: "/h/escape keyctl; /h/escape add_key",
            lambda b, o: refused(o.out)),
    Attempt("bpf",
            lambda b: "/h/escape bpf",
            lambda b, o: refused(o.out)),
    Attempt("perf_event_open",
            lambda b: "/h/escape perf_event_open",
            lambda b, o: refused(o.out)),
    Attempt("open_by_handle_at (shocker)",
            lambda b: "/h/escape open_by_handle_at",
            lambda b, o: refused(o.out)),
    Attempt("follow symlinks in a bind mount out of it",
            lambda b: f"ln -s {b.secret} /data/out; ln -s ../../../../../.. /data/up; "
                      f"cat /data/out /data/up{b.secret}; echo PWNED > /data/out",
            lambda b, o: b.token not in o.out and read(b.secret).startswith(b.token),
            flags={"volumes": ("{scratch}:/data",)}),
    Attempt("write a read-only bind mount",
            lambda b: "touch /ro/new; echo PWNED > /ro/secret; mount -o remount,rw /ro; "
                      "touch /ro/new2",
            lambda b, o: read(b.secret).startswith(b.token)
                         and sorted(os.listdir(b.dir)) == ["disk.img", "secret"],  # fmt: skip
            flags={"volumes": ("{bait}:/ro:ro",)}),
    Attempt("fork bomb past --pids-limit",
            lambda b: "sh -c 'i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done' "
                      "2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n",
            lambda b, o: 16 < int(o.out.split("procs=")[-1].split()[0]) <= 32,
            flags={"pids_limit": 32}),
    Attempt("memory past -m",
            lambda b: "awk 'BEGIN { s = \"0123456789\"; while (1) s = s s }'",
            lambda b, o: o.rc == 137 and o.oom_killed,
            flags={"memory": "16m"}),
]  # fmt: skip
IDS = [a.name for a in ATTEMPTS]


def _flags(attempt: Attempt, helper: str, bait: Bait, scratch: str) -> dict[str, Any]:
    flags = dict(attempt.flags)
    names = {"bait": bait.dir, "scratch": scratch}
    volumes = tuple(v.format(**names) for v in flags.pop("volumes", ()))
    flags["volumes"] = (f"{helper}:/h:ro", *volumes)
    return flags


def _judge(attempt: Attempt, bait: Bait, run: Callable[[], Outcome]) -> bool:
    before = attempt.probe(bait) if attempt.probe else None
    outcome = run()
    outcome.before, outcome.after = before, attempt.probe(bait) if attempt.probe else None
    contained = attempt.judge(bait, outcome)
    if not contained:
        print(f"{attempt.name}: rc={outcome.rc} oom={outcome.oom_killed} "
              f"changed={outcome.changed} before={before!r} after={outcome.after!r}\n"
              f"{outcome.out}")  # fmt: skip
    return contained


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=IDS)
def test_escape_attempt_is_contained(
    attempt: Attempt, engine, escape_helper: str, bait: Bait, tmp_path,  # noqa: ANN001
) -> None:  # fmt: skip
    os.chmod(tmp_path, 0o777)

    def run() -> Outcome:
        seen: list[str] = []
        opts = RunOptions("busybox", ("sh", "-c", attempt.script(bait)),
                          **_flags(attempt, escape_helper, bait, str(tmp_path)))  # fmt: skip
        result = engine.run(opts, output=lambda _s, text: seen.append(text))
        changed = [c.path for c in engine.diff(result.id)]
        oom = bool(engine.inspect_container(result.id).state.get("OOMKilled"))
        engine.remove_container(result.id, force=True)
        return Outcome(int(result.exit_code or 0), "".join(seen), changed, oom)

    contained = _judge(attempt, bait, run)
    TALLY.record("ipydock", attempt.name, contained)
    assert contained, f"not contained: {attempt.name}"


# --- the same attempts under docker ------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_busybox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with private_dockerd() as d:
        tarball = busybox_tarball(str(tmp_path_factory.mktemp("bb") / "busybox.tar.gz"))
        d.run("import", tarball, "busybox")
        yield d


def _docker_args(flags: dict[str, Any]) -> list[str]:
    args = ["--network", "none"]
    for volume in flags.get("volumes", ()):
        args += ["-v", volume]
    if flags.get("read_only"):
        args.append("--read-only")
    if flags.get("pids_limit"):
        args += ["--pids-limit", str(flags["pids_limit"])]
    if flags.get("memory"):
        args += ["-m", flags["memory"]]
    return args


@pytest.mark.slow
@pytest.mark.parametrize("attempt", ATTEMPTS, ids=IDS)
def test_docker_contains_the_same_attempt(
    attempt: Attempt, docker_busybox: Dockerd, escape_helper: str, bait: Bait, tmp_path,  # noqa: ANN001
) -> None:  # fmt: skip
    os.chmod(tmp_path, 0o777)
    name = f"ipds-{os.getpid()}-{abs(hash(attempt.name)) % 10**8}"

    def run() -> Outcome:
        flags = _flags(attempt, escape_helper, bait, str(tmp_path))
        proc = docker_busybox.run("run", "--name", name, *_docker_args(flags), "busybox",
                                  "sh", "-c", attempt.script(bait), check=False)  # fmt: skip
        try:
            diff = docker_busybox.run("diff", name, check=False).stdout.decode().split()
            state = json.loads(docker_busybox.run("inspect", name).stdout)[0]["State"]
        finally:
            docker_busybox.run("rm", "-f", name, check=False)
        changed = [p for p in diff if p.startswith("/")]
        out = (proc.stdout + proc.stderr).decode()
        return Outcome(proc.returncode, out, changed, bool(state.get("OOMKilled")))

    contained = _judge(attempt, bait, run)
    TALLY.record("docker", attempt.name, contained)
    assert contained, f"docker did not contain: {attempt.name}"


# --- the same attempts from a rootless container ---------------------------------------------

#: Rootless, the user owns no cgroup: --pids-limit and -m are not applied (a WARNING says so,
#: see the README); those two attempts are root's.
ROOTLESS = [a for a in ATTEMPTS if not {"pids_limit", "memory"} & set(a.flags)]


def test_rootless_containers_contain_the_same_attempts(
    nobody_dir: str, escape_helper: str, bait: Bait,
) -> None:  # fmt: skip
    scratch = os.path.join(nobody_dir, "scratch")  # where nobody can reach (tmp_path is not)
    os.mkdir(scratch, 0o777)
    os.chmod(scratch, 0o777)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox")
        found: dict[str, Any] = {}
        for attempt in ROOTLESS:
            seen: list[str] = []
            opts = RunOptions("busybox", ("sh", "-c", attempt.script(bait)),
                              **_flags(attempt, escape_helper, bait, scratch))  # fmt: skip
            result = backend.run(opts, output=lambda _s, text, seen=seen: seen.append(text))
            changed = [c.path for c in backend.diff(result.id)]
            backend.remove_container(result.id, force=True)
            found[attempt.name] = (int(result.exit_code or 0), "".join(seen), changed)
        backend.close()
        return found

    before = {a.name: a.probe(bait) for a in ROOTLESS if a.probe}
    found = as_user(NOBODY, work)
    failed = []
    for attempt in ROOTLESS:
        rc, out, changed = found[attempt.name]
        outcome = Outcome(rc, out, changed, False, before.get(attempt.name),
                          attempt.probe(bait) if attempt.probe else None)  # fmt: skip
        contained = attempt.judge(bait, outcome)
        TALLY.record("rootless", attempt.name, contained)
        if not contained:
            failed.append(f"{attempt.name}: rc={rc} changed={changed}\n{out}")
    assert failed == []
