"""Images through the Docker backend, beside the bundled engine: same rows, same columns."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ipydock.display.frames import frame
from ipydock.docker import DockerBackend
from ipydock.errors import (
    BuildStepFailed,
    EngineUnavailable,
    ImageNotFound,
    NotSupported,
)
from ipydock.models import HistoryRow, ImageInfo
from tests.docker_backend.conftest import BUSYBOX

pytestmark = [pytest.mark.docker, pytest.mark.root]

DOCKERFILE = f"""\
FROM {BUSYBOX}
RUN echo hello | tee /hello
ENV A=1
CMD ["cat", "/hello"]
"""


def test_image_ls_rows_match_the_bundled_engine(engine, bundled) -> None:
    ours, theirs = bundled.images(), engine.images()
    assert list(frame(theirs, ImageInfo).columns) == list(frame(ours, ImageInfo).columns)
    pick = [(r.repository, r.tag, r.size, r.digest) for r in theirs]
    if engine.name == "podman":  # an imported image has a manifest digest there, and its size
        pick = [(r.repository, r.tag) for r in theirs]  # counts the config too (README)
        assert pick == [(r.repository, r.tag) for r in ours] and theirs[0].digest.startswith(
            "sha256:")  # fmt: skip
    else:
        assert pick == [(r.repository, r.tag, r.size, r.digest) for r in ours]
    assert theirs[0].id.startswith("sha256:") and theirs[0].created is not None
    assert engine.images(filters=["dangling=true"]) == []


def test_history_and_inspect_match_the_bundled_engine(engine, bundled) -> None:
    ours, theirs = bundled.history(BUSYBOX), engine.history(BUSYBOX)
    assert list(frame(theirs, HistoryRow).columns) == list(frame(ours, HistoryRow).columns)
    keys = [(r.created_by, r.size, r.comment, r.empty_layer) for r in theirs]
    if engine.name == "podman":  # an import is an ADD step there, a few bytes more (README)
        ((created_by, size, comment, empty),) = keys
        assert created_by.startswith("/bin/sh -c #(nop) ADD file:") and created_by.endswith(" in /")
        assert (comment, empty) == ("imported from tarball", False) and size > ours[0].size
    else:
        assert keys == [(r.created_by, r.size, r.comment, r.empty_layer) for r in ours]
    detail = engine.inspect_image(BUSYBOX)
    assert detail.config["Cmd"] == ["sh"] == bundled.inspect_image(BUSYBOX).config["Cmd"]
    if engine.name != "podman":
        assert detail.size == bundled.inspect_image(BUSYBOX).size
    assert detail.repo_tags == [f"{BUSYBOX}:latest"]
    assert detail.rootfs["type"] == "layers" and len(detail.rootfs["diff_ids"]) == 1


def test_tag_and_rm_report_what_the_bundled_engine_reports(engine, bundled) -> None:
    for b in (engine, bundled):
        image_id = b.tag(BUSYBOX, "me/bb:1")
        assert image_id == b.inspect_image(BUSYBOX).id
        assert {f"{r.repository}:{r.tag}" for r in b.images()} == {f"{BUSYBOX}:latest", "me/bb:1"}
    events = [engine.remove_image("me/bb:1"), bundled.remove_image("me/bb:1")]
    assert [(e.action, e.target) for e in events[0]] == [("untagged", "me/bb:1")]
    assert events[0] == events[1]
    with pytest.raises(ImageNotFound):
        engine.inspect_image("no/such:image")


def test_save_and_load_round_trip(engine) -> None:
    engine.tag(BUSYBOX, "me/saved:1")
    buf = io.BytesIO()
    engine.save(["me/saved:1"], buf)
    engine.remove_image("me/saved:1")
    buf.seek(0)
    (loaded,) = engine.load(buf)
    assert loaded.id == engine.inspect_image(BUSYBOX).id and loaded.tags == ["me/saved:1"]
    engine.remove_image("me/saved:1")


def test_classic_build_events_match_the_bundled_builder(engine, bundled, tmp_path) -> None:
    """Same Dockerfile, same event kinds and steps; Docker's history text is the classic one."""
    seen: dict[str, list] = {"docker": [], "bundled": []}
    results = {}
    for name, b in (("docker", engine), ("bundled", bundled)):
        results[name] = b.build(str(tmp_path), dockerfile="-", tags=["me/app:1"],
                                stdin=io.BytesIO(DOCKERFILE.encode()),
                                progress=seen[name].append)  # fmt: skip
    kinds = {k: [(e.kind, e.step, e.line) for e in v if e.kind != "output"]
             for k, v in seen.items()}  # fmt: skip
    assert kinds["docker"] == kinds["bundled"]
    for name in ("docker", "bundled"):  # what RUN printed, line by line
        assert [e.text for e in seen[name] if e.kind == "output"] == ["hello"]
    assert results["docker"].tags == results["bundled"].tags == ["me/app:1"]
    assert results["docker"].steps == 4 and results["docker"].cached == 0
    history = [r.created_by for r in engine.history("me/app:1")]
    if engine.name == "podman":  # buildah's history text: `CMD ["cat", "/hello"]`, one space
        assert len(history) == len(bundled.history("me/app:1")) and history[0].endswith(
            '#(nop) CMD ["cat", "/hello"]')  # fmt: skip
    else:
        assert history == [r.created_by for r in bundled.history("me/app:1")]
    # Built again: every step from the cache, as in the bundled engine.
    again: list = []
    cached = engine.build(str(tmp_path), dockerfile="-", tags=["me/app:1"],
                          stdin=io.BytesIO(DOCKERFILE.encode()), progress=again.append)  # fmt: skip
    assert cached.image_id == results["docker"].image_id and cached.cached == 3
    assert [e.kind for e in again].count("cached") == 3
    assert [e.kind for e in again].count("done") == 4
    engine.remove_image("me/app:1")
    if engine.name == "podman":  # its build keeps each step's image untagged: dangling now
        engine.prune_images()


