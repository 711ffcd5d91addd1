"""Isolation, copy-on-write (diff, commit, cp), volumes and bind mounts, limits."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.errors import InvalidMountSpec, VolumeInUse

pytestmark = pytest.mark.root


def out(engine, *command: str, **flags) -> tuple[int, str]:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(RunOptions("busybox", command=command, **flags),
                        output=lambda s, t: seen.append(t))  # fmt: skip
    return int(result.exit_code), "".join(seen)


def test_isolation(engine) -> None:
    script = ("echo pid=$$; hostname; ps -o pid | wc -l; grep CapEff /proc/self/status; "
              "cat /proc/keys | wc -c; ls /home")  # fmt: skip
    code, text = out(engine, "sh", "-c", script, hostname="iso")
    lines = text.splitlines()
    assert code == 0
    assert lines[0] == "pid=1"
    assert lines[1] == "iso"
    assert int(lines[2]) <= 4  # header, sh, ps, wc: no host process is visible
    assert lines[3].split()[1] == "00000000a80425fb"  # Docker's default capability set
    assert lines[4] == "0"  # masked with /dev/null
    assert "work" not in text  # no host path shows through


def test_copy_on_write_diff_and_commit(engine, store, busybox) -> None:
    script = "echo new > /root/added; rm /etc/group; echo x >> /etc/passwd"
    code, _ = out(engine, "sh", "-c", script,
                  name="cow")  # fmt: skip
    assert code == 0
    changes = [(c.kind, c.path) for c in engine.diff("cow")]
    assert changes == [("C", "/etc"), ("D", "/etc/group"), ("C", "/etc/passwd"),
                       ("C", "/root"), ("A", "/root/added")]  # fmt: skip
    image = store.resolve("busybox")
    top = store.layers.snapshot(store.layer_chain(image)[-1].chain_id)
    assert os.path.exists(os.path.join(top, "etc/group"))  # the image is untouched
    new_id = engine.commit("cow", "snap:1", message="my change")
    history = engine.history("snap:1")
    assert history[0].comment == "my change" and history[0].size > 0
    assert store.resolve("snap:1").parent == busybox
    code, text = out(engine, "sh", "-c", "cat /root/added; ls /etc/group 2>&1 | grep -c 'No such'")
    assert text == "1\n" or code != 0  # busybox itself still has /etc/group: one line only
    seen: list[str] = []
    engine.run(RunOptions(new_id, ("sh", "-c", "cat /root/added; test -e /etc/group || echo gone")),
               output=lambda s, t: seen.append(t))  # fmt: skip
    assert "".join(seen) == "new\ngone\n"


def test_cp_both_ways(engine, tmp_path) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    buf.seek(0)
    engine.copy_to(cid, "/tmp", buf)
    r, w = os.pipe()
    engine.exec(cid, ["cat", "/tmp/hello.txt"], stdout=w)
    os.close(w)
    assert os.read(r, 100) == b"hi\n"
    os.close(r)
    engine.stop_container(cid, timeout=0)
    out_buf = io.BytesIO()
    engine.copy_from(cid, "/tmp/hello.txt", out_buf)  # stopped: read from the layers
    out_buf.seek(0)
    with tarfile.open(fileobj=out_buf) as tar:
        assert tar.extractfile("hello.txt").read() == b"hi\n"


def test_named_volume_is_shared_seeded_and_survives(engine) -> None:
    a = engine.run(RunOptions("busybox", ("sleep", "1000"), volumes=("shared:/etc",)), detach=True)
    code, text = out(engine, "sh", "-c", "cat /etc/passwd | head -1; echo from-b > /etc/note",
                     volumes=("shared:/etc",))  # fmt: skip
    assert code == 0 and text.startswith("root:")  # seeded from the image's /etc
    r, w = os.pipe()
    engine.exec(a.id, ["cat", "/etc/note"], stdout=w)
    os.close(w)
    assert os.read(r, 100) == b"from-b\n"
    os.close(r)
    with pytest.raises(VolumeInUse):
        engine.remove_volume("shared")
    for row in engine.containers(all=True):
        engine.remove_container(row.id, force=True, volumes=True)
    names = [f.path for f in engine.volume_files("shared")]
    assert "/note" in names and "/passwd" in names
    engine.remove_volume("shared")
    assert engine.volumes() == []


def test_bind_mounts_rw_and_ro(engine, tmp_path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    code, _ = out(engine, "sh", "-c", "echo w > /m/file", volumes=(f"{host}:/m",))
    assert code == 0 and (host / "file").read_text() == "w\n"
    code, text = out(engine, "sh", "-c", "echo w > /m/other 2>&1; cat /m/file",
                     volumes=(f"{host}:/m:ro",))  # fmt: skip
    assert "Read-only file system" in text and "w\n" in text
    assert not (host / "other").exists()
    with pytest.raises(InvalidMountSpec, match="does not exist"):
        engine.create_container(RunOptions("busybox", ("true",), volumes=("/no/such:/m",)))


def test_anonymous_volume_of_an_image_volume_goes_with_rm_v(engine, busybox) -> None:
    cid = engine.create_container(RunOptions("busybox", ("true",), name="base"))
    engine.commit(cid, "withvol", changes=["VOLUME /data"])
    engine.remove_container(cid)
    vol_cid = engine.run(RunOptions("withvol", ("sh", "-c", "echo x > /data/f")), detach=True).id
    engine.wait_container(vol_cid)
    (vol,) = engine.volumes()
    assert vol.anonymous
    engine.remove_container(vol_cid, volumes=True)
    assert engine.volumes() == []


def test_memory_hog_is_oom_killed(engine) -> None:
    hog = "head -c 200m /dev/zero | tail > /dev/null"
    code, _ = out(engine, "sh", "-c", hog, name="hog", memory="16m")
    detail = engine.inspect_container("hog")
    assert detail.state["OOMKilled"] is True
    assert code != 0


def test_fork_bomb_stops_at_the_pids_limit(engine) -> None:
    script = "for i in $(seq 30); do sleep 5 & done 2>&1 | head -1; echo done"
    code, text = out(engine, "sh", "-c", script, pids_limit=10)
    assert "can't fork" in text or "Resource temporarily unavailable" in text
