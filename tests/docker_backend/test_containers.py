"""Containers and volumes through the Docker backend, beside the bundled engine."""

from __future__ import annotations

import io

import pytest

from ipydock.display.frames import frame
from ipydock.errors import ContainerNotFound, NameInUse, VolumeInUse
from ipydock.models import ContainerInfo, FileEntry, RunOptions, VolumeInfo
from tests.docker_backend.conftest import BUSYBOX

pytestmark = [pytest.mark.docker, pytest.mark.root]


def _run(b, *command: str, **kw) -> tuple[int | None, list[tuple[str, str]]]:
    chunks: list[tuple[str, str]] = []
    result = b.run(RunOptions(BUSYBOX, command, **kw), output=lambda s, t: chunks.append((s, t)))
    return result.exit_code, chunks


def test_attached_run_streams_output_and_exit_code_and_rm_removes(engine, bundled) -> None:
    for b in (engine, bundled):
        code, chunks = _run(b, "sh", "-c", "echo out; echo err >&2; exit 3", auto_remove=True)
        assert code == 3
        assert sorted(chunks) == [("stderr", "err\n"), ("stdout", "out\n")]
        assert b.containers(all=True) == []


def test_container_ls_rows_have_the_same_columns_and_values(engine, bundled) -> None:
    rows = {}
    for name, b in (("docker", engine), ("bundled", bundled)):
        b.run(RunOptions(BUSYBOX, ("sleep", "60"), name="sleeper", labels={"k": "v"}),
              detach=True)  # fmt: skip
        _run(b, "true", name="done")
        rows[name] = b.containers(all=True)
    try:
        docker_df, bundled_df = (
            frame(rows["docker"], ContainerInfo),
            frame(rows["bundled"], ContainerInfo),
        )
        assert list(docker_df.columns) == list(bundled_df.columns)
        same = ["name", "image", "status", "exit_code", "labels", "ports"]
        if engine.name == "podman":  # created in the same second: Podman's order is its own
            docker_df, bundled_df = docker_df.sort_values("name"), bundled_df.sort_values("name")
        assert docker_df[same].to_dict("records") == bundled_df[same].to_dict("records")
        assert all(r.pid > 0 for r in rows["docker"] if r.status == "running")
        assert engine.containers(filters=["name=sleeper"])[0].name == "sleeper"
        with pytest.raises(NameInUse):
            engine.create_container(RunOptions(BUSYBOX, ("true",), name="sleeper"))
    finally:
        for b in (engine, bundled):
            for name in ("sleeper", "done"):
                b.remove_container(name, force=True)


def test_logs_exec_top_diff_stop_and_rm(engine) -> None:
    cid = engine.run(RunOptions(BUSYBOX, ("sh", "-c", "echo ready; echo oops >&2; "
                                          "touch /made; exec sleep 60"), name="web"),
                     detach=True).id  # fmt: skip
    try:
        engine.exec("web", ["true"])  # waits until the shell ran (exec needs it running)
        out = io.StringIO()
        assert engine.exec("web", ["sh", "-c", "echo in; exit 4"], stdout=out) == 4
        assert out.getvalue() == "in\n"
        entries = list(engine.logs("web"))
        # stdout and stderr are copied by separate goroutines: their order is not fixed
        assert sorted((e.stream, e.text) for e in entries) == [("stderr", "oops\n"),
                                                             ("stdout", "ready\n")]  # fmt: skip
        assert entries[0].time.endswith("Z")
        titles, procs = engine.top("web")
        assert titles == ["UID", "PID", "PPID", "CMD"] and procs[0][3] == "sleep 60"
        assert ("A", "/made") in [(c.kind, c.path) for c in engine.diff("web")]
        mode = engine.inspect_container("web").host_config["NetworkMode"]
        assert mode == ("bridge" if engine.name == "podman" else "default")  # Podman names it
        assert engine.stop_container("web", timeout=1) == cid
        assert engine.wait_container("web") == 137
    finally:
        assert engine.remove_container("web", force=True) == cid
    with pytest.raises(ContainerNotFound):
        engine.inspect_container("web")


