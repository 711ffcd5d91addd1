"""``image bootstrap`` end to end with the real mmdebstrap: as root, as an ordinary user with a
subuid range (unshare mode), through the CLI and the magic, and its failures."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from typing import Any

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.errors import BootstrapFailed
from ipydock.models import RunOptions
from tests.bootstrap.conftest import EPOCH, TINY, Bootstrapped, need_mmdebstrap
from tests.rootless.conftest import NOBODY, as_user


@pytest.mark.slow
def test_a_minbase_root_is_a_one_layer_image_with_docker_like_history(
    minbase: Bootstrapped,
) -> None:
    b = minbase.backend
    (row,) = b.history("deb:minbase")
    assert row.created_by == "bootstrap bookworm minbase +python3-minimal"
    assert row.size > 100_000_000
    detail = b.inspect_image("deb:minbase")
    assert detail.config.get("Cmd") == ["bash"]
    assert detail.created is not None and detail.created.timestamp() == int(EPOCH)
    out: list[str] = []
    script = "python3 -c 'print(6*7)'; cat /etc/debian_version"
    opts = RunOptions("deb:minbase", ("sh", "-c", script), auto_remove=True, network="none")
    result = b.run(opts, output=lambda _s, text: out.append(text))
    lines = "".join(out).split("\n")
    assert result.exit_code == 0 and lines[0] == "42" and lines[1].startswith("12.")
    (diff_id,) = detail.rootfs["diff_ids"]
    with tarfile.open(b.store.blobs.path(diff_id)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert "dev" in members and not [n for n in members if n.startswith("dev/")]  # no nodes
    assert members["etc/resolv.conf"].size == members["etc/hostname"].size == 0  # not the host's
    steps = [e.status for e in minbase.events if e.id == "mmdebstrap"]
    assert "running apt-get update..." in steps and "installing essential packages..." in steps
    assert steps[-1] == "Bootstrap complete" and "Extracting" in steps


@pytest.mark.slow
def test_an_ordinary_user_bootstraps_the_same_image_id(
    minbase: Bootstrapped, ranged_user: tuple[int, str]
) -> None:
    """mmdebstrap's unshare mode as a user with a subuid range, same SOURCE_DATE_EPOCH and
    the same mirror content (minutes apart): the image ID root got."""
    uid, home = ranged_user

    def work() -> dict[str, Any]:
        os.environ["SOURCE_DATE_EPOCH"] = EPOCH
        backend = BundledBackend(Store(os.path.join(home, "boot-store")), warm=False)
        image_id = backend.bootstrap("deb:minbase", include=["python3-minimal"])
        out: list[str] = []
        opts = RunOptions("deb:minbase", ("python3", "-c", "print(6*7)"), auto_remove=True)
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        return {"id": image_id, "run": [code, "".join(out).strip()]}

    found = as_user(uid, work)
    assert found["run"] == [0, "42"]
    assert found["id"] == minbase.image_id


def test_the_cli_prints_the_steps_and_the_image_id(tmp_path) -> None:
    need_mmdebstrap()
    root = str(tmp_path / "store")
    proc = subprocess.run(
        [sys.executable, "-m", "ipydock", "--root", root, "image", "bootstrap",
         "--variant", TINY["variant"], "--include", TINY["include"][0], "tiny"],
        capture_output=True, text=True, env={**os.environ, "IPYDOCK_SERVER": "0"}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "bootstrap bookworm extract +busybox-static"
    assert "mmdebstrap: downloading packages with apt..." in lines
    assert lines[-2] == "mmdebstrap: Bootstrap complete"
    assert lines[-1].startswith("sha256:")
    b = BundledBackend(Store(root), warm=False)
    out: list[str] = []
    opts = RunOptions("tiny", ("/bin/busybox", "echo", "hi"), auto_remove=True, network="none")
    assert b.run(opts, output=lambda _s, text: out.append(text)).exit_code == 0
    assert "".join(out) == "hi\n"


def test_a_suite_that_does_not_exist_is_one_error(
    backend: BundledBackend, empty_mirror: str
) -> None:
    need_mmdebstrap()
    with pytest.raises(BootstrapFailed) as err:
        backend.bootstrap("x", suite="nosuchsuite", mirror=empty_mirror)
    assert err.value.kind == "suite"
    assert str(err.value) == (
        f"image bootstrap nosuchsuite: suite 'nosuchsuite' does not exist at {empty_mirror} "
        "(check the codename: bookworm, trixie, jammy…)"
    )
    assert backend.images() == [] and os.listdir(backend.store.tmp_dir) == []


def test_a_mirror_that_does_not_answer_is_one_error(tmp_path, dead_mirror: str) -> None:
    need_mmdebstrap()
    proc = subprocess.run(
        [sys.executable, "-m", "ipydock", "--root", str(tmp_path / "s"), "image", "bootstrap",
         "-q", "--mirror", dead_mirror, "x"],
        capture_output=True, text=True, env={**os.environ, "IPYDOCK_SERVER": "0"}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"Error: image bootstrap bookworm: the mirror {dead_mirror} does "
                           "not answer (Failed to fetch")  # fmt: skip
    assert "check --mirror and the network" in line


def test_a_user_without_an_id_range_is_told_what_to_ask_for(nobody_dir: str) -> None:
    need_mmdebstrap()

    def work() -> dict[str, Any]:
        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        try:
            backend.bootstrap("deb")
        except BootstrapFailed as exc:
            return {"kind": exc.kind, "text": str(exc), "images": len(backend.images())}
        return {"kind": "none"}

    found = as_user(NOBODY, work)
    assert found["kind"] == "setup" and found["images"] == 0
    assert "needs a subordinate id range for nobody in /etc/subuid" in found["text"]
    assert "usermod --add-subuids" in found["text"]


def test_a_reader_that_fails_stops_mmdebstrap_and_keeps_its_own_error(monkeypatch) -> None:
    """A full disk (here: an error of the reader) is the news, not mmdebstrap's SIGTERM."""
    need_mmdebstrap()
    from ipydock.commands import bootstrap as mmdebstrap

    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    def popen(*args: Any, **kw: Any) -> subprocess.Popen:
        started.append(real(*args, **kw))
        return started[-1]

    monkeypatch.setattr(mmdebstrap.subprocess, "Popen", popen)
    spec = mmdebstrap.BootstrapSpec(variant=TINY["variant"], include=tuple(TINY["include"]))
    with pytest.raises(OSError, match="reader gave up"), mmdebstrap.run(spec) as stream:
        assert stream.read(512)  # the tar has begun
        raise OSError("reader gave up")
    (proc,) = started
    assert proc.returncode is not None  # waited for: no process left behind
