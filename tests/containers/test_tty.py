"""Terminals as docker has them: ``run -it``, ``exec -it``, ``create -t`` + ``start -ai``,
``attach``, detach keys, window size, Ctrl-C, sig-proxy, through the real CLI.

The CLI runs on a pseudo-terminal this test opens (``os.openpty``), as the session leader's
controlling terminal, as in a user's shell; the test types into the master and reads what the
user would see, waiting with ``select`` and a deadline. The CLI goes through the suite's
command server (``ipydock.launcher``), and once without it. Where docker's behaviour is
visible (exit codes, "the input device is not a TTY", sig-proxy), a private dockerd is asked
the same.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ipydock.engine.containers.terminal import DetachKeys, parse_detach_keys, resize_container
from ipydock.engine.runtime.console import get_size, set_size
from ipydock.errors import UsageError
from tests.conftest import require
from tests.containers.conftest import settled_processes_using
from tests.rootless.conftest import NOBODY, as_user

PROMPT = b"/ # "
DEADLINE = 60.0


class Screen:
    """A command on a pseudo-terminal of its own: type with :meth:`send`, wait for output with
    :meth:`expect`; the slave stays open here to check the terminal's settings after."""

    def __init__(self, argv: list[str], rows: int = 24, cols: int = 80, **env: str) -> None:
        self.master, self.slave = os.openpty()
        set_size(self.slave, rows, cols)
        self.saved = termios.tcgetattr(self.slave)
        self.seen = b""
        slave = self.slave

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
            preexec_fn=controlling_terminal, env={**os.environ, **env},
        )  # fmt: skip

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, pattern: bytes, deadline: float = DEADLINE) -> bytes:
        """Read until ``pattern`` (a regex) shows; what came up to its end is consumed."""
        end = time.monotonic() + deadline
        while True:
            found = re.search(pattern, self.seen)
            if found:
                out, self.seen = self.seen[: found.end()], self.seen[found.end() :]
                return out
            left = end - time.monotonic()
            ready = select.select([self.master], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise AssertionError(f"no {pattern!r} within {deadline} s; got {self.seen!r}")
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process on the terminal is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"the terminal closed before {pattern!r}: {self.seen!r}")
            self.seen += chunk.replace(b"\x1b[6n", b"")  # busybox asks where the cursor is

    def wait(self) -> int:
        """The command's exit status (its output read meanwhile, so that it never blocks)."""
        end = time.monotonic() + DEADLINE
        pidfd = os.pidfd_open(self.proc.pid)
        try:
            while True:
                left = end - time.monotonic()
                ready = select.select([self.master, pidfd], [], [], max(left, 0))[0]
                if pidfd in ready or not ready:
                    break
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # EIO: nothing holds the terminal any more
                    break
        finally:
            os.close(pidfd)
        return self.proc.wait(timeout=DEADLINE)

    def size_becomes(self, rows: int, cols: int) -> None:
        """After the user resized the window: ask the shell (``stty size``) until it reports
        the new size; the CLI passes it on asynchronously, and busybox redraws its line at
        once only when the signal finds it waiting for a key."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            self.send(b"stty size\r")
            found = re.fullmatch(rb"(?s).*?(\d+) (\d+)\r\n", self.expect(rb"\d+ \d+\r\n"))
            assert found is not None
            if (int(found[1]), int(found[2])) == (rows, cols):
                return
        raise AssertionError(f"the size never became {rows} {cols}")

    def restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.saved

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A command server of this module's own, ready before the first command (the launcher
    runs a command itself while the server it starts is not up yet): its runtime dir."""
    from ipydock.testing import CommandServer

    with CommandServer() as server:
        yield server.dir


