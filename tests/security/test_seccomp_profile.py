"""Docker's seccomp profile as data, read as docker reads it, compiled by libseccomp (no kernel,
no root): which rules apply for which capabilities and arches, docker's checks on a profile,
the compile cache, and the flags' request layer (``--security-opt``, ``--ulimit``, ``--userns``).
"""

from __future__ import annotations

import json
import os

import pytest

from ipydock.commands.security import (
    check_userns,
    parse_security_opts,
    parse_ulimit,
    security_settings,
)
from ipydock.engine.runtime import seccomp
from ipydock.engine.runtime.caps import CAPABILITIES, DOCKER_DEFAULT_CAPS
from ipydock.engine.runtime.plan import build_plan
from ipydock.engine.runtime.spec import Rootfs, Spec, Ulimit
from ipydock.errors import InvalidSeccompProfile, InvalidSpec, UsageError

DEFAULT = seccomp.parse(seccomp.default_profile_text())


def allowed(caps, arch: str = "amd64", kernel: tuple[int, int] = (6, 1)) -> set[str]:  # noqa: ANN001
    """Syscalls allowed unconditionally (no argument condition) for a bounding set."""
    rules = seccomp.rules_for(DEFAULT, caps, arch, kernel)
    return {n for r in rules if r.action == "SCMP_ACT_ALLOW" and not r.args for n in r.names}


def test_the_default_profile_is_dockers() -> None:
    assert (DEFAULT.default_action, DEFAULT.default_errno) == ("SCMP_ACT_ERRNO", 1)
    assert ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")) in DEFAULT.arch_map
    names = allowed(DOCKER_DEFAULT_CAPS)
    assert len(names) > 350 and {"read", "clone3", "close_range", "execve"} - names == {"clone3"}
    # What docker refuses a default container (and Podman's containers-common profile allows)
    refused = {"mount", "umount2", "unshare", "setns", "keyctl", "add_key", "bpf", "ptrace",
               "perf_event_open", "init_module", "reboot", "sethostname", "clock_settime",
               "open_by_handle_at", "io_uring_setup", "pivot_root", "kexec_load"}  # fmt: skip
    assert refused & names == {"ptrace"}  # docker allows ptrace from kernel 4.8 on
    assert "ptrace" not in allowed(DOCKER_DEFAULT_CAPS, kernel=(4, 4))


def test_capabilities_widen_the_profile_as_in_docker() -> None:
    base = allowed(DOCKER_DEFAULT_CAPS)
    admin = allowed(DOCKER_DEFAULT_CAPS | {"SYS_ADMIN"})
    assert {"mount", "umount2", "unshare", "setns", "sethostname", "bpf", "clone3"} <= admin - base
    assert {"init_module", "finit_module"} <= allowed({"CAP_SYS_MODULE"})
    assert "clock_settime" in allowed(DOCKER_DEFAULT_CAPS | {"SYS_TIME"})
    everything = allowed(CAPABILITIES)
    assert everything > admin
    # clone3 answers ENOSYS unless SYS_ADMIN (glibc then falls back to clone)
    rules = seccomp.rules_for(DEFAULT, DOCKER_DEFAULT_CAPS, "amd64", (6, 1))
    clone3 = [(r.action, r.errno) for r in rules if r.names == ("clone3",)]
    assert clone3 == [("SCMP_ACT_ERRNO", 38)]
    assert not [r for r in seccomp.rules_for(DEFAULT, {"SYS_ADMIN"}, "amd64", (6, 1))
                if r.names == ("clone3",) and r.action == "SCMP_ACT_ERRNO"]  # fmt: skip


def test_arch_conditions() -> None:
    assert "arch_prctl" in allowed(DOCKER_DEFAULT_CAPS, "amd64")
    assert "arch_prctl" not in allowed(DOCKER_DEFAULT_CAPS, "arm64")
    assert "set_tls" in allowed(DOCKER_DEFAULT_CAPS, "arm64")
    # s390 orders clone's arguments differently: the other rule applies there
    clone = [r for r in seccomp.rules_for(DEFAULT, DOCKER_DEFAULT_CAPS, "s390x", (6, 1))
             if r.names == ("clone",)]  # fmt: skip
    assert [a.index for r in clone for a in r.args] == [1]


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ("{", "decoding seccomp profile failed"),
        ('{"defaultAction": "SCMP_ACT_NOPE"}', "unknown action 'SCMP_ACT_NOPE'"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], '
         '"archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}', "both 'architectures' and"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], '
         '"action": "SCMP_ACT_ERRNO"}]}', "both 'name' and 'names'"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], '
         '"action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_ABOUT"}]}]}',
         "'op' must be one of"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], '
         '"action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]}',
         "index 0-5"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], '
         '"action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "4"}}]}', "invalid kernel"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}', "listenerPath"),
        ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY is not supported"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_X"]}', "unknown flag"),
    ],
)  # fmt: skip
def test_bad_profiles_are_refused_with_what_is_wrong(profile: str, why: str) -> None:
    with pytest.raises(InvalidSeccompProfile) as info:
        seccomp.parse(profile, "p.json")
    assert why in str(info.value) and str(info.value).startswith("seccomp profile p.json: ")
    assert isinstance(info.value, InvalidSpec)


def test_a_profile_without_action_or_rules_is_no_profile() -> None:
    assert seccomp.parse("{}").disabled
    assert seccomp.compile_profile("{}", DOCKER_DEFAULT_CAPS) == (b"", 0)


