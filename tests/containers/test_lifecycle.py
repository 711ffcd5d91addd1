"""Containers end to end with real namespaces: run, logs, exit codes, stop, restart, --rm."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.engine.containers.records import Records
from ipydock.errors import (
    CommandNotFound,
    ContainerNotFound,
    ContainerRunning,
    ImageInUse,
    NameInUse,
)

pytestmark = pytest.mark.root


def run(engine, *command: str, **flags):  # noqa: ANN001, ANN201
    """Run attached; (result, [(stream, text)])."""
    seen: list[tuple[str, str]] = []
    result = engine.run(RunOptions("busybox", command=command, **flags),
                        output=lambda s, t: seen.append((s, t)))  # fmt: skip
    return result, seen


def test_attached_run_streams_output_and_keeps_the_exit_code(engine) -> None:
    result, seen = run(engine, "sh", "-c", "echo out; echo err >&2; exit 3", name="first")
    assert result.exit_code == 3
    assert sorted(seen) == [("stderr", "err\n"), ("stdout", "out\n")]
    detail = engine.inspect_container("first")
    assert detail.state["Status"] == "exited"
    assert detail.state["ExitCode"] == 3
    with open(detail.log_path) as f:
        lines = [json.loads(line) for line in f]
    assert {(e["stream"], e["log"]) for e in lines} == {("stdout", "out\n"), ("stderr", "err\n")}
    assert all(e["time"].endswith("Z") for e in lines)
    assert [e.text for e in engine.logs("first", tail=1)] in (["err\n"], ["out\n"])


def test_command_not_found_is_127_with_dockers_message(engine) -> None:
    with pytest.raises(CommandNotFound) as info:
        engine.run(RunOptions("busybox", command=("nosuch",), name="nf"))
    assert info.value.exit_code == 127
    assert str(info.value) == 'exec: "nosuch": executable file not found in $PATH'
    detail = engine.inspect_container("nf")
    assert (detail.state["Status"], detail.state["ExitCode"]) == ("created", 127)
    with pytest.raises(CommandNotFound):
        engine.run(RunOptions("busybox", command=("nosuch",), name="gone", auto_remove=True))
    with pytest.raises(ContainerNotFound):
        engine.inspect_container("gone")


def test_rm_removes_the_container_after_its_exit(engine) -> None:
    result, _ = run(engine, "true", auto_remove=True)
    assert result.exit_code == 0
    assert engine.containers(all=True) == []
    detached = engine.run(RunOptions("busybox", ("true",), auto_remove=True), detach=True)
    with pytest.raises(ContainerNotFound):
        engine.wait_container(detached.id)  # may race with the removal: then "not found"
        engine.inspect_container(detached.id)


def test_names_are_unique(engine) -> None:
    engine.create_container(RunOptions("busybox", ("true",), name="dup"))
    with pytest.raises(NameInUse) as info:
        engine.create_container(RunOptions("busybox", ("true",), name="dup"))
    assert info.value.name == "dup"


def test_stop_sends_the_stop_signal_then_kills_after_the_timeout(engine) -> None:
    trap = "trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done"
    engine.run(RunOptions("busybox", ("sh", "-c", trap), name="polite"), detach=True)
    engine.run(RunOptions("busybox", ("sleep", "1000"), name="stubborn"), detach=True)
    engine.stop_container("polite", timeout=10)
    assert engine.inspect_container("polite").state["ExitCode"] == 7
    assert [e.text for e in engine.logs("polite")] == ["bye\n"]
    start = time.monotonic()
    engine.stop_container("stubborn", timeout=1)
    assert time.monotonic() - start >= 1
    assert engine.inspect_container("stubborn").state["ExitCode"] == 137  # pid 1 ignores TERM


def test_rm_of_a_running_container_needs_force(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    with pytest.raises(ContainerRunning):
        engine.remove_container(cid)
    engine.remove_container(cid, force=True)
    assert engine.containers(all=True) == []


def test_restart_policy_on_failure_counts_and_stops(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sh", "-c", "echo run; exit 1"),
                                restart="on-failure:2"), detach=True).id  # fmt: skip
    assert engine.wait_container(cid) == 1
    detail = engine.inspect_container(cid)
    assert detail.restart_count == 2
    assert [e.text for e in engine.logs(cid)] == ["run\n"] * 3


def test_restart_always_until_stopped(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sh", "-c", "echo run; sleep 0.2"),
                                restart="always"), detach=True).id  # fmt: skip
    logs = engine.logs(cid, follow=True)
    assert [next(logs).text for _ in range(2)] == ["run\n", "run\n"]
    engine.stop_container(cid, timeout=1)
    assert engine.inspect_container(cid).state["Status"] == "exited"
    logs.close()


def test_restart_command_runs_it_again(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    first = engine.inspect_container(cid).state["Pid"]
    engine.restart_container(cid, timeout=0)
    state = engine.inspect_container(cid).state
    assert state["Status"] == "running"
    assert state["Pid"] != first


def test_killing_the_supervisor_leaves_a_consistent_state(engine, root) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    records = Records(root, os.path.join(root, "tmp"))
    state = records.read_state(records.load(cid))
    pidfd = os.pidfd_open(state.pid)
    os.kill(state.supervisor_pid, signal.SIGKILL)
    import select

    # pid 1 dies with its supervisor (parent-death signal)
    assert select.select([pidfd], [], [], 30)[0], "pid 1 outlived its supervisor"
    os.close(pidfd)
    detail = engine.inspect_container(cid)
    assert (detail.state["Status"], detail.state["ExitCode"]) == ("exited", 137)
    assert "supervisor" in detail.state["Error"]


def test_a_detached_runs_pid_1_is_its_supervisors_child_though_a_helper_started_it(
    engine, root
) -> None:  # fmt: skip
    """A detached start (network none) is set up by a forked child of the supervisor, which
    starts pid 1 as the supervisor's own child (supervisor.py, ``_start_lean``): the
    supervisor reaps it, copies its output, obeys stop, and pid 1 dies with it."""
    import select

    opts = RunOptions("busybox", ("sh", "-c", "echo up; exec sleep 1000"), network="none")
    cid = engine.run(opts, detach=True).id
    records = Records(root, os.path.join(root, "tmp"))
    state = records.read_state(records.load(cid))
    with open(f"/proc/{state.pid}/status") as f:
        ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
    assert ppid == state.supervisor_pid
    followed = engine.logs(cid, follow=True)
    assert next(iter(followed)).text == "up\n"  # the supervisor copied it to the log
    followed.close()
    pidfd = os.pidfd_open(state.pid)
    os.kill(state.supervisor_pid, signal.SIGKILL)
    assert select.select([pidfd], [], [], 30)[0], "pid 1 outlived its supervisor"
    os.close(pidfd)
    assert engine.inspect_container(cid).state["ExitCode"] == 137
    again = engine.run(RunOptions("busybox", ("sleep", "1000"), network="none",
                                  name="lean2"), detach=True).id  # fmt: skip
    engine.stop_container(again, timeout=0)
    assert engine.inspect_container(again).state["ExitCode"] == 137


def test_image_rm_is_refused_while_a_container_uses_it(engine, busybox) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    with pytest.raises(ImageInUse) as info:
        engine.remove_image(busybox, force=True)
    assert "running container" in str(info.value) and info.value.running
    engine.stop_container(cid, timeout=0)
    with pytest.raises(ImageInUse, match="stopped container"):
        engine.remove_image("busybox")


def test_exec_top_and_wait(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000"), hostname="box"), detach=True).id
    r, w = os.pipe()
    code = engine.exec(cid, ["sh", "-c", "hostname; echo $FOO; exit 5"], env=["FOO=bar"],
                       stdout=w)  # fmt: skip
    os.close(w)
    with os.fdopen(r) as f:
        assert f.read() == "box\nbar\n"
    assert code == 5
    with open(os.devnull, "w") as null:
        assert engine.exec(cid, ["nosuch"], stderr=null) == 126  # docker's exec: 126
    titles, rows = engine.top(cid)
    assert titles[1] == "PID" and any(row[3] == "sleep 1000" for row in rows)
    engine.kill_container(cid, "TERM")  # sleep as pid 1 ignores TERM: nothing happens
    engine.kill_container(cid, "KILL")
    assert engine.wait_container(cid) == 137


def test_containers_with_the_same_mount_points_share_one_init_layer(engine, root) -> None:
    """The init layer (mount points hidden from diff and commit) is made once per set of
    paths under ROOT/init, not per container; a volume's target makes another set."""

    def init_of(cid: str) -> str:
        with open(os.path.join(root, "containers", cid, "config.json")) as f:
            lower = json.load(f)["GraphDriver"]["Data"]["LowerDirs"]
        assert not os.path.exists(os.path.join(root, "containers", cid, "init"))
        return lower[-1]

    plain = [engine.run(RunOptions("busybox", ("true",))).id for _ in range(2)]
    mounted = engine.run(RunOptions("busybox", ("true",), volumes=("/data",))).id
    assert init_of(plain[0]) == init_of(plain[1]) != init_of(mounted)
    assert os.path.dirname(init_of(plain[0])) == os.path.join(root, "init")
    assert sorted(os.listdir(init_of(mounted))) == ["data", "dev", "etc", "proc", "sys"]
    assert sorted(os.listdir(os.path.join(init_of(plain[0]), "etc"))) == [
        "hostname", "hosts", "resolv.conf"]  # fmt: skip
    for cid in (*plain, mounted):
        assert engine.diff(cid) == []  # the mount points are not changes