@pytest.fixture
def screens(engine, root: str, served: str, client: list[str]) -> Iterator:
    """Open CLI commands on terminals of their own, through the command server (by either
    client: a terminal's size and settings are theirs to pass on and restore); all closed
    after the test."""
    opened: list[Screen] = []

    def open_(*args: str, rows: int = 24, cols: int = 80, **env: str) -> Screen:
        argv = [*client, "--root", root, *args]
        screen = Screen(argv, rows, cols, **{"IPYDOCK_RUNTIME_DIR": served, **env})
        opened.append(screen)
        return screen

    yield open_
    for screen in opened:
        screen.close()


def _cli(root: str, *args: str, **kw: object) -> subprocess.CompletedProcess:
    kw.setdefault("text", True)
    argv = [sys.executable, "-m", "ipydock", "--root", root, *args]
    return subprocess.run(argv, capture_output=True, timeout=120, **kw)  # type: ignore[call-overload]


def test_run_it_gives_a_shell_with_the_terminal_size_ctrl_c_and_exit_code(screens) -> None:
    s = screens("run", "-it", "--rm", "--network", "none", "busybox", "sh", rows=30, cols=100)
    s.expect(PROMPT)
    s.send(b"echo $((6*7)) $TERM; tty; stty size\r")
    s.expect(rb"42 xterm\r\n/dev/pts/0\r\n30 100\r\n")
    s.expect(PROMPT)
    set_size(s.master, 40, 120)  # the user resizes the window: SIGWINCH to the CLI ...
    s.size_becomes(40, 120)  # ... which resizes the container's terminal
    # Ctrl-C is a byte for the terminal: it interrupts the sleep, not the shell
    s.send(b"(echo sleeping; exec sleep 1234)\r")
    s.expect(rb"sleeping\r\n")
    s.send(b"\x03")
    s.expect(PROMPT)
    s.send(b"echo rc=$?\r")
    s.expect(rb"rc=130\r\n")
    s.send(b"exit 3\r")
    assert s.wait() == 3
    assert s.restored()


def test_detach_keys_leave_it_running_and_attach_finds_the_same_terminal(
    screens, engine, root: str
) -> None:
    s = screens("run", "-it", "--name", "keep", "--network", "none", "busybox", "sh")
    s.expect(PROMPT)
    s.send(b"A=kept; echo set\r")
    s.expect(rb"set\r\n")
    s.send(b"\x10\x11")  # ctrl-p ctrl-q
    assert s.wait() == 0
    assert s.restored()
    detail = engine.inspect_container("keep")
    assert detail.state["Running"]
    sock = os.stat(os.path.join(root, "containers", detail.id, "attach.sock"))
    assert stat.S_ISSOCK(sock.st_mode) and sock.st_mode & 0o077 == 0  # its owner only

    a = screens("attach", "--detach-keys", "ctrl-x", "keep", rows=33, cols=77)
    a.send(b"echo $A; stty size\r")
    a.expect(rb"kept\r\n33 77\r\n")  # the same shell, at the size of the new terminal
    a.send(b"\x18")
    assert a.wait() == 0
    assert engine.inspect_container("keep").state["Running"]

    b = screens("attach", "keep")
    b.send(b"exit 5\r")
    assert b.wait() == 5
    assert b.restored()
    assert engine.wait_container("keep") == 5
    # logs of a terminal container: what the terminal showed, as stdout
    logs = _cli(root, "logs", "keep")  # (text mode: CR LF read as LF)
    assert "\nkept\n33 77\n" in logs.stdout and logs.stderr == ""


def test_exec_it_and_create_t_start_ai(screens, engine) -> None:
    engine.run(_opts(("sleep", "1000"), name="sleeper"), detach=True)
    e = screens("exec", "-it", "sleeper", "sh", rows=21, cols=61)
    e.expect(PROMPT)
    e.send(b"echo $TERM; tty; stty size\r")
    e.expect(rb"xterm\r\n/dev/pts/\d+\r\n21 61\r\n")
    e.send(b"exit 4\r")
    assert e.wait() == 4
    assert e.restored()

    created = screens("create", "-it", "--name", "later", "--network", "none", "busybox", "sh")
    assert created.wait() == 0
    st = screens("start", "-ai", "later", rows=25, cols=90)
    st.expect(PROMPT)
    st.send(b"stty size; exit 6\r")
    st.expect(rb"25 90\r\n")
    assert st.wait() == 6


