"""Spec validation, capability arithmetic, Spec -> Plan conversion, secure paths: no kernel."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

import ipydock.engine.runtime as runtime_pkg
from ipydock.engine.runtime import (
    Mount,
    Network,
    Plan,
    Resources,
    Rootfs,
    Spec,
    build_plan,
    caps,
    default_env,
    validate,
)
from ipydock.engine.runtime import plan as planmod
from ipydock.engine.runtime.paths import ensure_target, secure_join
from ipydock.errors import InvalidSpec, UnknownCapability

ROOTFS = Rootfs.overlay(["/l/base", "/l/top"], "/c/upper", "/c/work", "/c/merged")
SPEC = Spec(rootfs=ROOTFS, args=("sh",), env=("PATH=/bin",))


def test_public_api_is_pinned() -> None:
    assert sorted(runtime_pkg.__all__) == sorted(
        ["Cgroup", "ContainerProcess", "EtcFiles", "ExitStatus", "ForkServer", "Mount",
         "Network", "Plan", "Resources", "Rootfs", "Running", "Runtime", "Spec", "Stdio", "User",
         "build_plan", "default_env", "validate"]
    )  # fmt: skip


# --- capabilities ----------------------------------------------------------------------------


def test_docker_default_mask() -> None:
    assert caps.mask(caps.resolve()) == 0xA80425FB


@pytest.mark.parametrize(
    ("add", "drop", "expected"),
    [
        (["cap_net_admin"], ["CHOWN"], (caps.DOCKER_DEFAULT_CAPS - {"CHOWN"}) | {"NET_ADMIN"}),
        (["NET_RAW"], ["ALL"], {"NET_RAW"}),
        (["ALL"], ["SYS_ADMIN"], set(caps.CAPABILITIES) - {"SYS_ADMIN"}),
    ],
)
def test_cap_add_and_drop_follow_docker(add, drop, expected) -> None:
    assert caps.resolve(add, drop) == frozenset(expected)


def test_privileged_gets_every_capability() -> None:
    assert caps.resolve(privileged=True) == frozenset(caps.CAPABILITIES)


def test_unknown_capability_is_named() -> None:
    with pytest.raises(UnknownCapability) as info:
        caps.resolve(add=["FLY"])
    assert info.value.name == "FLY"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"args": ()}, "args"),
        ({"cwd": "relative"}, "cwd"),
        ({"env": ("NOEQUALS",)}, "env"),
        ({"rootfs": Rootfs.overlay([], "/u", "/w", "/m")}, "rootfs.lower"),
        ({"rootfs": Rootfs(lower=("/l",), upper="/u", merged="/m")}, "rootfs"),
        ({"mounts": (Mount("/x", source="relative"),)}, "mounts.source"),
        ({"mounts": (Mount("x", type="tmpfs"),)}, "mounts.target"),
        ({"resources": Resources(memory=1024)}, "resources.memory"),
        ({"resources": Resources(cpus=0)}, "resources.cpus"),
        ({"resources": Resources(pids_limit=0)}, "resources.pids_limit"),
        ({"network": Network(mode="bridge")}, "network"),  # type: ignore[arg-type]
        ({"network": Network.join("rel")}, "network.netns_path"),
        ({"namespaces": frozenset({"pid", "time"})}, "namespaces"),
        ({"hostname": "x" * 65}, "hostname"),
    ],
)
def test_invalid_specs_name_the_field(changes, field) -> None:
    with pytest.raises(InvalidSpec) as info:
        validate(replace(SPEC, **changes))
    assert info.value.field == field


def test_default_env_adds_what_docker_adds() -> None:
    env = default_env(("A=1",), "box")
    assert env[-1] == "A=1"
    assert {"HOSTNAME=box", "HOME=/root"} <= set(env)
    assert any(e.startswith("PATH=/usr/local/sbin") for e in env)
    assert default_env(("PATH=/x", "HOME=/h"), "") == ("PATH=/x", "HOME=/h")


# --- plan ------------------------------------------------------------------------------------


def test_overlay_lower_dirs_are_given_top_first() -> None:
    plan = build_plan(SPEC)
    assert plan.root == "/c/merged"
    assert plan.root_mount.fstype == "overlay"
    assert plan.root_mount.data == (
        "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work,redirect_dir=off,metacopy=off"
    )


def test_single_lower_without_upper_is_a_readonly_bind() -> None:
    plan = build_plan(replace(SPEC, rootfs=Rootfs(lower=("/l/base",), merged="/m")))
    assert plan.root_mount.flags & planmod.MS_BIND and plan.root_mount.readonly


def test_too_many_layers_are_refused() -> None:
    lower = [f"/var/lib/ipydock/snapshots/{'x' * 64}/{i}" for i in range(60)]
    with pytest.raises(InvalidSpec):
        build_plan(replace(SPEC, rootfs=Rootfs.overlay(lower, "/u", "/w", "/m")))


def test_namespaces_follow_the_network_mode() -> None:
    none = build_plan(SPEC)
    host = build_plan(replace(SPEC, network=Network(mode="host")))
    joined = build_plan(replace(SPEC, network=Network.join("/run/netns/a")))
    assert none.clone_flags & planmod.CLONE_NEWNET and none.new_pid
    assert not host.clone_flags & planmod.CLONE_NEWNET
    assert not joined.clone_flags & planmod.CLONE_NEWNET and joined.netns_path == "/run/netns/a"


def test_sys_is_readonly_and_paths_masked_unless_privileged() -> None:
    plain, privileged = build_plan(SPEC), build_plan(replace(SPEC, privileged=True))
    assert next(m for m in plain.mounts if m.target == "/sys").flags & planmod.MS_RDONLY
    assert not next(m for m in privileged.mounts if m.target == "/sys").flags & planmod.MS_RDONLY
    assert "/proc/kcore" in plain.masked_paths and privileged.masked_paths == ()
    assert privileged.cap_bounding == caps.mask(caps.CAPABILITIES)


def test_user_mounts_and_etc_files_come_after_system_mounts() -> None:
    spec = replace(
        SPEC,
        mounts=(Mount("/data", source="/srv/data", readonly=True), Mount("/t", type="tmpfs")),
        etc=runtime_pkg.EtcFiles(hosts="/run/x/hosts"),
    )
    targets = [m.target for m in build_plan(spec).mounts]
    assert targets[:6] == ["/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/dev/shm"]
    assert targets[6:] == ["/data", "/t", "/etc/hosts"]
    data = build_plan(spec).mounts[6]
    assert data.readonly and data.kind == "auto" and data.flags & planmod.MS_BIND


def test_plan_survives_json() -> None:
    import json

    plan = build_plan(replace(SPEC, mounts=(Mount("/t", type="tmpfs"),)), ("/cg/procs",))
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


# --- secure paths ----------------------------------------------------------------------------


def test_secure_join_keeps_symlinks_inside_the_root(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink("/", root / "abs")
    os.symlink("../../../..", root / "rel")
    os.symlink("/real", root / "inside")
    assert secure_join(str(root), "/abs/etc") == str(root / "etc")
    assert secure_join(str(root), "/rel/etc") == str(root / "etc")
    assert secure_join(str(root), "/inside/x") == str(root / "real" / "x")
    assert secure_join(str(root), "/../../x") == str(root / "x")


def test_symlink_loops_are_refused(tmp_path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError):
        secure_join(str(tmp_path), "/a")


def test_ensure_target_creates_dirs_and_files(tmp_path) -> None:
    assert ensure_target(str(tmp_path), "/a/b", "dir") == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    ensure_target(str(tmp_path), "/etc/hosts", "file")
    assert (tmp_path / "etc" / "hosts").is_file()
