"""Side by side with a real dockerd (Debian's docker.io 20.10, legacy builder) and skopeo."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import docker
import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.testing import Dockerd, add_step

pytestmark = pytest.mark.docker

DOCKERFILE = """\
FROM ipydock-test/busybox
RUN echo hello > /hello && mkdir -p /d/e && echo x > /d/e/x && echo y > /y
RUN rm /etc/group && rm -r /d && echo more >> /y
ENV A=1
CMD ["sh", "-c", "cat /hello"]
"""


@pytest.fixture(scope="module")
def built(dockerd: Dockerd, busybox_tgz: str, tmp_path_factory) -> dict:
    """An image built by `docker build` (legacy builder) on the busybox test image."""
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "ipydock-test/busybox")
    ctx = tmp_path_factory.mktemp("ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    dockerd.run("build", "-q", "-t", "ipydock-test/app:1", str(ctx))
    client = docker.DockerClient(base_url=dockerd.host)
    try:
        yield {
            "client": client,
            "id": client.images.get("ipydock-test/app:1").id,
            "history": client.api.history("ipydock-test/app:1"),
            "size": client.images.get("ipydock-test/app:1").attrs["Size"],
        }
    finally:
        client.close()
        dockerd.run("rmi", "-f", "ipydock-test/app:1", "ipydock-test/busybox", check=False)


def test_we_load_what_docker_save_writes(built, dockerd, backend, store, tmp_path) -> None:
    out = tmp_path / "app.tar"
    dockerd.run("save", "-o", str(out), "ipydock-test/app:1")
    (loaded,) = backend.load(str(out))
    assert loaded.id == built["id"]
    assert loaded.tags == ["ipydock-test/app:1"]
    ours = backend.history("ipydock-test/app:1")
    theirs = built["history"]
    assert [r.created_by for r in ours] == [h["CreatedBy"] for h in theirs]
    assert [r.size for r in ours] == [h["Size"] for h in theirs]
    assert [r.comment for r in ours] == [h["Comment"] for h in theirs]
    # docker load keeps no parent chain: only the top row has an ID, in both engines.
    assert [r.id for r in ours] == [built["id"]] + ["<missing>"] * (len(ours) - 1)
    assert backend.inspect_image("ipydock-test/app:1").size == built["size"]
    detail = backend.inspect_image("ipydock-test/app:1")
    assert "A=1" in detail.config["Env"]
    assert detail.config["Cmd"] == ["sh", "-c", "cat /hello"]
    # The `RUN rm` layer holds whiteouts for /etc/group and /d.
    chain = store.layer_chain(store.resolve("ipydock-test/app:1"))
    if store.layers.driver.name == "overlay":
        snap = store.layers.snapshot(chain[2].chain_id)
        for path in ("etc/group", "d"):
            st = os.lstat(os.path.join(snap, path))
            assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, path


def test_we_load_gzipped_docker_save_from_stdin(built, dockerd, backend) -> None:
    saved = dockerd.run("save", "ipydock-test/app:1").stdout
    gz = subprocess.run(["gzip", "-c"], input=saved, capture_output=True, check=True).stdout
    import io

    (loaded,) = backend.load(io.BytesIO(gz))
    assert loaded.id == built["id"]


def test_docker_loads_what_we_save_and_runs_it(dockerd, backend, store, busybox, tmp_path):
    app = add_step(
        store,
        "busybox",
        "/bin/sh -c rm /etc/group && echo hi > /hi",
        layer=_layer_with_whiteout(),
        tags=["ipydock-test/ours:1"],
    )
    out = tmp_path / "ours.tar"
    backend.save(["ipydock-test/ours:1"], str(out))
    try:
        proc = dockerd.run("load", "-i", str(out))
        assert b"Loaded image: ipydock-test/ours:1" in proc.stdout
        inspect = json.loads(dockerd.run("image", "inspect", "ipydock-test/ours:1").stdout)[0]
        assert inspect["Id"] == app
        assert inspect["Size"] == backend.inspect_image(app).size
        run = dockerd.run(
            "run",
            "--rm",
            "--network",
            "none",
            "ipydock-test/ours:1",
            "sh",
            "-c",
            "cat /hi; test -e /etc/group && echo present || echo gone",
        )
        assert run.stdout.decode().split() == ["hi", "gone"]
    finally:
        dockerd.run("rmi", "-f", "ipydock-test/ours:1", check=False)


def test_skopeo_reads_our_store_and_we_load_its_oci_archive(
    skopeo, backend, store, busybox, tmp_path
) -> None:
    ref = f"oci:{store.root}:docker.io/library/busybox:latest"
    info = json.loads(
        subprocess.run(["skopeo", "inspect", "--raw", ref], capture_output=True, check=True).stdout
    )
    assert info["config"]["digest"] == busybox
    archive = tmp_path / "bb-oci.tar"
    subprocess.run(
        ["skopeo", "copy", "-q", ref, f"oci-archive:{archive}:localhost/bb:oci"],
        check=True,
        capture_output=True,
    )
    other = BundledBackend(Store(str(tmp_path / "other")))
    (loaded,) = other.load(str(archive))
    assert loaded.id == busybox
    assert loaded.tags == ["localhost/bb:oci"]


def _layer_with_whiteout() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.addfile(tarfile.TarInfo("etc/.wh.group"), io.BytesIO(b""))
        hi = tarfile.TarInfo("hi")
        hi.size = 3
        hi.mode = 0o644
        tf.addfile(hi, io.BytesIO(b"hi\n"))
    return buf.getvalue()