def test_exec_it_detached_goes_on(screens, engine) -> None:
    engine.run(_opts(("sleep", "1000"), name="host1"), detach=True)
    e = screens("exec", "-it", "host1", "sh")
    e.expect(PROMPT)
    # quoted, so that the terminal's echo of the typed line is not taken for its output
    e.send(b"echo $$ > /pid; echo sa''ved\r")
    e.expect(rb"\nsaved\r\n")
    e.send(b"\x10\x11")
    assert e.wait() == 0
    assert e.restored()
    alive = ["sh", "-c", "kill -0 $(cat /pid) && echo alive"]  # docker's daemon keeps it too
    assert _run_out(engine, "host1", alive) == (0, "alive\n")


def _run_out(engine, container: str, command: list[str]) -> tuple[int, str]:
    import tempfile

    with tempfile.TemporaryFile() as out:
        code = engine.exec(container, command, stdin=subprocess.DEVNULL, stdout=out)
        out.seek(0)
        return code, out.read().decode()


def test_the_engines_handle_from_a_threaded_process(engine) -> None:
    """As the API service and a kernel call it: supervisors forked by the warm helper, execs
    through a new nsexec process; an exec released goes on (a thread holds its terminal)."""
    import threading

    hold = threading.Event()
    other = threading.Thread(target=hold.wait)
    other.start()
    try:
        s = engine.run_terminal(_opts(("sh",), tty=True, interactive=True, name="threaded"),
                                console_size=(10, 50))  # fmt: skip
        _until(s.terminal, PROMPT)
        s.terminal.write(b"stty size\r")
        assert b"\r\n10 50\r\n" in _until(s.terminal, rb"\d+ \d+\r\n")
        e = engine.exec_terminal("threaded", ["sh"], console_size=(11, 51))
        _until(e.terminal, PROMPT)
        e.terminal.write(b"stty size; echo $$ > /pid\r")
        assert b"\r\n11 51\r\n" in _until(e.terminal, rb"\d+ \d+\r\n")
        e.release()
        rec = engine.inspect_container("threaded")  # docker's POST /containers/ID/resize
        resize_container(os.path.dirname(rec.log_path), rec.id, 12, 52)
        s.terminal.write(b"stty size\r")
        assert b"\r\n12 52\r\n" in _until(s.terminal, rb"\d+ \d+\r\n")
        alive = ["sh", "-c", "kill -0 $(cat /pid) && echo alive"]
        assert _run_out(engine, "threaded", alive) == (0, "alive\n")
        s.terminal.write(b"exit 9\r")
        _until(s.terminal, None)
        assert s.wait() == 9
    finally:
        hold.set()
        other.join()


def test_a_killed_worker_leaves_the_terminal_as_it_was(screens, engine, root: str) -> None:
    """The command server's worker runs the session; killed outright (no chance to restore
    anything), the ``ipydock`` launcher on the terminal restores it; the container goes on."""
    s = screens("run", "-it", "--name", "orphan", "--network", "none", "busybox", "sh")
    s.expect(PROMPT)
    assert not s.restored()  # raw while attached
    title = f"ipydock --root {root} run -it --name orphan".encode()
    (worker,) = [
        int(p) for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith(title)
    ]
    os.kill(worker, signal.SIGKILL)
    assert s.wait() == 137
    assert s.restored()
    assert engine.inspect_container("orphan").state["Running"]


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ")
    except OSError:
        return b""


