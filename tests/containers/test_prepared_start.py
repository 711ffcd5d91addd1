"""A warm backend's spare supervisor prepares the next start: a cgroup with docker's device
rules and a pid 1 already in it (``supervisor.prepare``, ``spawn.Prepared``); the container
that comes gets them renamed and handed over, and nothing of an unused spare stays behind."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import pytest

from ipydock.engine.containers import RunOptions, supervisor
from ipydock.engine.runtime import cgroups
from ipydock.engine.store.fsutil import owner_tag
from tests.conftest import require

pytestmark = pytest.mark.root


def cgroups_of(engine, options: RunOptions) -> dict[str, str]:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(options, output=lambda _s, text: seen.append(text))
    assert result.exit_code == 0, seen
    rows = (line.split(":", 2) for line in "".join(seen).splitlines())
    return {controller: path for _n, controller, path in rows if controller}


def spare_dirs(parent: str) -> list[str]:
    found = []
    for mount in set(cgroups.v1_mounts().values()):
        top = os.path.join(mount, parent)
        if os.path.isdir(top):
            found += [os.path.join(top, n) for n in os.listdir(top) if n.startswith("spare-")]
    return found


def test_first_run_gets_the_prepared_cgroup_under_its_own_name(engine) -> None:
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]
    options = RunOptions("busybox", ("cat", "/proc/self/cgroup"), auto_remove=True,
                         network="none", name="prepared")  # fmt: skip
    seen = cgroups_of(engine, options)
    # the spare joined every hierarchy ipydock uses (a start without one joins only devices)
    joined = {c: p for c, p in seen.items() if p.startswith(f"/{parent}/")}
    assert set(joined) == {"memory", "pids", "cpu", "devices"} & set(cgroups.v1_mounts())
    assert len(set(joined.values())) == 1
    assert not next(iter(joined.values())).startswith(f"/{parent}/spare-")


def test_an_unused_spare_leaves_nothing_when_the_backend_closes(engine) -> None:
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]
    engine.run(RunOptions("busybox", ("true",), auto_remove=True, network="none"))
    assert spare_dirs(parent) != []  # the next start's, waiting
    engine.close()
    assert spare_dirs(parent) == []


def test_privileged_and_limits_apply_to_a_prepared_cgroup(engine) -> None:
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]
    mounts = cgroups.v1_mounts()
    for flags, privileged in (({"privileged": True}, True), ({}, False)):
        options = RunOptions("busybox", ("sleep", "60"), network="none",
                             memory=64 << 20, **flags)  # fmt: skip
        cid = engine.run(options, detach=True).id
        try:
            at = {c: os.path.join(m, parent, cid) for c, m in mounts.items()}
            with open(f"{at['devices']}/devices.list") as f:
                rules = f.read().splitlines()
            assert rules == ["a *:* rwm"] if privileged else "c 1:3 rwm" in rules, rules
            with open(f"{at['memory']}/memory.limit_in_bytes") as f:
                assert int(f.read()) == 64 << 20
        finally:
            engine.remove_container(cid, force=True)


def output_of(engine, options: RunOptions) -> str:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(options, output=lambda _s, text: seen.append(text))
    assert result.exit_code == 0, seen
    return "".join(seen)


def test_a_prepared_pid_1_runs_in_the_network_its_plan_asks_for(engine) -> None:
    """The spare's pid 1 made a network namespace ahead (lo up): a ``none`` container gets
    it, the host network the host's, each run one of its own."""
    script = "readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/flags"
    host_ns = os.readlink("/proc/self/ns/net")
    seen = []
    for _ in range(2):  # the first run's spare was made with the backend, the second after
        options = RunOptions("busybox", ("sh", "-c", script), auto_remove=True, network="none")
        netns, *rest = output_of(engine, options).split()
        assert netns != host_ns and rest[:-1] == ["lo"]
        assert int(rest[-1], 16) & 1, "lo is down"  # IFF_UP
        seen.append(netns)
    hosted = output_of(engine, RunOptions("busybox", ("readlink", "/proc/self/ns/net"),
                                          auto_remove=True, network="host"))  # fmt: skip
    assert hosted.strip() == host_ns


def test_the_root_of_a_removed_container_is_volatile_and_of_a_kept_one_not(engine) -> None:
    """``--rm``: overlayfs's ``volatile`` (shown as ``fsync=volatile``: no sync of the host's
    filesystem when it goes);
    a kept container's writes are synced as docker's are."""
    show = ("sh", "-c", "grep ' / / ' /proc/self/mountinfo")
    removed = output_of(engine, RunOptions("busybox", show, auto_remove=True, network="none"))
    kept = RunOptions("busybox", show, network="none", name="kept-root")
    try:
        kept_root = output_of(engine, kept)
    finally:
        engine.remove_container("kept-root", force=True)
    assert "overlay" in removed and "fsync=volatile" in removed.split()[-1].split(",")
    assert "overlay" in kept_root and "volatile" not in kept_root


