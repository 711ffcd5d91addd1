"""The notes' docker commands, run by Debian's docker client against the service and against a
real dockerd (the ``engine`` fixture): the same outputs, IDs and times aside."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile

import pytest

from tests.service.conftest import DOCKER, Engine

pytestmark = pytest.mark.root

NONE = ("--network", "none")  # the side-by-side dockerd has no default bridge
HEX = re.compile(r"\b[0-9a-f]{12}\b|\b[0-9a-f]{64}\b")


def ids_out(text: str) -> str:
    return HEX.sub("<id>", text)


def test_version_and_info(engine: Engine) -> None:
    assert engine.docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.41\n"
    images = int(engine.docker("info", "--format", "{{.Images}}").stdout)
    assert images >= 1
    assert engine.docker("info", "--format", "{{.OSType}}").stdout == "linux\n"


def test_imported_image_is_listed(engine: Engine) -> None:
    rows = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}").stdout
    assert "busybox:latest " in rows
    history = engine.docker("history", "--format", "{{.Comment}}", "busybox").stdout
    assert history == "Imported from -\n"


def test_run_rm_echo_and_exit_codes(engine: Engine) -> None:
    done = engine.docker("run", "--rm", *NONE, "busybox", "echo", "hello")
    assert (done.stdout, done.stderr) == ("hello\n", "")
    failed = engine.docker("run", "--rm", *NONE, "busybox", "sh", "-c",
                           "echo out; echo err >&2; exit 3", check=False)  # fmt: skip
    assert (failed.returncode, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
    piped = engine.docker("run", "--rm", "-i", *NONE, "busybox", "sh", "-c", "cat; echo end",
                          input="line one\nline two\n")  # fmt: skip
    assert piped.stdout == "line one\nline two\nend\n"
    missing = engine.docker("run", "--rm", *NONE, "busybox", "nosuch", check=False)
    assert missing.returncode == 127
    assert "executable file not found" in missing.stderr


def test_detached_ps_logs_exec_stop_rm(engine: Engine) -> None:
    name = "svc-bg"
    engine.docker("run", "-d", "--name", name, *NONE, "busybox", "sh", "-c",
                  "echo first; echo second; exec sleep 300")  # fmt: skip
    ps = engine.docker("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Command}}")
    assert ps.stdout.startswith(f"{name} ")
    logs = engine.docker("logs", name)
    assert (logs.stdout, logs.stderr) == ("first\nsecond\n", "")
    tail = engine.docker("logs", "--tail", "1", name)
    assert (tail.stdout, tail.stderr) == ("second\n", "")
    assert engine.docker("logs", "--since", "2000-01-01T00:00:00Z", name).stdout == logs.stdout
    assert engine.docker("logs", "--since", "2999-01-01T00:00:00Z", name).stdout == ""
    assert engine.docker("logs", "--until", "2000-01-01T00:00:00Z", name).stdout == ""
    stamped = engine.docker("logs", "-t", name).stdout
    assert re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (first|second)\n){2}", stamped)
    fed = engine.docker("exec", "-i", name, "sh", "-c", "cat; echo done >&2; exit 4",
                        input="to exec\n", check=False)  # fmt: skip
    assert (fed.returncode, fed.stdout, fed.stderr) == (4, "to exec\n", "done\n")
    assert engine.docker("exec", name, "cat", "/proc/1/cmdline").stdout == "sleep\x00300\x00"
    top = engine.docker("top", name).stdout
    assert "sleep 300" in top
    engine.docker("stop", "-t", "1", name)
    state = engine.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
    assert state.stdout == "exited 137\n"  # pid 1 ignores SIGTERM: killed after -t
    assert engine.docker("rm", name).stdout == f"{name}\n"
    gone = engine.docker("inspect", name, check=False)
    assert gone.returncode == 1 and gone.stderr == f"Error: No such object: {name}\n"


def test_logs_follow_ends_with_the_container(engine: Engine) -> None:
    cid = engine.docker("run", "-d", *NONE, "busybox", "sh", "-c",
                        "for i in 1 2 3; do echo $i; sleep 0.2; done").stdout.strip()  # fmt: skip
    followed = engine.docker("logs", "-f", cid)
    assert followed.stdout == "1\n2\n3\n"
    assert engine.docker("wait", cid).stdout == "0\n"
    engine.docker("rm", cid)


def test_build_from_a_directory_and_from_stdin(engine: Engine, tmp_path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN echo built > /built.txt\nCOPY data.txt /data.txt\n"
        'CMD ["cat", "/built.txt", "/data.txt"]\n'
    )
    (ctx / "data.txt").write_text("from the context\n")
    (ctx / ".dockerignore").write_text("secret\n")
    (ctx / "secret").write_text("no")
    out = engine.docker("build", "-t", f"svc-app-{engine.name}", str(ctx)).stdout
    steps = [line for line in out.splitlines() if line.startswith("Step ")]
    assert steps == ["Step 1/4 : FROM busybox", "Step 2/4 : RUN echo built > /built.txt",
                     "Step 3/4 : COPY data.txt /data.txt",
                     'Step 4/4 : CMD ["cat", "/built.txt", "/data.txt"]']  # fmt: skip
    assert f"Successfully tagged svc-app-{engine.name}:latest" in out
    ran = engine.docker("run", "--rm", *NONE, f"svc-app-{engine.name}").stdout
    assert ran == "built\nfrom the context\n"
    history = engine.docker("history", "--format", "{{.CreatedBy}}|{{.Size}}",
                            f"svc-app-{engine.name}").stdout.splitlines()  # fmt: skip
    assert len(history) == 4 and history[2].endswith("echo built > /built.txt|6B")
    again = engine.docker("build", "-t", f"svc-app-{engine.name}", str(ctx)).stdout
    assert again.count(" ---> Using cache") == 3
    stdin = engine.docker("build", "-q", "-t", f"svc-env-{engine.name}", "-",
                          input="FROM busybox\nENV GREETING=hi\n").stdout  # fmt: skip
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", stdin)
    env = engine.docker("run", "--rm", *NONE, f"svc-env-{engine.name}", "sh", "-c",
                        "echo $GREETING").stdout  # fmt: skip
    assert env == "hi\n"
    bad = engine.docker("build", "-", input="FROM busybox\nRUN exit 7\n", check=False)
    assert bad.returncode != 0
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in bad.stderr
    for image in (f"svc-app-{engine.name}", f"svc-env-{engine.name}"):
        engine.docker("rmi", image)


def test_cp_both_ways_diff_and_commit(engine: Engine, tmp_path) -> None:
    name = "svc-files"
    engine.docker("run", "-d", "--name", name, *NONE, "busybox", "sleep", "300")
    (tmp_path / "in.txt").write_text("into the container\n")
    engine.docker("cp", str(tmp_path / "in.txt"), f"{name}:/tmp/")
    assert engine.docker("exec", name, "cat", "/tmp/in.txt").stdout == "into the container\n"
    engine.docker("exec", name, "sh", "-c", "mkdir /out && echo a > /out/a && rm /etc/passwd")
    engine.docker("cp", f"{name}:/out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "a").read_text() == "a\n"
    engine.docker("cp", f"{name}:/out/a", str(tmp_path / "single"))
    assert (tmp_path / "single").read_text() == "a\n"
    diff = sorted(engine.docker("diff", name).stdout.splitlines(), key=lambda line: line[2:])
    assert diff == ["C /etc", "D /etc/passwd", "A /out", "A /out/a", "C /tmp", "A /tmp/in.txt"]
    missing = engine.docker("cp", f"{name}:/nosuch", str(tmp_path / "x"), check=False)
    assert (missing.returncode, missing.stderr) == (
        1,
        f"Error: No such container:path: {name}:/nosuch\n",
    )
    exported = subprocess.run([DOCKER, "export", name], env=engine.env(), capture_output=True,
                              check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = {n.removeprefix("./").rstrip("/") for n in tar.getnames()}
    assert {"bin/busybox", "out/a", "tmp/in.txt"} <= names and "etc/passwd" not in names
    image = engine.docker("commit", "-m", "snap", name, f"svc-snap-{engine.name}:1").stdout
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", image)
    listed = engine.docker("run", "--rm", *NONE, f"svc-snap-{engine.name}:1", "ls", "/out").stdout
    assert listed == "a\n"
    engine.docker("rm", "-f", name)
    engine.docker("rmi", f"svc-snap-{engine.name}:1")


def test_volumes(engine: Engine) -> None:
    vol = f"svc-vol-{engine.name}"
    assert engine.docker("volume", "create", vol).stdout == f"{vol}\n"
    engine.docker("run", "--rm", *NONE, "-v", f"{vol}:/data", "busybox", "sh", "-c",
                  "echo kept > /data/f")  # fmt: skip
    read = engine.docker("run", "--rm", *NONE, "-v", f"{vol}:/data:ro", "busybox", "cat",
                         "/data/f")  # fmt: skip
    assert read.stdout == "kept\n"
    names = engine.docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout
    assert f"local {vol}\n" in names
    inspect = engine.docker("volume", "inspect", "--format", "{{.Name}} {{.Scope}}", vol).stdout
    assert inspect == f"{vol} local\n"
    assert engine.docker("volume", "rm", vol).stdout == f"{vol}\n"
    gone = engine.docker("volume", "inspect", vol, check=False)
    assert gone.returncode == 1


def test_networks_list_and_create(engine: Engine) -> None:
    builtin = engine.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout
    assert "host host\n" in builtin and "none null\n" in builtin
    net = f"svcnet{engine.name[:3]}"
    engine.docker("network", "create", net)
    assert engine.docker("network", "inspect", "--format", "{{.Driver}}", net).stdout == "bridge\n"
    engine.docker("run", "-d", "--name", "svc-srv", "--network", net, "busybox", "httpd", "-f",
                  "-p", "80", "-h", "/etc")  # fmt: skip
    try:
        script = "until wget -q -O- http://svc-srv/hostname; do sleep 0.1; done"
        got = engine.docker("run", "--rm", "--network", net, "busybox", "sh", "-c", script)
        assert len(got.stdout.strip()) == 12
        other = f"{net}b"
        engine.docker("network", "create", other)
        nets = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        engine.docker("network", "connect", other, "svc-srv")
        assert engine.docker("inspect", "--format", nets, "svc-srv").stdout == f"{net} {other} \n"
        engine.docker("network", "disconnect", other, "svc-srv")
        assert engine.docker("inspect", "--format", nets, "svc-srv").stdout == f"{net} \n"
        engine.docker("network", "rm", other)
    finally:
        engine.docker("rm", "-f", "svc-srv")
    assert engine.docker("network", "rm", net).stdout == f"{net}\n"


def test_rmi_and_save_load(engine: Engine, tmp_path) -> None:
    engine.docker("tag", "busybox", "svc-copy:1")
    engine.docker("tag", "busybox", "svc-copy:2")
    removed = engine.docker("rmi", "svc-copy:1").stdout
    assert removed == "Untagged: svc-copy:1\n"
    archive = tmp_path / "saved.tar"
    engine.docker("save", "-o", str(archive), "svc-copy:2")
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    engine.docker("rmi", "svc-copy:2")
    loaded = engine.docker("load", "-i", str(archive)).stdout
    assert loaded == "Loaded image: svc-copy:2\n"
    saved = engine.docker("save", "svc-copy:2", input=b"").stdout
    assert len(saved) > 1000
    engine.docker("rmi", "svc-copy:2")
    busy = engine.docker("rmi", "nosuch:1", check=False)
    assert (busy.returncode, busy.stderr) == (
        1, "Error: No such image: nosuch:1\n")  # fmt: skip


def test_errors_read_as_dockerd_words_them(engine: Engine) -> None:
    start = engine.docker("start", "nosuch", check=False)
    assert start.stderr == ("Error response from daemon: No such container: nosuch\n"
                            "Error: failed to start containers: nosuch\n")  # fmt: skip
    engine.docker("create", "--name", "svc-twice", *NONE, "busybox")
    twice = engine.docker("create", "--name", "svc-twice", *NONE, "busybox", check=False)
    assert twice.returncode == 1
    assert 'The container name "/svc-twice" is already in use' in twice.stderr
    engine.docker("rm", "svc-twice")
    stopped = engine.docker("kill", "nosuch", check=False)
    assert "No such container: nosuch" in stopped.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_image_list_filters(engine: Engine) -> None:
    engine.docker("tag", "busybox", "svc-filter:1")
    rows = engine.docker("images", "--filter", "reference=svc-filter", "--format",
                         "{{.Repository}}:{{.Tag}}").stdout  # fmt: skip
    assert rows == "svc-filter:1\n"
    dangling = engine.docker("images", "-q", "--filter", "dangling=true").stdout
    assert ids_out(dangling).replace("<id>\n", "") == ""
    engine.docker("rmi", "svc-filter:1")


def test_create_with_host_config(engine: Engine) -> None:
    """docker run's flags travel as HostConfig and come back in inspect as dockerd shows them."""
    name = "svc-limits"
    engine.docker("run", "-d", "--name", name, *NONE, "--memory", "64m", "--pids-limit", "50",
                  "--cpus", "0.5", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN",
                  "--restart", "on-failure:3", "-v", f"svc-hc-{engine.name}:/data",
                  "--mount", "type=tmpfs,target=/scratch", "-e", "A=1", "-w", "/data",
                  "--label", "role=test", "busybox", "sleep", "300")  # fmt: skip
    try:
        restart = (
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        )
        fmt = ("{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} "
               f"{{{{.HostConfig.CapAdd}}}} {{{{.HostConfig.CapDrop}}}} {restart} "
               "{{.HostConfig.NetworkMode}} {{.Config.WorkingDir}} "
               '{{index .Config.Labels "role"}}')  # fmt: skip
        shown = engine.docker("inspect", "--format", fmt, name).stdout
        assert shown == "67108864 50 500000000 [NET_ADMIN] [CHOWN] on-failure:3 none /data test\n"
        inside = engine.docker("exec", name, "sh", "-c",
                               "echo $A; mount | grep -c ' /scratch type tmpfs'; "
                               "grep /data /proc/mounts").stdout  # fmt: skip
        assert inside.startswith("1\n1\n"), inside
        mounts = engine.docker(
            "inspect", "--format", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}", name
        ).stdout
        assert "volume:/data" in mounts
    finally:
        engine.docker("rm", "-f", name)
        engine.docker("volume", "rm", f"svc-hc-{engine.name}")


def test_build_args_target_and_no_cache(engine: Engine, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS base\nARG WHO=nobody\nRUN echo hello $WHO > /greeting\n"
        "FROM base AS final\nRUN echo final > /final\n"
    )
    image = f"svc-args-{engine.name}"
    out = engine.docker("build", "--build-arg", "WHO=class", "--target", "base", "-t", image,
                        str(tmp_path)).stdout  # fmt: skip
    assert "Step 3/3 : RUN echo hello $WHO > /greeting" in out and "final" not in out
    ran = engine.docker("run", "--rm", *NONE, image, "cat", "/greeting").stdout
    assert ran == "hello class\n"
    again = engine.docker("build", "--no-cache", "--build-arg", "WHO=class", "--target",
                          "base", "-t", image, str(tmp_path)).stdout  # fmt: skip
    assert "Using cache" not in again
    engine.docker("rmi", image)
