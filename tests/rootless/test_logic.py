"""The pure parts of rootless mode: id ranges, the id map of layer tars, PRoot's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipydock.engine.runtime import idranges
from ipydock.engine.runtime.plan import build_plan
from ipydock.engine.runtime.proot import command
from ipydock.engine.runtime.rootless import RootlessReport, choose_mode
from ipydock.engine.runtime.spec import EtcFiles, Mount, Rootfs, Spec, User, validate
from ipydock.engine.store.idmap import OVERFLOW_ID, IdMap
from ipydock.errors import InvalidSpec


def test_ranges_map_0_to_the_user_and_1_to_65536_to_its_range() -> None:
    r = idranges.Ranges(1001, 1002, 100000, 200000, 65536)
    assert r.usable and r.mapped_ids == 65537
    assert r.uid_map() == ((0, 1001, 1), (1, 100000, 65536))
    assert r.gid_map() == ((0, 1002, 1), (1, 200000, 65536))
    assert "1-65536 -> 100000-165535" in r.describe()
    single = idranges.Ranges(1001, 1002, reason="no range")
    assert not single.usable and single.mapped_ids == 1 and single.uid_map() == ((0, 1001, 1),)
    assert single.describe() == "uid 0 -> 1001 only (no range)"


def test_subid_files_are_read_by_name_or_uid(tmp_path: Path) -> None:
    path = tmp_path / "subuid"
    path.write_text("alice:100000:65536\n1001:300000:70000\nbroken\nzero:1:0\n")
    assert idranges._listed(str(path), "alice", 1000) == (100000, 65536)
    assert idranges._listed(str(path), "bob", 1001) == (300000, 70000)
    assert idranges._listed(str(path), "zero", 7) is None
    assert idranges._listed(str(tmp_path / "missing"), "alice", 1000) is None


def test_the_id_map_reads_host_owners_as_a_container_sees_them() -> None:
    m = IdMap(((0, 1001, 1), (1, 100000, 65536)), ((0, 1002, 1), (1, 100000, 65536)))
    assert m.inside(1001, 1002) == (0, 0)
    assert m.inside(100000 + 999, 100000 + 41) == (1000, 42)
    assert m.inside(5, 7) == (OVERFLOW_ID, OVERFLOW_ID)  # not mapped: the kernel's overflow id
    assert IdMap().identity and IdMap().inside(5, 7) == (5, 7)


def _spec(**kw: object) -> Spec:
    base: dict[str, object] = {"rootfs": Rootfs.directory("/r"), "args": ("sh",), "rootless": True}
    return Spec(**{**base, **kw})  # type: ignore[arg-type]


def test_a_rootless_spec_may_use_the_ids_its_namespace_maps() -> None:
    validate(_spec(user=User(0, 0)))
    with pytest.raises(InvalidSpec, match="usermod --add-subuids"):
        validate(_spec(user=User(1000, 1000)))
    validate(_spec(user=User(1000, 1000, (42,)), rootless_ids=65537))
    with pytest.raises(InvalidSpec, match="maps ids 0-65536, not 70000"):
        validate(_spec(user=User(70000, 0), rootless_ids=65537))


def test_a_rootless_overlay_root_is_mounted_with_userxattr() -> None:
    rootfs = Rootfs.overlay(["/l/base"], "/c/upper", "/c/work", "/c/merged")
    spec = Spec(rootfs=rootfs, args=("sh",), rootless=True)
    assert ",userxattr" in build_plan(spec).root_mount.data
    assert "userxattr" not in build_plan(Spec(rootfs=rootfs, args=("sh",))).root_mount.data


def test_proot_command_binds_the_host_devices_volumes_and_etc_files() -> None:
    spec = _spec(
        args=("sh", "-c", "id"), cwd="/work", etc=EtcFiles(hosts="/s/hosts"),
        mounts=(Mount("/data", "bind", "/home/u/data", readonly=False),),
    )  # fmt: skip
    argv = command(build_plan(spec), "/usr/bin/proot")
    assert argv[:6] == ["/usr/bin/proot", "-r", "/r", "-w", "/work", "-0"]
    assert argv[-3:] == ["sh", "-c", "id"]
    pairs = {argv[i + 1] for i, a in enumerate(argv) if a == "-b"}
    assert {"/dev", "/proc", "/sys", "/home/u/data:/data", "/s/hosts:/etc/hosts"} <= pairs
    as_1000 = command(build_plan(_spec(user=User(1000, 100), rootless_ids=65537)), "proot")
    assert "-i" in as_1000 and "1000:100" in as_1000 and "-0" not in as_1000


def test_mode_proot_where_namespaces_fail_and_proot_is_there() -> None:
    report = RootlessReport(
        uid=1000, userns=False, mount_in_userns=False, overlay_in_userns=False,
        max_user_namespaces=0, newuidmap=True, subuid_ranges=True, cgroup_delegated=False,
        missing=("user namespaces are disabled (user.max_user_namespaces=0; as root: ...)",),
    )  # fmt: skip
    mode, why = choose_mode(1000, False, report, proot=True)
    assert mode == "proot" and "PRoot" in why and "max_user_namespaces=0" in why
    mode, why = choose_mode(1000, False, report)
    assert mode == "none" and "install proot" in why


def test_a_fuse_overlayfs_root_is_mounted_by_the_program_for_every_id() -> None:
    rootfs = Rootfs.overlay(["/l/base", "/l/top"], "/c/upper", "/c/work", "/c/merged", fuse=True)
    step = build_plan(Spec(rootfs=rootfs, args=("sh",), rootless=True)).root_mount
    assert step.fstype == "fuse-overlayfs" and step.target == "/c/merged"
    assert step.data == ("lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work,"
                         "allow_other")  # fmt: skip


def test_whiteouts_and_opaque_marks_of_both_overlay_implementations() -> None:
    import os
    import stat

    from ipydock.engine.store.layerfmt import marker

    def st(mode: int) -> os.stat_result:
        return os.stat_result((mode, 0, 0, 1, 0, 0, 0, 0, 0, 0), {"st_rdev": 0})

    chardev, regular = st(stat.S_IFCHR), st(stat.S_IFREG | 0o644)
    assert marker("gone", chardev) == ("whiteout", "gone")  # overlayfs: a 0/0 device
    assert marker(".wh.gone", regular) == ("whiteout", "gone")  # fuse-overlayfs: a file
    assert marker(".wh..wh..opq", regular) == ("opaque", "")
    assert marker(".wh..opq", chardev) == ("opaque", "")  # fuse-overlayfs, where mknod works
    assert marker("file", regular) is None
    assert marker(".wh.dir", st(stat.S_IFDIR | 0o755)) is None