def test_spare_cgroups_of_killed_spares_are_swept(engine, monkeypatch) -> None:
    parent = f"{os.environ['IPYDOCK_CGROUP_PARENT']}-sweep"
    monkeypatch.setenv("IPYDOCK_CGROUP_PARENT", parent)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    stale = cgroups.create_spare(f"{parent}/spare-{dead}_1")  # pid and start time
    alive = cgroups.create_spare(f"{parent}/spare-{owner_tag()}")
    try:
        supervisor._sweep_spares()
        assert all(not os.path.exists(d) for d in stale.dirs)
        assert all(os.path.isdir(d) for d in alive.dirs)
    finally:
        stale.remove()
        alive.remove()
        cgroups.remove_parent(parent)


def test_system_check_collects_a_containers_cgroup_left_empty(engine) -> None:
    """A supervisor killed after its --rm container ended but before it removed the cgroup
    (it does that after the starter has the exit code) leaves an empty cgroup: garbage that
    ``system check --repair`` removes; an empty one just made, or one with a process, stays."""
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]
    mounts = sorted(set(cgroups.v1_mounts().values()))
    made = {}
    for name, age in (("a" * 64, 3600), ("b" * 64, 0)):
        made[name] = [os.path.join(m, parent, name) for m in mounts]
        for path in made[name]:
            os.makedirs(path)
            os.utime(path, (0, os.stat(path).st_mtime - age))
    busy = engine.run(RunOptions("busybox", ("sleep", "60"), network="none"), detach=True).id
    try:
        report = engine.check()
        leftover = f"leftover cgroup {parent}/{'a' * 12}"
        assert [g for g in report.garbage if "cgroup" in g] == [leftover]
        engine.check(repair=True)
        assert not any(os.path.exists(p) for p in made["a" * 64])
        assert all(os.path.isdir(p) for p in made["b" * 64])  # too young to tell
        assert engine.inspect_container(busy).state["Status"] == "running"
    finally:
        engine.remove_container(busy, force=True)
        for path in made["b" * 64]:
            os.rmdir(path)


#: What a container sees of the world its pid 1 built: its terminal, ids, capabilities,
#: no_new_privs, seccomp, limits, working directory, environment, devices, mounts and their options.
WORLD = ("sh", "-c", "tty; id; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; ulimit -a; "
         "pwd; env | sort; stat -c '%n %f %u %g %t %T' /dev/* /dev/pts/ptmx; "
         "awk '{print $5, $6}' /proc/self/mountinfo; hostname; cat /etc/hosts; "
         "touch /probe 2>&1; ls /proc/kcore /proc/acpi 2>&1; true")  # fmt: skip


@pytest.mark.parametrize("flags", [
    {},
    {"user": "1000:1000", "workdir": "/made/here", "cap_add": ("NET_ADMIN",),
     "cap_drop": ("CHOWN",), "read_only": True, "env": ("A=1", "B=2", "A=3"),
     "group_add": ("10", "20")},
    {"privileged": True},
])  # fmt: skip
def test_the_native_pid_1_builds_the_world_python_builds(engine, store, flags) -> None:
    """A prepared start's pid 1 is ``ipydock-pid1`` (``pid1.c``) when it is built; with
    ``IPYDOCK_NATIVE_PID1=0`` Python's spawn does the same steps: the container sees the
    same world either way."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.runtime import pid1

    require(pid1.path() is not None, "ipydock-pid1 is not built (native_launcher install)")
    options = RunOptions("busybox", WORLD, auto_remove=True, network="none", hostname="same",
                         **flags)  # fmt: skip
    native = output_of(engine, options)
    assert _next_prepared_pid_1() == pid1.BINARY
    engine.close()  # its spare goes
    os.environ["IPYDOCK_NATIVE_PID1"] = "0"
    try:
        python_backend = BundledBackend(store)
        try:
            python = output_of(python_backend, options)
            assert _next_prepared_pid_1() == os.path.realpath(sys.executable)
        finally:
            python_backend.close()
    finally:
        del os.environ["IPYDOCK_NATIVE_PID1"]
    assert native == python
    assert "same" in native and "/made/here" in native or not flags.get("workdir")


def _next_prepared_pid_1(timeout: float = 30) -> str:
    """The program of the pid 1 the next spare prepares, once it waits for its plan: a spare
    is made in the background after a start and nothing tells when it is ready, so this
    looks until that pid 1 sits in recvmsg (Python's or ipydock-pid1's)."""
    recvmsg = {"x86_64": "47", "aarch64": "212"}[os.uname().machine]
    parent = os.environ["IPYDOCK_CGROUP_PARENT"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for top in spare_dirs(parent):
            with contextlib.suppress(OSError), open(os.path.join(top, "cgroup.procs")) as f:
                for pid in f.read().split():
                    with contextlib.suppress(OSError), open(f"/proc/{pid}/syscall") as call:
                        if call.read().split()[:1] == [recvmsg]:
                            return os.readlink(f"/proc/{pid}/exe")
        time.sleep(0.01)
    raise AssertionError(f"no prepared pid 1 waited in {parent} after {timeout} s")
