"""The concepts of the notes, checked on both engines with the same calls (see conftest)."""

from __future__ import annotations

import io
import tempfile

import pytest

from ipydock.errors import (
    ContainerRunning,
    ImageHasChildren,
    ImageInUse,
    ImageMultiplyReferenced,
    ImageNotFound,
    VolumeInUse,
)
from ipydock.models import RunOptions
from tests.conformance.conftest import BUSYBOX

pytestmark = [pytest.mark.root, pytest.mark.docker]


def build(engine, text: str, tag: str = "conf/app:1", context: str | None = None):  # noqa: ANN001
    events: list = []
    with tempfile.TemporaryDirectory() as empty:
        result = engine.build(context or empty, dockerfile="-", tags=[tag],
                              stdin=io.BytesIO(text.encode()), progress=events.append)  # fmt: skip
    return result, events


def output(engine, *command: str, **flags) -> tuple[int, str]:  # noqa: ANN001
    """Exit code and stdout (stderr after it: two pipes have no order between them)."""
    seen: dict[str, list[str]] = {"stdout": [], "stderr": []}
    result = engine.run(RunOptions(BUSYBOX, command, auto_remove=True, **flags),
                        output=lambda s, t: seen[s].append(t))  # fmt: skip
    return int(result.exit_code or 0), "".join(seen["stdout"] + seen["stderr"])


def test_history_has_one_row_per_step_with_the_bytes_each_added(engine) -> None:
    result, events = build(engine, f"FROM {BUSYBOX}\nRUN head -c 3000 /dev/zero > /f\n"
                                   "ENV A=1\nRUN rm /f\n")  # fmt: skip
    rows = engine.history(result.image_id)
    nop = "#(nop) " if engine.name == "podman" else "#(nop)  "  # buildah's text: one space
    assert [r.created_by for r in rows[:3]] == [
        "/bin/sh -c rm /f", f"/bin/sh -c {nop}ENV A=1", "/bin/sh -c head -c 3000 /dev/zero > /f",
    ]  # fmt: skip
    assert rows[2].size >= 3000 and rows[1].size == 0
    # a whiteout: no bytes on docker; Podman counts the layer tar's (its blocks: 2048)
    assert rows[0].size == (2048 if engine.name == "podman" else 0)
    assert [e.kind for e in events].count("step") == 4
    engine.remove_image("conf/app:1")


def test_a_rebuild_with_the_same_tag_leaves_the_old_image_dangling(engine) -> None:
    first, _ = build(engine, f"FROM {BUSYBOX}\nRUN echo one > /v\n")
    second, _ = build(engine, f"FROM {BUSYBOX}\nRUN echo two > /v\n")
    dangling = {i.id for i in engine.images(filters=["dangling=true"])}
    assert first.image_id in dangling and second.image_id not in dangling
    pruned = engine.prune_images()
    assert any(first.image_id.endswith(e.target.split(":")[-1]) for e in pruned.deleted
               if e.action == "deleted")  # fmt: skip
    assert first.image_id not in {i.id for i in engine.images(all=True)}
    engine.remove_image("conf/app:1")


def test_rm_refusals_are_typed_errors(engine) -> None:
    parent, _ = build(engine, f"FROM {BUSYBOX}\nRUN echo p > /p\n", tag="conf/parent:1")
    build(engine, "FROM conf/parent:1\nRUN echo c > /c\n", tag="conf/child:1")
    engine.remove_image("conf/parent:1")  # untag: the child keeps the image
    if engine.name == "podman":  # no parent chain there: the last untag deletes it (the
        with pytest.raises(ImageNotFound):  # child keeps the layers), as docs/engines.md says
            engine.remove_image(parent.image_id)
    else:
        with pytest.raises(ImageHasChildren):
            engine.remove_image(parent.image_id)
    engine.tag("conf/child:1", "conf/other:1")
    with pytest.raises(ImageMultiplyReferenced):
        engine.remove_image(engine.inspect_image("conf/child:1").id)
    engine.remove_image("conf/other:1")
    cid = engine.create_container(RunOptions("conf/child:1", ("true",)))
    with pytest.raises(ImageInUse) as err:
        engine.remove_image(engine.inspect_image("conf/child:1").id)
    assert cid.startswith(err.value.container_ids[0]) and not err.value.running
    engine.remove_container(cid)
    engine.remove_image("conf/child:1")


def test_run_exec_logs_and_the_running_container_refusal(engine) -> None:
    assert output(engine, "sh", "-c", "echo out; echo err >&2; exit 3") == (3, "out\nerr\n")
    cid = engine.run(RunOptions(BUSYBOX, ("sh", "-c", "echo up; sleep 60")), detach=True).id
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        assert engine.exec(cid, ["cat", "/etc/hostname"], stdout=out, stderr=err) == 0
        out.seek(0)
        assert out.read().decode().strip() == cid[:12]
    with pytest.raises(ContainerRunning):
        engine.remove_container(cid)
    engine.kill_container(cid)
    assert engine.wait_container(cid) == 137
    assert [e.text for e in engine.logs(cid)] == ["up\n"]
    engine.remove_container(cid)


def test_a_named_volume_outlives_its_containers_and_refuses_rm_while_used(engine) -> None:
    engine.create_volume("conf-data")
    assert output(engine, "sh", "-c", "echo kept > /data/f", volumes=("conf-data:/data",))[0] == 0
    assert output(engine, "cat", "/data/f", volumes=("conf-data:/data",)) == (0, "kept\n")
    cid = engine.create_container(RunOptions(BUSYBOX, ("true",), volumes=("conf-data:/data",)))
    with pytest.raises(VolumeInUse):
        engine.remove_volume("conf-data")
    engine.remove_container(cid)
    engine.remove_volume("conf-data")
    assert "conf-data" not in {v.name for v in engine.volumes()}