def test_a_failing_step_names_its_line(engine, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\n\nRUN echo bad && false\n")
    events: list = []
    with pytest.raises(BuildStepFailed) as err:
        engine.build(str(tmp_path), progress=events.append)
    assert err.value.line == 3 and err.value.exit_code == 1
    assert err.value.last_lines == ["bad"]
    assert events[-1].kind == "failed"
    engine.prune_containers()  # the classic builder keeps the failed step's container


def test_what_docker_cannot_do_says_what_to_use(engine, tmp_path) -> None:
    with pytest.raises(NotSupported, match="engine bundled"):
        engine.check()
    with pytest.raises(NotSupported, match="--reproducible"):
        engine.build(str(tmp_path), reproducible=True)


def test_an_unreachable_daemon_is_one_clear_error(tmp_path, monkeypatch) -> None:
    with pytest.raises(EngineUnavailable) as err:
        DockerBackend(f"unix://{tmp_path}/nothing.sock")
    assert "nothing.sock" in str(err.value) and "DOCKER_HOST" in str(err.value)
    assert "\n" not in str(err.value)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/env.sock")
    from ipydock import backends

    with pytest.raises(EngineUnavailable, match="env.sock"):
        backends.connect("docker")


def test_dockerignore_is_read_the_same_by_both_engines(engine, bundled, tmp_path) -> None:
    """One .dockerignore matcher: the tar the Docker backend sends keeps what the bundled
    builder keeps (and the Dockerfile and .dockerignore, even when they are listed)."""
    import shutil

    context = tmp_path / "ctx"
    shutil.copytree(Path(__file__).parents[1] / "builder/data/dockerignore/context", context)
    (context / ".dockerignore").write_text(
        (context / ".dockerignore").read_text() + "Dockerfile\n.dockerignore\n"
    )
    (context / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY . /ctx/\nRUN find /ctx | sort\n")
    seen: dict[str, list[str]] = {}
    for name, b in (("docker", engine), ("bundled", bundled)):
        events: list = []
        b.build(str(context), tags=["me/ignored:1"], progress=events.append)
        seen[name] = [e.text for e in events if e.kind == "output"]
        b.remove_image("me/ignored:1")
    assert seen["docker"] == seen["bundled"]
    assert "/ctx/main.txt" in seen["docker"] and "/ctx/debug.log" not in seen["docker"]


def test_the_layer_explorer_gives_the_bundled_engines_rows(engine, bundled, tmp_path) -> None:
    """`image files` on docker reads the image's own layer tars (docker save) and walks them as
    the bundled engine walks its blobs: the same entries, changes and wasted bytes."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN mkdir /d && echo one > /d/a && echo two > /d/b\n"
        "RUN rm /d/a && echo changed > /d/b\n"
    )
    rows = {}
    for key, b in (("docker", engine), ("bundled", bundled)):
        image = b.build(str(tmp_path), tags=["explore:1"]).image_id
        rows[key] = [[(f.path, f.change, f.type, f.size, f.wasted) for f in layer.files
                      if f.path.startswith("d")] for layer in b.image_layers(image)]  # fmt: skip
    try:
        assert rows["docker"][-2:] == rows["bundled"][-2:]
        assert rows["docker"][-1] == [("d", "C", "dir", 0, 0), ("d/a", "D", "file", 0, 0),
                                      ("d/b", "C", "file", 8, 0)]  # fmt: skip
        assert ("d/a", "A", "file", 4, 4) in rows["docker"][-2]  # deleted later: wasted
    finally:
        engine.remove_image("explore:1")
        if engine.name == "podman":  # its build keeps each step's image untagged
            engine.prune_images()
