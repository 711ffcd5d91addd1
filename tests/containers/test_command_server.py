"""The warm command server behind ``ipydock`` (``ipydock.launcher``, ``ipydock.cli.server``).

Each test starts a real server in a runtime dir of its own and drives it through a real
client, ``python -m ipydock`` (:mod:`ipydock.launcher`) and, where the test says ``client``,
also the native one (``ipydock/launcher.c``, compiled here): the command must behave exactly
as if it ran in the client (stdio, working directory, umask, environment, exit code, signals),
the client must run it itself where the server cannot take it, and the server must give way
when it is told to, when it is idle, and when ipydock's sources change.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from ipydock import native_launcher
from ipydock.testing import CommandServer
from tests.containers.conftest import PYTHON_CLIENT

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    server: CommandServer
    client: list[str] = field(default_factory=lambda: PYTHON_CLIENT)

    @property
    def env(self) -> dict[str, str]:
        return self.server.env

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.server.proc is not None
        return self.server.proc

    def ipydock(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.client, *args], env=self.env, capture_output=True,
                              text=True, timeout=120, **kw)  # type: ignore[call-overload]  # fmt: skip

    def children(self) -> list[int]:
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        return [int(p) for p in Path(path).read_text().split()]

    def workers(self) -> list[int]:
        """The server's workers with a command: one per command in progress (not the one
        waiting for the next command, nor the fork-server helper, which forks the spare
        supervisors it hands to commands that start one)."""
        return [p for p in self.children() if _cmdline(p).startswith(b"ipydock ")]

    def waiting(self) -> list[int]:
        """The worker forked ahead for the next command (none while a command runs; titled
        ``ipydock-server-worker``, or still the server's title just after the fork)."""
        return [p for p in self.children()
                if _cmdline(p).startswith(b"ipydock-server")]  # fmt: skip

    def next_worker(self) -> int:
        """The worker forked for the next command, once the server has forked it (right after
        it passed the last exit code on): /proc is looked at until it is there."""
        deadline = time.monotonic() + 30
        while not (ready := self.waiting()) and time.monotonic() < deadline:
            time.sleep(0.005)
        [pid] = ready
        return pid

    def settled(self) -> bool:
        """No worker with a command left: a worker reports its exit code before it has gone,
        so wait for each one's exit (its pidfd), then look again."""
        return all(wait_for_exit(pid) for pid in self.workers()) and self.workers() == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture
def served(root: str) -> Iterator[Served]:
    with CommandServer({**os.environ, "IPYDOCK_ROOT": root}) as server:
        yield Served(server)


@pytest.fixture
def served_by(served: Served, client: list[str]) -> Served:
    """The server, driven by each client in turn."""
    return replace(served, client=client)


def wait_for_exit(pid: int, timeout: float = 30) -> bool:
    """True once ``pid`` has exited (its pidfd becomes readable); no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_a_command_runs_in_the_server_with_the_callers_cwd_env_stdio_and_exit_code(
    served_by: Served, engine, tmp_path: Path
) -> None:  # fmt: skip
    served = served_by
    local = {**served.env, "IPYDOCK_SERVER": "0"}
    listed = served.ipydock("image", "ls", "--format", "json")  # IPYDOCK_ROOT: the caller's
    assert listed.returncode == 0
    here = [sys.executable, "-m", "ipydock", "image", "ls", "--format", "json"]
    assert listed.stdout == subprocess.run(here, env=local, capture_output=True, text=True).stdout
    assert "busybox" in listed.stdout
    work = tmp_path / "work"
    work.mkdir()
    assert served.ipydock("image", "save", "-o", "bb.tar", "busybox", cwd=work).returncode == 0
    assert (work / "bb.tar").stat().st_size > 1_000_000  # written in the caller's cwd
    echoed = served.ipydock("run", "--rm", "-i", "busybox", "cat", input="from the caller\n")
    assert (echoed.returncode, echoed.stdout) == (0, "from the caller\n")
    failed = served.ipydock("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (failed.returncode, failed.stdout, failed.stderr) == (7, "out\n", "err\n")
    missing = served.ipydock("image", "inspect", "nosuch")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: ") and len(missing.stderr.splitlines()) == 1
    assert served.proc.poll() is None and served.settled()


def test_signals_reach_the_command_and_a_killed_caller_takes_it_along(served_by: Served, engine):
    served = served_by
    script = "echo started; while :; do sleep 0.05; done"
    assert (
        served.ipydock("run", "-d", "--name", "bg", "busybox", "sh", "-c", script).returncode == 0
    )

    def follow() -> tuple[subprocess.Popen[str], int]:
        assert served.settled()
        ready = served.next_worker()
        follower = subprocess.Popen([*served.client, "logs", "-f", "bg"], env=served.env,
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert follower.stdout is not None and follower.stdout.readline() == "started\n"
        # the follower runs in the server, in the worker that was waiting for it
        assert served.workers() == [ready]
        return follower, ready

    follower, worker = follow()
    follower.send_signal(signal.SIGINT)  # Ctrl-C at the terminal
    assert follower.wait(timeout=30) == 130
    assert wait_for_exit(worker)
    follower.stdout.close()  # type: ignore[union-attr]

    follower, worker = follow()
    follower.kill()  # no chance to pass anything on: the server sees its caller go
    follower.wait(timeout=30)
    assert wait_for_exit(worker), "the worker of a killed caller is still running"
    follower.stdout.close()  # type: ignore[union-attr]
    assert served.ipydock("rm", "-f", "bg").returncode == 0


def test_status_and_stop(served_by: Served) -> None:
    served = served_by  # `system server` always runs in the client (native: Python's)
    status = json.loads(served.ipydock("system", "server", "--format", "json").stdout)
    assert status["running"] and status["pid"] == served.proc.pid
    assert served.ipydock("system", "server", "stop").stdout == "stopped\n"
    assert served.proc.wait(timeout=30) == 0
    assert not os.path.exists(status["socket"])
    again = json.loads(served.ipydock("system", "server", "--format", "json").stdout)
    assert again["running"] is False


def test_an_idle_server_leaves_by_itself() -> None:
    with CommandServer({**os.environ, "IPYDOCK_SERVER_IDLE": "0.2"}) as server:
        assert server.proc is not None and server.proc.wait(timeout=30) == 0
        assert [p for p in os.listdir(server.dir) if p.endswith(".sock")] == []


def test_a_server_gives_way_when_the_sources_change(
    tmp_path: Path, root: str, busybox, client: list[str]
) -> None:  # fmt: skip
    copy = tmp_path / "src"
    shutil.copytree(REPO / "ipydock", copy / "ipydock",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    server = CommandServer({**os.environ, "PYTHONPATH": str(copy), "IPYDOCK_ROOT": root},
                           cwd=str(tmp_path)).start()  # fmt: skip
    env, old = server.env, server.proc
    assert old is not None
    if client != PYTHON_CLIENT:  # built for the copy: its key is the copy's
        client = [str(tmp_path / "ipydock")]
        native_launcher.build(client[0], env=env)

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*client, *args], env={**env, **extra}, capture_output=True,
                              text=True, cwd=tmp_path)  # fmt: skip

    assert cli("image", "ls", "-q").stdout.strip()
    assert old.poll() is None
    os.utime(copy / "ipydock" / "cli" / "images.py", ns=(1, 1))  # an edit or an upgrade
    # The next command gets "stale": it runs in the caller, once, the old server leaves, and
    # a new one is started in the background (told to leave at once when idle, for this test).
    created = cli("create", "--name", "once", "busybox", IPYDOCK_SERVER_IDLE="0")
    assert (created.returncode, created.stderr) == (0, ""), created.stderr
    assert old.wait(timeout=30) == 0
    lock = next(Path(server.dir).glob("*.lock"))
    with open(lock) as f:  # the new server holds the lock until it leaves: wait for that
        fcntl.flock(f, fcntl.LOCK_EX)
    assert cli("ps", "-aq", IPYDOCK_SERVER="0").stdout.split() == [created.stdout.strip()[:12]]
    assert cli("rm", "once", IPYDOCK_SERVER="0").returncode == 0
    server.stop()


TRAPS = (
    'trap "echo got TERM; exit 5" TERM; trap "echo got INT; exit 6" INT; echo ready; '
    "while :; do sleep 0.05; done"
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 6), (signal.SIGTERM, 5)])
def test_a_signal_to_the_client_reaches_an_attached_container(
    served_by: Served, engine, signum: int, code: int
) -> None:  # fmt: skip
    """Passed on to the worker, and by its sig-proxy to the container's process."""
    proc = subprocess.Popen([*served_by.client, "run", "--rm", "--network", "none", "busybox",
                             "sh", "-c", TRAPS], env=served_by.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"  # traps are set
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    name = signal.Signals(signum).name[3:]
    assert (proc.returncode, out, err) == (code, f"got {name}\n", "")


def _cat(client: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``run -i … cat``, once its container echoes: a command that runs until stdin ends."""
    proc = subprocess.Popen([*client, "run", "-i", "--rm", "--network", "none", "busybox", "cat"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"through\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"through\n"
    return proc


def test_a_server_killed_under_a_command_is_reported_and_the_command_not_run_again(
    served_by: Served, engine
) -> None:  # fmt: skip
    proc = _cat(served_by.client, served_by.env)
    [worker] = served_by.workers()
    served_by.proc.kill()
    served_by.proc.wait()
    assert proc.wait(timeout=30) == 1
    assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
    proc.stdin.close()  # the orphaned worker's container reads EOF and ends
    assert wait_for_exit(worker)
    assert proc.stderr.read().decode() == (
        "Error: the ipydock command server went away; see `ipydock system server status`, "
        "or set IPYDOCK_SERVER=0\n"
    )
    assert proc.stdout.read() == b""  # nothing echoed twice
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.parametrize("value", ["0", "off"])
def test_ipydock_server_0_runs_the_command_in_the_client(
    served_by: Served, engine, value: str
) -> None:  # fmt: skip
    proc = _cat(served_by.client, {**served_by.env, "IPYDOCK_SERVER": value})
    assert served_by.workers() == []  # running, and not in the server
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (0, b"", b"")


class Created:
    """inotify on a directory: waits for an entry to be created in it (an event, not a poll)."""

    IN_CREATE = 0x100

    def __init__(self, directory: str) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(directory),
                                                 self.IN_CREATE) < 0:  # fmt: skip
            raise OSError(ctypes.get_errno(), f"inotify on {directory}")

    def wait(self, suffix: str, timeout: float) -> str | None:
        """The name of the first entry created that ends with ``suffix``; None on time out."""
        event = struct.Struct("iIII")
        while select.select([self.fd], [], [], timeout)[0]:
            data = os.read(self.fd, 65536)
            while data:
                _wd, _mask, _cookie, size = event.unpack_from(data)
                name = data[event.size : event.size + size].rstrip(b"\0").decode()
                if name.endswith(suffix):
                    return name
                data = data[event.size + size :]
        return None

    def close(self) -> None:
        os.close(self.fd)


def test_without_a_server_the_command_runs_in_the_client_and_starts_one(
    client: list[str], root: str, busybox, tmp_path: Path
) -> None:  # fmt: skip
    runtime = tmp_path / "run"  # no server in it yet
    runtime.mkdir(mode=0o700)
    # the server it starts is told to leave at once when idle (for this test)
    env = {**os.environ, "IPYDOCK_ROOT": root, "IPYDOCK_RUNTIME_DIR": str(runtime),
           "IPYDOCK_SERVER_IDLE": "0"}  # fmt: skip
    env.pop("IPYDOCK_SERVER", None)
    from ipydock.cli import server

    created = Created(str(runtime))
    try:
        listed = subprocess.run([*client, "image", "ls", "-q"], env=env, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert (listed.returncode, listed.stdout, listed.stderr) == (0, busybox[7:19] + "\n", "")
        sock = created.wait(".sock", timeout=60)  # bound by the server it started
        assert sock is not None and sock.startswith("cmd-")
        with open(runtime / f"{sock}.lock") as f:  # held until that server leaves
            fcntl.flock(f, fcntl.LOCK_EX)
    finally:
        created.close()
        server.stop(str(runtime))


def test_cwd_umask_environment_and_arguments_with_bytes_that_are_not_ascii(
    served_by: Served, engine, tmp_path: Path
) -> None:  # fmt: skip
    """Passed as bytes, whatever their encoding: as if the command ran in the client."""
    work = os.path.join(os.fsencode(tmp_path), b"w\xc3\xb6rk-\xff")
    os.mkdir(work)
    env = {os.fsencode(k): os.fsencode(v) for k, v in served_by.env.items()}
    env[b"IPYDOCK_T"] = b"caf\xc3\xa9 \xff"

    def ipydock(*args: str | bytes, **more: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*served_by.client, *args], cwd=work, env={**env, **more},
                              umask=0o027, capture_output=True, timeout=120)  # fmt: skip

    script = 'printf "%s|%s|" "$IPYDOCK_T" "$1"; pwd'
    argv = ["run", "--rm", "--network", "none", "-e", "IPYDOCK_T", "-w", "/tmp", "busybox",
            "sh", "-c", script, "sh", b"\xe2\x9c\x93 \xfe"]  # fmt: skip
    ran = ipydock(*argv)
    assert (ran.returncode, ran.stderr) == (0, b"")
    assert ran.stdout.startswith(b"caf\xc3\xa9 ") and b"|\xe2\x9c\x93 " in ran.stdout
    here = subprocess.run([*PYTHON_CLIENT, *argv], cwd=work, env={**env, b"IPYDOCK_SERVER": b"0"},
                          capture_output=True, timeout=120)  # fmt: skip
    assert ran.stdout == here.stdout
    assert served_by.settled()
    made = ipydock("--root", "store", "volume", "create", "v1")  # relative to the cwd
    assert (made.returncode, made.stdout, made.stderr) == (0, b"v1\n", b"")
    assert os.stat(os.path.join(work, b"store", b"volumes", b"v1")).st_mode & 0o777 == 0o750


class _DroppedAfterPid:
    """A server connection that names its worker, then breaks (a pure logic check)."""

    def __init__(self) -> None:
        self.replies: list[bytes | Exception] = [b"pid 999999", ConnectionResetError(104, "reset")]

    def sendmsg(self, *args: object) -> int:
        return 0

    def recv(self, size: int) -> bytes:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        pass


def test_a_connection_lost_after_the_worker_started_does_not_run_the_command_again(
    monkeypatch, capfd
) -> None:
    from ipydock import launcher

    monkeypatch.setattr(launcher, "_connect", _DroppedAfterPid)
    monkeypatch.setattr(launcher._signal, "signal", lambda *a: None)  # no forwarders here
    assert launcher.run_remote(["image", "rm", "x"]) == 1  # not None: None means "run it here"
    assert "command server went away" in capfd.readouterr().err


def _spares() -> set[str]:
    from ipydock.engine.runtime import cgroups

    return {
        os.path.join(mount, "ipydock", name)
        for mount in set(cgroups.v1_mounts().values())
        if os.path.isdir(os.path.join(mount, "ipydock"))
        for name in os.listdir(os.path.join(mount, "ipydock"))
        if name.startswith("spare-")
    }


def test_a_command_that_starts_a_container_gets_a_prepared_spare(engine, root: str) -> None:
    """The server hands `run` a spare supervisor whose cgroup and pid 1 are made (the default
    cgroup parent only: a caller's own parent would keep a spare's cgroup for the server's
    life); stopping the server leaves no spare behind."""
    before = _spares()
    env = {k: v for k, v in os.environ.items() if k != "IPYDOCK_CGROUP_PARENT"}
    with CommandServer({**env, "IPYDOCK_ROOT": root}) as server:
        served = Served(server)
        ran = served.ipydock("run", "--rm", "busybox", "cat", "/proc/self/cgroup")
        assert ran.returncode == 0, ran.stderr
        joined = dict(line.split(":", 2)[1:] for line in ran.stdout.splitlines())
        # a prepared cgroup spans memory even without -m (a start of its own joins devices)
        assert joined["memory"].startswith("/ipydock/") and joined["memory"] == joined["devices"]
    assert _spares() <= before  # the next command's spare, ordered meanwhile, is gone


def _zygotes(server: CommandServer) -> list[int]:
    """The zygote of ``server``: its stderr is the server's log, in the server's dir."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{name}/cmdline").read_bytes()
            log = os.readlink(f"/proc/{name}/fd/2")
        except OSError:
            continue
        if title.startswith(b"ipydock-server-zygote") and log.startswith(server.dir):
            found.append(int(name))
    return found


def test_a_detached_start_gets_its_supervisor_from_the_zygote_with_the_callers_env(
    served: Served, engine, root: str
) -> None:  # fmt: skip
    [zygote] = _zygotes(served.server)
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]  # the engine fixture's; not the server's
    assert served.server.env.get("IPYDOCK_CGROUP_PARENT") != parent
    env = {**served.env, "IPYDOCK_CGROUP_PARENT": parent}
    started = subprocess.run([sys.executable, "-m", "ipydock", "run", "-d", "--name", "zy",
                              "busybox", "sh", "-c", "echo up; exec sleep 1000"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    state = json.loads(served.ipydock("container", "inspect", "zy").stdout)[0]["state"]
    assert state["Running"]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    [sup] = [int(line.split()[0]) for line in ps.splitlines()
             if f"ipydock-supervisor {started.stdout.strip()[:12]}" in line]  # fmt: skip
    cid = started.stdout.strip()
    recorded = json.loads((Path(root) / "containers" / cid / "state.json").read_text())
    assert recorded["cgroup"] and all(f"/{parent}/{cid}" in d for d in recorded["cgroup"])
    assert served.ipydock("logs", "zy").stdout == "up\n"
    assert served.ipydock("stop", "-t", "0", "zy").returncode == 0
    assert wait_for_exit(sup)
    detail = json.loads(served.ipydock("container", "inspect", "zy").stdout)[0]
    assert detail["state"]["ExitCode"] == 137
    assert served.ipydock("rm", "zy").returncode == 0
    served.server.stop()
    assert wait_for_exit(zygote), "the zygote outlived its server"
