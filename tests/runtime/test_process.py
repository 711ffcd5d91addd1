"""Exit codes, command lookup, env/cwd/user, stdin, copy-on-write, paused start, helper death."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid
from dataclasses import replace

import pytest

from ipydock.engine.runtime import (
    ExitStatus,
    ForkServer,
    Network,
    Rootfs,
    Spec,
    User,
    build_plan,
)
from ipydock.errors import CommandNotExecutable, CommandNotFound, ProcessNotPaused

pytestmark = pytest.mark.root


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("exit 3", 3), ("exit 255", 255)])
def test_exit_codes_are_kept(run, spec: Spec, script: str, code: int) -> None:
    status, _ = run(spec, "sh", "-c", script)
    assert (status.exit_code, status.signal) == (code, None)


def test_command_not_found_is_127_with_dockers_message(runtime, spec: Spec) -> None:
    with pytest.raises(CommandNotFound) as info:
        runtime.run(replace(spec, args=("xyz",)))
    assert str(info.value) == 'exec: "xyz": executable file not found in $PATH'
    assert info.value.exit_code == 127


def test_missing_absolute_command_is_127(runtime, spec: Spec) -> None:
    with pytest.raises(CommandNotFound) as info:
        runtime.run(replace(spec, args=("/nope",)))
    assert str(info.value) == 'exec: "/nope": stat /nope: no such file or directory'


def test_directory_as_command_is_126(runtime, spec: Spec) -> None:
    with pytest.raises(CommandNotExecutable) as info:
        runtime.run(replace(spec, args=("/data",)))
    assert info.value.exit_code == 126
    assert str(info.value) == 'exec: "/data": permission denied'


def test_env_cwd_and_user(run, spec: Spec) -> None:
    status, out = run(spec, "sh", "-c", "echo $GREETING; pwd; id -u; id -g",
                      env=("PATH=/bin", "GREETING=hello"), cwd="/work/dir",
                      user=User(1234, 4321))  # fmt: skip
    assert status.exit_code == 0
    assert out.split() == ["hello", "/work/dir", "1234", "4321"]


def test_stdin_is_passed(run, spec: Spec) -> None:
    _, out = run(spec, "cat", stdin=b"from stdin\n")
    assert out == "from stdin\n"


def test_writes_land_in_the_upper_dir_and_lower_is_untouched(run, spec, container_dirs) -> None:
    status, out = run(spec, "sh", "-c",
                      "echo changed > /data/image.txt; echo new > /new.txt; rm /bin/false; "
                      "cat /data/image.txt")  # fmt: skip
    assert (status.exit_code, out) == (0, "changed\n")
    assert (container_dirs.lower / "data" / "image.txt").read_text() == "from the image\n"
    assert (container_dirs.lower / "bin" / "false").is_symlink()
    assert (container_dirs.upper / "data" / "image.txt").read_text() == "changed\n"
    assert (container_dirs.upper / "new.txt").read_text() == "new\n"
    whiteout = os.lstat(container_dirs.upper / "bin" / "false")
    assert os.major(whiteout.st_rdev) == 0 and os.minor(whiteout.st_rdev) == 0


def test_readonly_rootfs(run, spec: Spec) -> None:
    status, out = run(spec, "sh", "-c", "touch /x || echo refused; touch /tmp/ok || echo no-tmp",
                      readonly_rootfs=True)  # fmt: skip
    assert "refused" in out and "Read-only file system" in out


def test_kill_stops_the_container(runtime, spec: Spec) -> None:
    with runtime.run(replace(spec, args=("sleep", "1000"))) as running:
        running.kill(signal.SIGTERM)  # pid 1 has no handler: ignored, as in Docker
        assert running.wait(timeout=0.2) is None
        running.kill()
        assert running.wait() == ExitStatus(137, signal.SIGKILL)


def test_paused_start_lets_the_caller_see_the_netns_first(runtime, spec: Spec, tmp_path) -> None:
    out = tmp_path / "out"
    with open(out, "w") as f:
        from ipydock.engine.runtime import Stdio

        running = runtime.run(replace(spec, args=("cat", "/proc/net/dev")),
                              Stdio(stdout=f.fileno()), paused=True)  # fmt: skip
    with running:
        netns = os.readlink(f"/proc/{running.pid}/ns/net")
        assert netns != os.readlink("/proc/self/ns/net")
        running.start()
        assert running.wait().exit_code == 0
        with pytest.raises(ProcessNotPaused):
            running.start()
    assert "lo:" in out.read_text()


def test_join_a_prepared_network_namespace(run, spec: Spec) -> None:
    name = f"ipydock-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        inode = os.stat(f"/run/netns/{name}").st_ino
        _, out = run(spec, "readlink", "/proc/self/ns/net",
                     network=Network.join(f"/run/netns/{name}"))  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)
    assert out.strip() == f"net:[{inode}]"


def test_host_network(run, spec: Spec) -> None:
    _, out = run(spec, "readlink", "/proc/self/ns/net", network=Network(mode="host"))
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_concurrent_spawns_from_threads(runtime, spec: Spec, container_dirs, tmp_path) -> None:
    results: dict[int, object] = {}

    def one(i: int) -> None:
        own = [tmp_path / f"c{i}" / d for d in ("upper", "work", "merged")]
        for d in own:
            d.mkdir(parents=True)
        rootfs = Rootfs.overlay([str(container_dirs.lower)], *map(str, own))
        try:
            with runtime.run(replace(spec, rootfs=rootfs, args=("sh", "-c", f"exit {i}"))) as c:
                results[i] = c.wait().exit_code
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(8)}


def test_closing_the_helper_kills_its_containers(spec: Spec) -> None:
    server = ForkServer()
    process = server.spawn(build_plan(replace(spec, args=("sleep", "1000"))))
    pidfd = os.pidfd_open(process.pid)
    try:
        server.close()
        import select

        readable, _, _ = select.select([pidfd], [], [], 30)  # readable: the container exited
        assert readable, "the container outlived its helper"
    finally:
        os.close(pidfd)
        process.close()


def test_dropping_a_handle_kills_the_container(spec: Spec) -> None:
    with ForkServer() as server:
        process = server.spawn(build_plan(replace(spec, args=("sleep", "1000"))))
        pidfd = os.pidfd_open(process.pid)
        process.close()
        import select

        readable, _, _ = select.select([pidfd], [], [], 30)
        assert readable, "the container outlived its handle"
        os.close(pidfd)