def test_volumes_and_their_files_as_in_the_bundled_engine(engine, bundled) -> None:
    files = {}
    for name, b in (("docker", engine), ("bundled", bundled)):
        made = b.create_volume("data", labels={"team": "a"})
        assert made.name == "data" and made.labels == {"team": "a"} and not made.anonymous
        _run(b, "sh", "-c", "mkdir -p /d/sub && echo x > /d/sub/f && echo yy > /d/a",
             volumes=("data:/d",), name="writer")  # fmt: skip
        with pytest.raises(VolumeInUse):
            b.remove_volume("data")
        b.remove_container("writer")
        files[name] = b.volume_files("data")
        assert [v.name for v in b.volumes()] == ["data"]
        assert list(frame(b.volumes(), VolumeInfo).columns) == list(VolumeInfo.__dataclass_fields__)
    cols = ["path", "type", "size", "mode"]
    assert frame(files["docker"], FileEntry)[cols].to_dict("records") == frame(
        files["bundled"], FileEntry
    )[cols].to_dict("records")
    assert [f.path for f in engine.volume_files("data", "/sub")] == ["/sub", "/sub/f"]
    for b in (engine, bundled):
        assert b.prune_volumes().deleted == []  # named volumes stay without all=True
        assert b.prune_volumes(all=True).deleted == ["data"]


def test_exec_with_stdin_as_on_the_bundled_engine(engine, bundled, daemon, tmp_path) -> None:
    """Input reaches an exec on both engines, all of it, then end of input: from a file and a
    pipe's descriptor; the output streams stay apart and the exit code comes back."""
    import hashlib
    import os
    import subprocess
    import sys
    import tempfile

    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    (tmp_path / "in").write_bytes(data)
    expected = f"{hashlib.md5(data).hexdigest()}  -\n"
    for b in (engine, bundled):
        b.run(RunOptions(BUSYBOX, ("sleep", "60"), name="feed", network="none"), detach=True)
        try:
            with open(tmp_path / "in", "rb") as src, tempfile.TemporaryFile() as out, \
                    tempfile.TemporaryFile() as err:  # fmt: skip
                code = b.exec("feed", ["sh", "-c", "md5sum; echo done >&2; exit 5"], stdin=src,
                              stdout=out, stderr=err)  # fmt: skip
                out.seek(0), err.seek(0)
                assert (code, out.read().decode(), err.read()) == (5, expected, b"done\n"), b
            r, w = os.pipe()
            os.write(w, b"one\ntwo\n")
            os.close(w)
            with tempfile.TemporaryFile() as out:
                assert b.exec("feed", ["cat"], stdin=r, stdout=out) == 0
                out.seek(0)
                assert out.read() == b"one\ntwo\n"
            os.close(r)
        finally:
            b.remove_container("feed", force=True)
    engine.run(RunOptions(BUSYBOX, ("sleep", "60"), name="feed", network="none"), detach=True)
    try:
        out = io.BytesIO()
        assert engine.exec("feed", ["tr", "a-z", "A-Z"], stdin=b"shout\n", stdout=out) == 0
        assert out.getvalue() == b"SHOUT\n"
        r, w = os.pipe()  # input that never ends: the exec still returns when its process does
        try:
            assert engine.exec("feed", ["sh", "-c", "exit 2"], stdin=r, stdout=io.BytesIO()) == 2
        finally:
            os.close(w), os.close(r)
        cli = subprocess.run([sys.executable, "-m", "ipydock", "-H", daemon.host, "exec", "-i",
                              "feed", "sh", "-c", "wc -l"], input=b"a\nb\nc\n",
                             capture_output=True, timeout=120,
                             env={**os.environ, "IPYDOCK_RUNTIME_DIR": str(tmp_path)})  # fmt: skip
        assert (cli.returncode, cli.stdout.strip()) == (0, b"3"), cli.stderr
    finally:
        engine.remove_container("feed", force=True)
