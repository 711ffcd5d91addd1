"""The container and volume commands through the real CLI, each call its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ipydock.engine.containers import RunOptions

pytestmark = pytest.mark.root


def test_detached_container_outlives_the_cli_and_another_process_stops_it(
    engine, ipd, root
) -> None:
    script = "trap 'exit 3' TERM; echo started; while :; do sleep 0.05; done"
    cid = ipd("run", "-d", "--name", "bg", "busybox", "sh", "-c", script).stdout.strip()
    assert len(cid) == 64
    rows = [json.loads(line) for line in ipd("ps", "--format", "json").stdout.splitlines()]
    assert [(r["name"], r["status"]) for r in rows] == [("bg", "running")]
    follower = subprocess.Popen([sys.executable, "-m", "ipydock", "--root", root, "logs", "-f",
                                 "bg"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert follower.stdout.readline() == "started\n"  # another process follows the log
    assert ipd("stop", "bg").stdout == "bg\n"
    assert follower.wait(timeout=30) == 0  # and stops following when the container ends
    follower.stdout.close()
    assert ipd("wait", "bg").stdout == "3\n"
    assert ipd("logs", "bg").stdout == "started\n"
    assert "Exited (3)" in ipd("ps", "-a").stdout


def test_attached_run_exits_with_the_containers_code(engine, ipd) -> None:
    proc = ipd("run", "--rm", "-e", "X=1", "busybox", "sh", "-c", "echo $X; exit 4", check=False)
    assert (proc.returncode, proc.stdout) == (4, "1\n")
    assert ipd("ps", "-a", "-q").stdout == ""
    missing = ipd("run", "--rm", "busybox", "nosuch", check=False)
    assert missing.returncode == 127
    assert 'exec: "nosuch": executable file not found in $PATH' in missing.stderr


def test_stdin_with_i(engine, ipd) -> None:
    proc = ipd("run", "--rm", "-i", "busybox", "cat", input="piped\n")
    assert proc.stdout == "piped\n"


def test_exec_diff_commit_and_inspect(engine, ipd, tmp_path) -> None:
    ipd("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    assert ipd("exec", "c1", "sh", "-c", "echo hi > /tmp/x; id -u").stdout == "0\n"
    assert ipd("diff", "c1").stdout == "C /tmp\nA /tmp/x\n"
    (tmp_path / "in.txt").write_text("host\n")
    ipd("cp", str(tmp_path / "in.txt"), "c1:/tmp")
    ipd("cp", "c1:/tmp/in.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "host\n"
    detail = json.loads(ipd("container", "inspect", "c1").stdout)[0]
    assert detail["state"]["Running"] and detail["name"] == "/c1"
    ipd("rm", "-f", "c1")
    assert ipd("ps", "-a", "-q").stdout == ""


def test_volume_commands(engine, ipd) -> None:
    assert ipd("volume", "create", "data").stdout == "data\n"
    ipd("run", "--rm", "-v", "data:/srv", "busybox", "sh", "-c", "echo x > /srv/f")
    files = [json.loads(line) for line in
             ipd("volume", "files", "data", "--format", "json").stdout.splitlines()]  # fmt: skip
    assert [(f["path"], f["type"], f["size"]) for f in files] == [("/", "dir", 0),
                                                                  ("/f", "file", 2)]  # fmt: skip
    assert ipd("volume", "ls", "-q").stdout == "data\n"
    assert ipd("volume", "rm", "data").stdout == "data\n"
    bad = ipd("run", "-v", "/no/such/dir:/x", "busybox", "true", check=False)
    assert bad.returncode == 1 and "bind source path does not exist" in bad.stderr


def test_prune_removes_stopped_containers(engine, ipd) -> None:
    engine.run(RunOptions("busybox", ("true",)))
    keep = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    assert "Deleted Containers:" in ipd("container", "prune", "-f").stdout
    assert [r.id for r in engine.containers(all=True)] == [keep]
    assert os.path.isdir(os.path.join(engine.store.root, "containers", keep))
