"""The security flags through whole containers, beside docker: the seccomp filter is on by
default (run, exec, build steps), ``seccomp=unconfined`` / ``--privileged`` lift it, a profile
file replaces it, ``no-new-privileges:false`` keeps it; ``--init`` reaps and forwards signals;
``--ulimit`` and ``--group-add`` as docker sets them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.errors import BuildStepFailed, InvalidSeccompProfile
from ipydock.testing import Dockerd, busybox_tarball
from tests.conftest import private_dockerd, require

pytestmark = pytest.mark.root

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"


def run(engine, script: str, **flags) -> tuple[int, str]:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(RunOptions("busybox", ("sh", "-c", script), auto_remove=True, **flags),
                        output=lambda _s, t: seen.append(t))  # fmt: skip
    return int(result.exit_code or 0), "".join(seen)


def status(text: str) -> dict[str, str]:
    return dict(line.split(":\t") for line in text.splitlines() if ":\t" in line)


def test_seccomp_is_on_by_default_and_lifted_as_in_docker(engine, escape_helper: str) -> None:
    helper = (f"{escape_helper}:/h:ro",)
    script = f"{STATUS}; /h/escape keyctl; /h/escape add_key"
    _, out = run(engine, script, volumes=helper)
    assert status(out) == {"NoNewPrivs": "1", "Seccomp": "2"}
    assert "keyctl: EPERM" in out and "add_key: EPERM" in out  # only seccomp refuses these
    _, out = run(engine, script, volumes=helper, security_opt=("seccomp=unconfined",))
    assert status(out)["Seccomp"] == "0" and "keyctl: ok" in out
    _, out = run(engine, script, volumes=helper, privileged=True)
    assert status(out)["Seccomp"] == "0" and "keyctl: ok" in out
    # without no_new_privs the filter is loaded before the capabilities go: still there
    _, out = run(engine, script, volumes=helper, security_opt=("no-new-privileges=false",))
    assert status(out) == {"NoNewPrivs": "0", "Seccomp": "2"} and "keyctl: EPERM" in out
    # CAP_SYS_ADMIN widens docker's profile: unshare and mount are allowed then
    rc, _ = run(engine, "unshare -m mount -t tmpfs none /tmp", cap_add=("SYS_ADMIN",))
    assert rc == 0
    assert run(engine, "unshare -m true")[0] != 0


def test_a_profile_file_replaces_the_default(engine, tmp_path) -> None:  # noqa: ANN001
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }))  # fmt: skip
    rc, out = run(engine, f"{STATUS}; mkdir /made", security_opt=(f"seccomp={profile}",))
    assert rc != 0 and "Permission denied" in out and status(out)["Seccomp"] == "2"
    inspect = engine.create_container(RunOptions("busybox", ("true",),
                                                 security_opt=(f"seccomp={profile}",)))  # fmt: skip
    opts = engine.inspect_container(inspect).host_config["SecurityOpt"]
    assert opts == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir",'
                    '"mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}']  # fmt: skip
    profile.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], '
                       '"action": "SCMP_ACT_MAYBE"}]}')  # fmt: skip
    with pytest.raises(InvalidSeccompProfile, match="unknown action 'SCMP_ACT_MAYBE'"):
        engine.create_container(RunOptions("busybox", ("true",),
                                           security_opt=(f"seccomp={profile}",)))  # fmt: skip


def test_exec_and_build_steps_get_the_filter(engine, tmp_path) -> None:  # noqa: ANN001
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    out = tmp_path / "out"
    with open(out, "w") as f:
        assert engine.exec(cid, ["sh", "-c", STATUS], stdout=f) == 0
    assert status(out.read_text()) == {"NoNewPrivs": "1", "Seccomp": "2"}
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM busybox\nRUN {STATUS} && unshare -m true\n")
    with pytest.raises(BuildStepFailed) as err:
        engine.build(str(context))
    assert "Seccomp:\t2" in err.value.last_lines
    assert any("Operation not permitted" in line for line in err.value.last_lines)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_init_reaps_orphans_and_forwards_stop(engine) -> None:
    script = "for i in 1 2 3; do (sleep 0.1 &); done; exec sleep 1000"
    cid = engine.run(RunOptions("busybox", ("sh", "-c", script), init=True), detach=True).id
    pid = engine.inspect_container(cid).state["Pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"/sbin/docker-init", b"--"]
    deadline = time.monotonic() + 30
    while True:  # the orphans are tini's children until they exit and it reaps them
        kids = _children(pid)
        if len(kids) == 1 and _cmdline(kids[0]) == b"sleep\x001000\x00":  # forked, exec'd
            break
        assert time.monotonic() < deadline, f"orphans not reaped: {kids}"
        time.sleep(0.05)
    engine.stop_container(cid, timeout=60)  # SIGTERM reaches sleep through tini
    assert engine.wait_container(cid) == 143  # 128 + SIGTERM: not the timeout's SIGKILL


def test_ulimit_and_group_add(engine) -> None:
    rc, out = run(engine, "ulimit -n; ulimit -Hn; ulimit -c; id -G",
                  ulimits=("nofile=100:200", "core=-1"), group_add=("5", "nogroup"))  # fmt: skip
    assert (rc, out.split()) == (0, ["100", "200", "unlimited", "0", "5", "65534"])


# --- side by side with docker -----------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_busybox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with private_dockerd() as d:
        tarball = busybox_tarball(str(tmp_path_factory.mktemp("bb") / "busybox.tar.gz"))
        d.run("import", tarball, "busybox")
        yield d


@pytest.mark.slow
def test_the_same_as_docker(engine, docker_busybox: Dockerd) -> None:
    script = f"{STATUS}; ulimit -n; ulimit -Hn; id -G; cat /proc/1/cmdline | tr '\\0' ' '"
    cases = [
        ("--security-opt", "no-new-privileges", "--ulimit", "nofile=100:200",
         "--group-add", "5", "--init"),
        ("--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges:true"),
    ]  # fmt: skip
    for flags in cases:
        docker = docker_busybox.run("run", "--rm", "--network", "none", *flags, "busybox",
                                    "sh", "-c", script).stdout.decode()  # fmt: skip
        pairs = list(zip(flags, flags[1:], strict=False))
        kw = {"security_opt": tuple(v for k, v in pairs if k == "--security-opt"),
              "ulimits": tuple(v for k, v in pairs if k == "--ulimit"),
              "group_add": tuple(v for k, v in pairs if k == "--group-add"),
              "init": "--init" in flags}  # fmt: skip
        rc, ours = run(engine, script, **kw)
        assert rc == 0
        assert ours == docker, flags
    # docker's words for a bad ulimit and a bad profile path, client-side
    bad = docker_busybox.run("run", "--rm", "--ulimit", "nofile=3:2", "busybox", "true",
                             check=False)  # fmt: skip
    assert b"ulimit soft limit must be less than or equal to hard limit: 3 > 2" in bad.stderr


def test_podmans_profile_is_read_as_docker_reads_it(engine, escape_helper: str) -> None:
    """containers-common's seccomp.json (Podman's profile, docker's format, the one skopeo's
    package brings) as a profile file: it allows keyctl and unshare, which docker's refuses;
    the capabilities still refuse the mount."""
    path = "/usr/share/containers/seccomp.json"
    require(os.path.exists(path), "containers-common (skopeo's dependency) is not installed")
    script = f"{STATUS}; /h/escape keyctl; /h/escape clone-newuser; /h/escape mount"
    _, out = run(engine, script, volumes=(f"{escape_helper}:/h:ro",),
                 security_opt=(f"seccomp={path}",))  # fmt: skip
    assert status(out)["Seccomp"] == "2"
    assert "keyctl: ok" in out and "clone-newuser: ok" in out and "mount: EPERM" in out


def test_info_lists_the_security_options(backend) -> None:  # noqa: ANN001
    assert backend.info()["security_options"] == "seccomp profile=default, no-new-privileges"


def test_build_steps_take_ulimit_as_docker_build_does(engine, tmp_path, ipd) -> None:  # noqa: ANN001
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN ulimit -n > /l; ulimit -Hn >> /l\n")
    result = engine.build(str(context), tags=["limited"], ulimits=("nofile=77:88",))
    seen: list[str] = []
    engine.run(RunOptions("limited", ("cat", "/l"), auto_remove=True),
               output=lambda _s, t: seen.append(t))  # fmt: skip
    assert result.image_id and "".join(seen).split() == ["77", "88"]
    bad = ipd("build", "--ulimit", "nofile=9:8", str(context), check=False)
    assert bad.returncode == 1 and "less than or equal to hard limit: 9 > 8" in bad.stderr
