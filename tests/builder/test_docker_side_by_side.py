"""The golden Dockerfiles built by the real ``docker build`` (20.10, legacy builder) and by us:
layer count, history created_by and sizes, files and whiteouts per layer, config, and the cache
hits of a rebuild must agree. COPY/ADD hashes differ by design (Docker's tarsum vs ours) and
print as ``<hash>`` in both dumps.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import tarfile
from pathlib import Path

import pytest
from imagedump import dump, dump_ours

pytestmark = [pytest.mark.docker, pytest.mark.root]

HERE = Path(__file__).parent
#: Golden cases the classic builder can build (no heredocs, no --chmod).
CASES = [
    "add_archives",
    "build_args",
    "copy_rules",
    "dockerignore",
    "metadata",
    "multistage",
    "run_whiteouts",
]


@pytest.fixture(scope="module")
def docker_busybox(dockerd, busybox_tgz):
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "busybox")
    yield
    dockerd.run("rmi", "-f", "busybox", check=False)


def _context(case: Path, tmp_path: Path) -> Path:
    """The case's context with its Dockerfile inside (with ``-f`` pointing outside, the docker
    CLI smuggles the Dockerfile in and edits .dockerignore, which would differ)."""
    context = tmp_path / "context"
    if not context.exists():
        if (case / "context").is_dir():
            shutil.copytree(case / "context", context, symlinks=True)
        else:
            context.mkdir()
        shutil.copy(case / "Dockerfile", context / "Dockerfile")
    return context


def _docker_build(dockerd, case: Path, tag: str, tmp_path: Path) -> str:
    opts = shlex.split((case / "options").read_text()) if (case / "options").exists() else []
    proc = dockerd.run("build", "-t", tag, *opts, str(_context(case, tmp_path)))
    return proc.stdout.decode()


def _docker_dump(dockerd, tag: str) -> str:
    saved = dockerd.run("save", tag).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        layers = [
            tarfile.open(fileobj=io.BytesIO(outer.extractfile(name).read()))  # type: ignore[union-attr]  # noqa: SIM115
            for name in manifest["Layers"]
        ]
    sizes = _docker_sizes(dockerd, tag)
    tars = [
        t for h, t in zip(_layered(config["history"]), layers, strict=True) if h.get("created_by")
    ]
    return dump(config["history"], sizes, config["config"], tars)


def _layered(history: list[dict]) -> list[dict]:
    return [h for h in history if not h.get("empty_layer")]


def _docker_sizes(dockerd, tag: str) -> list[int]:
    import docker

    client = docker.DockerClient(base_url=dockerd.host)
    try:
        return [h["Size"] for h in reversed(client.api.history(tag))]
    finally:
        client.close()


def _steps_cached(output: str) -> int:
    return len(re.findall(r"^ ---> Using cache$", output, re.M))


@pytest.mark.parametrize("name", CASES)
def test_same_image_as_docker_build(name, dockerd, docker_busybox, builder, store, tmp_path):
    case = HERE / "data" / name
    tag = f"side/{name}:1"
    first = _docker_build(dockerd, case, tag, tmp_path)
    try:
        theirs = _docker_dump(dockerd, tag)
        again = _docker_build(dockerd, case, tag, tmp_path)
    finally:
        dockerd.run("rmi", "-f", tag, check=False)
    from test_golden import _options

    context = str(_context(case, tmp_path))
    result = builder.build(context, tags=[tag], **_options(case))
    ours = dump_ours(store, builder, result.image_id)
    assert ours == theirs, _show_diff(ours, theirs)
    rebuilt = builder.build(context, tags=[tag], **_options(case))
    assert rebuilt.cached == _steps_cached(again)
    assert _steps_cached(first) == 0


def _show_diff(ours: str, theirs: str) -> str:
    import difflib

    return "\n".join(
        difflib.unified_diff(theirs.splitlines(), ours.splitlines(), "docker", "ours", lineterm="")
    )


def test_a_tar_context_keeps_what_dockerignore_lists_as_docker_does(
    dockerd, docker_busybox, builder, tmp_path
) -> None:
    """Nobody filters a tar context: .dockerignore removes only itself and the Dockerfile."""
    import tarfile

    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\nRUN find /ctx | sort\n")
    (src / ".dockerignore").write_text("secret.txt\nDockerfile\n.dockerignore\n")
    (src / "secret.txt").write_text("sent anyway\n")
    (src / "main.txt").write_text("main\n")
    tar = tmp_path / "ctx.tar"
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("Dockerfile", ".dockerignore", "secret.txt", "main.txt"):
            tf.add(src / name, arcname=name)
    docker = dockerd.run(
        "build", "--no-cache", "-t", "tarctx", "-", input=tar.read_bytes(), check=False
    )
    assert docker.returncode == 0, docker.stderr.decode()
    listed = [ln for ln in docker.stdout.decode().splitlines() if ln.startswith("/ctx")]
    dockerd.run("rmi", "tarctx")
    events: list = []
    builder.build(str(tar), tags=["tarctx"], progress=events.append)
    ours = [e.text for e in events if e.kind == "output"]
    assert ours == listed
    assert "/ctx/secret.txt" in ours and "/ctx/Dockerfile" not in ours