def test_a_client_that_stops_reading_is_dropped_not_waited_for(engine) -> None:
    """The hub never holds a container's output back for one client: one that reads nothing
    is dropped once 1 MiB behind (it sees the end), the other one gets everything."""
    flood = "read x; head -c 3000000 /dev/zero | tr '\\0' y; echo; echo END; sleep 1000"
    fast = engine.run_terminal(_opts(("sh", "-c", flood), tty=True, interactive=True,
                                     name="flood"))  # fmt: skip
    slow = engine.attach_terminal("flood")
    fast.terminal.write(b"go\r")
    seen = _until(fast.terminal, rb"END\r\n")
    assert seen.count(b"y") == 3_000_000  # all of it
    dropped = _until(slow.terminal, None)  # ends: what its socket held, then EOF
    assert len(dropped) < 2_000_000  # not all of it
    assert engine.inspect_container("flood").state["Running"]
    slow.release()
    fast.release()


def test_without_the_command_server_too(screens) -> None:
    s = screens("run", "-it", "--rm", "--network", "none", "busybox", "sh", IPYDOCK_SERVER="0")
    s.expect(PROMPT)
    set_size(s.master, 50, 140)
    s.size_becomes(50, 140)
    s.send(b"exit 2\r")
    assert s.wait() == 2
    assert s.restored()


@pytest.mark.parametrize("server", ["served", "IPYDOCK_SERVER=0"])
def test_sig_proxy_passes_ctrl_c_to_a_container_without_a_terminal(
    engine, root: str, served: str, server: str
) -> None:
    env = {**os.environ, "IPYDOCK_RUNTIME_DIR": served}
    if server != "served":
        env["IPYDOCK_SERVER"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipydock", "--root", root, "run", "--rm", "--network", "none",
         "busybox", "sh", "-c", _TRAP],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    out, code = _interrupt(proc)
    assert (code, out) == (7, b"ready\ngot INT\n")


_TRAP = "trap 'echo got INT; exit 7' INT; echo ready; sleep 1000 & wait"


def _interrupt(proc: subprocess.Popen[bytes]) -> tuple[bytes, int]:
    """Wait for ``ready`` on its stdout, SIGINT it (a user's Ctrl-C), read to the end."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == b"ready\n", (line, proc.stderr.read() if proc.stderr else b"")
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=DEADLINE)
    return line + rest, proc.returncode


def test_dash_t_without_a_terminal_on_stdin_as_docker(engine, root: str, docker_busybox) -> None:
    ours = _cli(root, "run", "-it", "--rm", "busybox", "sh", stdin=subprocess.DEVNULL)
    assert (ours.returncode, ours.stderr) == (1, "the input device is not a TTY\n")
    # -t alone does not read stdin: it runs, and its output is the terminal's (CR LF)
    plain = _cli(root, "run", "-t", "--rm", "--network", "none", "busybox", "echo", "hi",
                 stdin=subprocess.DEVNULL, text=False)  # fmt: skip
    assert (plain.returncode, plain.stdout) == (0, b"hi\r\n")
    d = docker_busybox
    theirs = d.run("run", "-it", "--rm", "busybox", "sh", check=False,
                   stdin=subprocess.DEVNULL)  # fmt: skip
    assert (theirs.returncode, theirs.stderr.decode()) == (ours.returncode, ours.stderr)
    tplain = d.run("run", "-t", "--rm", "--network", "none", "busybox", "echo", "hi",
                   stdin=subprocess.DEVNULL)  # fmt: skip
    assert tplain.stdout == plain.stdout
    proc = subprocess.Popen(
        ["docker", "run", "--rm", "--network", "none", "busybox", "sh", "-c", _TRAP],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=d.env(),
    )  # fmt: skip
    assert _interrupt(proc) == (b"ready\ngot INT\n", 7)


_IGNORE = "trap 'echo got' INT TERM; echo ready; while :; do sleep 1 & wait; done"


def _three_interrupts(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Ctrl-C three times at a container that only says it got each one: the exit code and
    the stderr of the client. (Each next one once the last arrived: signals do not queue.)"""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    for i in range(3):
        proc.send_signal(signal.SIGINT)
        if i < 2:
            assert proc.stdout.readline() == b"got\n"
    _, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, err.decode()