def test_compiled_once_then_cached_in_memory_and_on_disk(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                       "syscalls": [{"names": ["keyctl", "no_such_call"],
                                     "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})  # fmt: skip
    bpf, flags = seccomp.compile_profile(text, ["CHOWN"])
    assert flags == 2 and bpf and len(bpf) % 8 == 0  # an unknown name is skipped, as runc does
    cached = os.listdir(tmp_path / "ipydock" / "seccomp")
    assert len(cached) == 1 and cached[0].endswith(".bpf")
    seccomp._compiled.clear()
    assert seccomp.compile_profile(text, ["CAP_CHOWN"]) == (bpf, flags)  # read back, same key
    assert seccomp.compile_profile(text, ["SYS_ADMIN"])[0] == bpf  # no cap rules: same program
    assert len(os.listdir(tmp_path / "ipydock" / "seccomp")) == 2
    # a cached file that does not check out is not loaded: compiled again, rewritten
    path = tmp_path / "ipydock" / "seccomp" / cached[0]
    data = path.read_bytes()
    path.write_bytes(data[:-8] + bytes(8))
    seccomp._compiled.clear()
    assert seccomp.compile_profile(text, ["CHOWN"]) == (bpf, flags)
    assert path.read_bytes() == data


def test_the_plan_carries_the_filter_unless_privileged_or_unconfined(tmp_path) -> None:  # noqa: ANN001
    spec = Spec(Rootfs.directory(str(tmp_path)), ("true",),
                ulimits=(Ulimit("nofile", 100, 200),))  # fmt: skip
    plan = build_plan(spec)
    assert plan.seccomp and plan.no_new_privs and plan.rlimits == ((7, 100, 200),)
    from dataclasses import replace

    assert build_plan(replace(spec, privileged=True)).seccomp == ""
    assert build_plan(replace(spec, seccomp="unconfined")).seccomp == ""
    # SYS_ADMIN in the bounding set: a wider program (mount, unshare, ... allowed)
    assert build_plan(replace(spec, cap_add=("SYS_ADMIN",))).seccomp != plan.seccomp
    with pytest.raises(InvalidSpec, match="invalid ulimit type: files"):
        build_plan(replace(spec, ulimits=(Ulimit("files", 1, 1),)))


# --- the request layer -------------------------------------------------------------------------


def test_security_opt_as_the_docker_cli_and_daemon_read_it(tmp_path) -> None:  # noqa: ANN001
    profile = tmp_path / "p.json"
    profile.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
    opts = parse_security_opts(["no-new-privileges", f"seccomp={profile}", "apparmor=unconfined"])
    assert opts == ["no-new-privileges", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
                    "apparmor=unconfined"]  # fmt: skip
    assert security_settings(opts) == (True, '{"defaultAction":"SCMP_ACT_ALLOW"}')
    assert parse_security_opts(opts) == opts  # the API's form (JSON inline) is kept as it is
    assert security_settings(["no-new-privileges:false", "seccomp=unconfined"]) == (
        False, "unconfined")  # fmt: skip
    assert security_settings(["no-new-privileges=true", "label=disable"]) == (True, "")
    assert security_settings([]) == (None, "")
    with pytest.raises(UsageError, match="invalid --security-opt: 'bogus'"):
        parse_security_opts(["bogus"])
    with pytest.raises(UsageError, match=r"opening seccomp profile \(/nope.json\) failed"):
        parse_security_opts(["seccomp=/nope.json"])
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(UsageError, match="compacting json for seccomp profile"):
        parse_security_opts([f"seccomp={tmp_path / 'bad.json'}"])
    with pytest.raises(UsageError, match="invalid --security-opt 2"):
        security_settings(["no-new-privileges=maybe"])
    with pytest.raises(UsageError, match="invalid --security-opt 2"):
        security_settings(["systempaths=unconfined"])


def test_ulimit_and_userns_as_docker() -> None:
    assert parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert parse_ulimit("core=-1") == {"Name": "core", "Soft": -1, "Hard": -1}
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    for bad, why in (("nofile", "invalid ulimit argument"), ("files=1", "invalid ulimit type"),
                     ("nofile=1:2:3", "too many limit value"), ("nofile=x", "whole numbers"),
                     ("nofile=3:2", "less than or equal to hard limit: 3 > 2")):  # fmt: skip
        with pytest.raises(UsageError, match=why):
            parse_ulimit(bad)
    assert check_userns("host") == "host" and check_userns(None) == ""
    with pytest.raises(UsageError, match="--userns: invalid USER mode"):
        check_userns("keep-id")


def test_the_docker_backend_sends_the_flags_as_docker_does(tmp_path) -> None:  # noqa: ANN001
    from docker.api.client import APIClient

    from ipydock.docker.runopts import create_args
    from ipydock.models import RunOptions

    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ERRNO"}')
    api = APIClient(base_url="unix:///nonexistent.sock", version="1.41")  # never connects
    security = ("no-new-privileges", f"seccomp={profile}")
    opts = RunOptions("busybox", security_opt=security, group_add=("5",),
                      ulimits=("nofile=10:20",), init=True, userns="host")  # fmt: skip
    host = create_args(api, opts)["host_config"]
    compact = 'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}'
    assert host["SecurityOpt"] == ["no-new-privileges", compact]
    assert host["GroupAdd"] == ["5"] and host["Init"] is True and host["UsernsMode"] == "host"
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
