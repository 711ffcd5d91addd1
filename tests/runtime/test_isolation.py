"""A container sees its own pid, uts, mount, ipc and net namespaces, and Docker's hardening."""

from __future__ import annotations

import os
import socket

import pytest

from ipydock.engine.runtime import Mount, Spec, caps

pytestmark = pytest.mark.root


def test_command_is_pid_1_and_host_processes_are_invisible(run, spec: Spec) -> None:
    status, out = run(spec, "sh", "-c", "echo $$ /proc/[0-9]*")
    assert status.exit_code == 0
    assert out.split() == ["1", "/proc/1"]  # the shell alone: nothing of the host


def test_hostname_is_the_specs(run, spec: Spec) -> None:
    _, out = run(spec, "hostname", hostname="web-1")
    assert out.strip() == "web-1"
    assert socket.gethostname() != "web-1"


def test_no_host_mount_is_visible(run, spec: Spec) -> None:
    _, out = run(spec, "cat", "/proc/self/mounts")
    targets = {line.split()[1] for line in out.splitlines()}
    assert targets <= {
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/dev/mqueue",
        "/dev/shm",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
        "/proc/asound",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    }
    assert not any(t.startswith(("/work", "/tmp", "/home", "/run")) for t in targets)


def test_root_gets_dockers_default_capabilities(run, spec: Spec) -> None:
    _, out = run(spec, "grep", "^Cap", "/proc/self/status")
    fields = dict(line.split(":\t") for line in out.splitlines())
    default = caps.mask(caps.DOCKER_DEFAULT_CAPS)
    assert default == 0xA80425FB
    assert int(fields["CapEff"], 16) == default
    assert int(fields["CapBnd"], 16) == default
    assert int(fields["CapInh"], 16) == 0
    assert int(fields["CapAmb"], 16) == 0


def test_cap_add_and_drop(run, spec: Spec) -> None:
    _, out = run(spec, "grep", "^CapEff", "/proc/self/status",
                 cap_add=("NET_ADMIN",), cap_drop=("CHOWN",))  # fmt: skip
    eff = int(out.split()[1], 16)
    assert eff == caps.mask((caps.DOCKER_DEFAULT_CAPS - {"CHOWN"}) | {"NET_ADMIN"})


def test_non_root_user_has_no_effective_capabilities(run, spec: Spec) -> None:
    from ipydock.engine.runtime import User

    _, out = run(spec, "sh", "-c", "id; grep -E '^Cap(Eff|Bnd)' /proc/self/status",
                 user=User(1000, 1000, (27,)))  # fmt: skip
    assert "uid=1000 gid=1000 groups=27" in out
    assert "CapEff:\t0000000000000000" in out
    assert "CapBnd:\t00000000a80425fb" in out


def test_no_new_privs_is_set(run, spec: Spec) -> None:
    _, out = run(spec, "grep", "NoNewPrivs", "/proc/self/status")
    assert out.split()[1] == "1"


def test_proc_paths_are_masked_and_read_only(run, spec: Spec) -> None:
    masked_file = next(p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list")
                       if os.path.exists(p))  # fmt: skip
    with open(masked_file, "rb") as f:
        assert f.read(1)  # not empty on the host
    script = (
        f"cat {masked_file} | wc -c; ls /proc/acpi | wc -l; "
        "echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE; "
        "touch /sys/x && echo WROTE-SYS; echo done"
    )
    status, out = run(spec, "sh", "-c", script)
    lines = out.split()
    assert lines[:2] == ["0", "0"]
    assert "WROTE" not in out and "WROTE-SYS" not in out
    assert "Read-only file system" in out
    assert lines[-1] == "done"


def test_privileged_gets_all_caps_and_no_masks(run, spec: Spec) -> None:
    _, out = run(spec, "sh", "-c", "grep ^CapBnd /proc/self/status; ls /proc/acpi | wc -l",
                 privileged=True)  # fmt: skip
    bnd = int(out.split()[1], 16)
    with open("/proc/self/status") as f:
        host = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd"))
    assert bnd == host


def test_minimal_dev(run, spec: Spec) -> None:
    _, out = run(spec, "ls", "/dev")
    assert set(out.split()) == {
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "pts",
        "shm",
        "mqueue",
        "ptmx",
        "fd",
        "stdin",
        "stdout",
        "stderr",
        "core",
    }


def test_network_none_has_only_loopback(run, spec: Spec) -> None:
    _, out = run(spec, "cat", "/proc/net/dev")
    interfaces = {line.split(":")[0].strip() for line in out.splitlines()[2:]}
    assert interfaces == {"lo"}


def test_etc_files_are_bound_from_the_host(run, spec: Spec, tmp_path) -> None:
    from ipydock.engine.runtime import EtcFiles

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.2 box\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.1\n")
    _, out = run(spec, "cat", "/etc/hosts", "/etc/resolv.conf",
                 etc=EtcFiles(hosts=str(hosts), resolv_conf=str(resolv)))  # fmt: skip
    assert out == hosts.read_text() + resolv.read_text()


def test_bind_mounts_rw_and_ro(run, spec: Spec, tmp_path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("ro data\n")
    mounts = (Mount("/mnt/rw", source=str(rw)), Mount("/mnt/ro", source=str(ro), readonly=True),
              Mount("/scratch", type="tmpfs", options=("size=1m",)))  # fmt: skip
    status, out = run(spec, "sh", "-c",
                      "echo hi > /mnt/rw/new && cat /mnt/ro/f && touch /mnt/ro/x; "
                      "grep /scratch /proc/mounts", mounts=mounts)  # fmt: skip
    assert (rw / "new").read_text() == "hi\n"
    assert "ro data" in out and "Read-only file system" in out
    assert not (ro / "x").exists()
    assert "tmpfs /scratch tmpfs rw,nosuid,nodev" in out
    assert status.exit_code == 0


def test_own_ipc_and_uts_namespaces(run, spec: Spec) -> None:
    _, out = run(spec, "sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts")
    host = {os.readlink("/proc/self/ns/ipc"), os.readlink("/proc/self/ns/uts")}
    assert len(out.split()) == 2
    assert host.isdisjoint(out.split())