def _ignored(argv: list[str], env: dict[str, str], kill: list[str]) -> tuple[int, str, str]:
    """``--sig-proxy=false``: Ctrl-C and SIGTERM reach neither the client (it ignores them:
    the kernel drops a signal that is ignored when it is sent) nor the container; ``kill``
    ends the container, and with it the client: its exit code, later stdout, stderr."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    subprocess.run(kill, env=env, check=True, capture_output=True)
    out, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out.decode(), err.decode()


def test_ctrl_c_thrice_and_no_sig_proxy_as_docker(
    engine, root: str, served: str, docker_busybox
) -> None:
    env = {**docker_busybox.env(), "IPYDOCK_RUNTIME_DIR": served}
    ours = [sys.executable, "-m", "ipydock", "--root", root]
    trap = "trap 'echo got' INT TERM; echo ready; sleep 1000 & wait"
    found = {}
    for who, cli in (("ours", ours), ("docker", ["docker"])):
        run = [*cli, "run", "--network", "none"]
        found[who] = (
            _three_interrupts([*run, "--name", "thrice", "busybox", "sh", "-c", _IGNORE], env),
            _ignored([*run, "--name", "quiet", "--sig-proxy=false", "busybox", "sh", "-c", trap],
                     {**env, "IPYDOCK_SERVER": "0"}, [*cli, "kill", "quiet"]),
        )  # fmt: skip
        if who == "ours":  # the client left, the container goes on
            assert engine.inspect_container("thrice").state["Running"]
    assert found["ours"] == found["docker"]
    assert found["ours"] == ((1, "\ngot 3 SIGTERM/SIGINTs, forcefully exiting\n"), (137, "", ""))
    docker_busybox.run("rm", "-f", "thrice", "quiet")


@pytest.fixture
def docker_busybox(dockerd, busybox_tgz: str):
    """The session's dockerd with the same busybox image (``docker import``)."""
    dockerd.run("import", "--change", 'CMD ["sh"]', busybox_tgz, "busybox")
    return dockerd


def test_start_a_without_a_terminal_as_docker(engine, root: str, docker_busybox) -> None:
    """``start -a``: the output (stdout and stderr apart) and the exit code; ``-ai``: stdin."""
    script = "echo out; echo err >&2; exit 2"

    def both(*cli: list[str], stdin: str = "") -> list[tuple[int, str, str]]:
        found = []
        for argv in cli:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=120, env=docker_busybox.env())  # fmt: skip
            found.append((done.returncode, done.stdout, done.stderr))
        return found

    ours = [sys.executable, "-m", "ipydock", "--root", root]
    for argv in (ours, ["docker"]):
        subprocess.run(
            [*argv, "create", "--name", "once", "--network", "none", "busybox", "sh", "-c", script],
            check=True,
            capture_output=True,
            env=docker_busybox.env(),
        )
        subprocess.run(
            [*argv, "create", "-i", "--name", "cat", "--network", "none", "busybox", "cat"],
            check=True,
            capture_output=True,
            env=docker_busybox.env(),
        )
    mine, theirs = both([*ours, "start", "-a", "once"], ["docker", "start", "-a", "once"])
    assert mine == theirs == (2, "out\n", "err\n")
    mine, theirs = both(
        [*ours, "start", "-ai", "cat"], ["docker", "start", "-ai", "cat"], stdin="hello\n"
    )
    assert mine == theirs == (0, "hello\n", "")
    docker_busybox.run("rm", "once", "cat")


def test_start_attached_on_both_engines(engine, docker_busybox) -> None:
    """``Backend.start_attached`` (``start -a`` in a notebook too): output and exit code."""
    from ipydock.docker import DockerBackend

    docker = DockerBackend(docker_busybox.host)
    script = ("sh", "-c", "echo out; echo err >&2; exit 2")
    found = []
    for backend in (engine, docker):
        cid = backend.create_container(_opts(script, name="twice"))
        streams = {"stdout": "", "stderr": ""}
        started: list[str] = []

        def output(stream: str, text: str, streams: dict[str, str] = streams) -> None:
            streams[stream] += text

        code = backend.start_attached(cid, output=output, on_start=started.append)
        found.append((code, streams, started == [cid]))
        backend.remove_container(cid)
    assert found[0] == found[1] == (2, {"stdout": "out\n", "stderr": "err\n"}, True)


def test_dash_di_keeps_an_open_empty_stdin_as_docker(engine, root: str, docker_busybox) -> None:
    """``run -di cat``: the container's stdin stays open (cat waits), and is not the CLI's (a
    detached container must not read the user's terminal); ``run -i`` with an empty stdin and
    a ``-i`` run from Python without input: cat sees the end at once."""
    env = docker_busybox.env()
    ours = [sys.executable, "-m", "ipydock", "--root", root]
    for cli in (ours, ["docker"]):
        detached = subprocess.run([*cli, "run", "-di", "--name", "catter", "--network", "none",
                                   "busybox", "cat"], input=b"not for the container\n",
                                  capture_output=True, env=env, timeout=120)  # fmt: skip
        assert detached.returncode == 0, detached.stderr
        attached = subprocess.run([*cli, "run", "-i", "--rm", "--network", "none", "busybox",
                                   "cat"], stdin=subprocess.DEVNULL, capture_output=True,
                                  env=env, timeout=120)  # fmt: skip
        assert (attached.returncode, attached.stdout) == (0, b"")
    assert engine.inspect_container("catter").state["Running"]
    assert docker_busybox.run("inspect", "-f", "{{.State.Running}}", "catter").stdout == b"true\n"
    engine.stop_container("catter", timeout=0)
    assert _cli(root, "logs", "catter").stdout == ""  # it never read the CLI's input
    assert engine.run(_opts(("cat",), interactive=True, auto_remove=True)).exit_code == 0
    docker_busybox.run("rm", "-f", "catter")


def test_a_notebook_is_pointed_to_a_terminal(backend) -> None:
    from ipydock.magics import dispatch

    for words in (["container", "run", "-it", "busybox", "sh"], ["container", "attach", "c"],
                  ["container", "exec", "-it", "c", "sh"]):  # fmt: skip
        args = dispatch.parse(words)
        with pytest.raises(UsageError, match="JupyterLab terminal"):
            dispatch.run(backend, args)


def test_detach_keys_are_read_as_docker_reads_them() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-[") == b"\x01x\x00\x1b"
    with pytest.raises(UsageError, match="detach keys"):
        parse_detach_keys("ctrl-pp")
    keys = DetachKeys()
    assert keys.feed(b"ab\x10") == (b"ab", False)  # held back: maybe the start of it
    assert keys.feed(b"c") == (b"\x10c", False)  # not: passed on as typed
    assert keys.feed(b"\x10\x11rest") == (b"", True)
    assert DetachKeys("").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_window_size_of_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        set_size(master, 12, 34)
        assert get_size(slave) == (12, 34)
    finally:
        os.close(master)
        os.close(slave)
    r, w = os.pipe()
    try:
        assert get_size(r) == (0, 0)
    finally:
        os.close(r)
        os.close(w)


def _opts(command: tuple[str, ...], **kw: object):
    from ipydock.models.containers import RunOptions

    return RunOptions("busybox", command, network="none", **kw)  # type: ignore[arg-type]


def test_an_unprivileged_user_gets_terminals_too(user_root: str) -> None:
    """Rootless: the same terminals, the engine's handle driven directly (the CLI above is
    one caller of it): a shell in a user namespace of its own, its size, Ctrl-C, exit codes,
    exec -t, detach and attach."""

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(user_root, "store")), warm=False)
        backend.import_image(os.path.join(user_root, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        out: dict[str, Any] = {"mode": backend.info()["mode"]}
        tty = _opts(("sh",), tty=True, interactive=True, auto_remove=True)
        s = backend.run_terminal(tty, console_size=(30, 90))
        out["prompt"] = _until(s.terminal, PROMPT).decode()
        s.terminal.write(b"id -u; tty; stty size\r")
        out["who"] = _until(s.terminal, rb"\d+ \d+\r\n").decode()
        s.terminal.resize(44, 111)
        s.terminal.write(b"stty size; (echo sleeping; exec sleep 1234)\r")
        out["resized"] = _until(s.terminal, rb"sleeping\r\n").decode()
        s.terminal.write(b"\x03")
        _until(s.terminal, PROMPT)
        s.terminal.write(b"echo rc=$?; exit 3\r")
        out["interrupted"] = _until(s.terminal, rb"rc=\d+").decode()
        _until(s.terminal, None)
        out["code"] = s.wait()

        kept = backend.run_terminal(_opts(("sh",), tty=True, interactive=True, name="kept"))
        _until(kept.terminal, PROMPT)
        kept.terminal.write(b"A=again\r")
        _until(kept.terminal, PROMPT)
        kept.release()  # detach
        e = backend.exec_terminal("kept", ["sh", "-c", "tty; exit 4"], console_size=(5, 6))
        out["exec"] = (_until(e.terminal, rb"\r\n").decode(), e.wait())
        back = backend.attach_terminal("kept")
        back.terminal.write(b"echo $A; exit 5\r")
        out["attached"] = _until(back.terminal, rb"again\r\n").decode()
        _until(back.terminal, None)
        out["attached_code"] = back.wait()
        backend.remove_container("kept")
        return out

    found = as_user(NOBODY, work)
    assert found["mode"] == "rootless"
    assert PROMPT.decode() in found["prompt"]
    assert "\n0\r\n/dev/pts/0\r\n30 90\r\n" in found["who"]  # root here = the user
    assert "44 111\r\n" in found["resized"]
    assert "rc=130" in found["interrupted"]
    assert found["code"] == 3
    assert found["exec"][0].startswith("/dev/pts/") and found["exec"][1] == 4
    assert "\nagain\r\n" in found["attached"] and found["attached_code"] == 5


def _until(terminal: Any, pattern: bytes | None, deadline: float = DEADLINE) -> bytes:
    """Read a terminal handle until ``pattern`` shows (None: until its end)."""
    seen = bytearray()
    end = time.monotonic() + deadline
    start = 0  # where the pattern may still begin (a flood of output: no quadratic search)
    while pattern is None or not re.compile(pattern).search(seen, max(0, start - 256)):
        start = len(seen)
        left = end - time.monotonic()
        if left <= 0 or not select.select([terminal], [], [], left)[0]:
            raise AssertionError(f"no {pattern!r} within {deadline} s: {bytes(seen[-2000:])!r}")
        chunk = terminal.read()
        if not chunk:
            if pattern is None:
                return bytes(seen)
            raise AssertionError(f"the terminal ended before {pattern!r}: {bytes(seen)!r}")
        seen += chunk
    return bytes(seen)


@pytest.fixture
def user_root(busybox_tgz: str) -> Iterator[str]:
    """A store directory and the busybox tarball, owned by nobody, where nobody can reach."""
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    base = tempfile.mkdtemp(prefix="ipydock-tty-rootless-")
    os.chmod(base, 0o755)
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    for path in (base, os.path.join(base, "busybox.tar.gz")):
        os.chown(path, NOBODY, NOBODY)
    try:
        yield base
        store = os.path.join(base, "store")
        assert settled_processes_using(store) == []
        assert not os.listdir(os.path.join(store, "containers"))
    finally:
        shutil.rmtree(base)
