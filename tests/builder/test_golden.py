"""Golden folders: ``data/<case>/Dockerfile`` (+ ``context/``, ``options``) builds to the image
dumped in ``expected``; ``negative/<case>/Dockerfile`` fails as ``expected`` says (error class
and Dockerfile line), tagging nothing and leaving nothing behind. Adding a case is adding a
folder; ``IPYDOCK_UPDATE_GOLDEN=1`` rewrites the ``expected`` files of the positive cases.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from imagedump import dump_ours  # tests/builder is on sys.path (rootdir mode)

from ipydock import errors
from ipydock.cli.build import parse_build_args

pytestmark = pytest.mark.root

HERE = Path(__file__).parent
CASES = sorted(p.name for p in (HERE / "data").iterdir() if p.is_dir())
NEGATIVE = sorted(p.name for p in (HERE / "negative").iterdir() if p.is_dir())


def _options(case: Path) -> dict:
    words = shlex.split((case / "options").read_text()) if (case / "options").exists() else []
    out: dict = {"build_args": [], "target": ""}
    while words:
        flag = words.pop(0)
        if flag == "--build-arg":
            out["build_args"].append(words.pop(0))
        elif flag == "--target":
            out["target"] = words.pop(0)
        else:
            raise AssertionError(f"{case}/options: unknown flag {flag}")
    return {"build_args": parse_build_args(out["build_args"]), "target": out["target"]}


def _build(builder, case: Path, tmp_path: Path, **kw):
    context = case / "context"
    if not context.is_dir():
        context = tmp_path / "empty-context"
        context.mkdir(exist_ok=True)
    return builder.build(str(context), dockerfile=str(case / "Dockerfile"), **kw)


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name: str, builder, store, tmp_path) -> None:
    case = HERE / "data" / name
    events = []
    result = _build(builder, case, tmp_path, tags=[f"golden/{name}"], progress=events.append,
                    **_options(case))  # fmt: skip
    assert result.tags == [f"golden/{name}:latest"]
    got = dump_ours(store, builder, result.image_id)
    expected = case / "expected"
    if os.environ.get("IPYDOCK_UPDATE_GOLDEN"):
        expected.write_text(got)
    assert got == expected.read_text()
    kinds = [e.kind for e in events]
    assert kinds[0] == "context" and kinds[-1] == "tagged" and "failed" not in kinds
    # A rebuild is a full cache hit and gives the same image.
    events.clear()
    again = _build(builder, case, tmp_path, tags=[f"golden/{name}"], progress=events.append,
                   **_options(case))  # fmt: skip
    assert again.image_id == result.image_id
    froms = [e for e in events if e.kind == "step" and e.instruction.upper().startswith("FROM")]
    assert again.cached == again.steps - len(froms)
    assert not [e for e in events if e.kind == "output"]  # no RUN ran again


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_case(name: str, builder, store, tmp_path) -> None:
    case = HERE / "negative" / name
    want_class, want_line = (case / "expected").read_text().split()
    before = set(store.index().images)
    with pytest.raises(errors.BuildError) as info:
        _build(builder, case, tmp_path, tags=["neg:1"], **_options(case))
    assert type(info.value).__name__ == want_class, str(info.value)
    assert info.value.line == int(want_line), str(info.value)
    assert f"line {want_line}" in str(info.value) or want_line == "0"
    index = store.index()
    assert "docker.io/library/neg:1" not in index.tags
    # Only complete step images may remain (the classic cache), never an untagged final one.
    for image_id in set(index.images) - before:
        assert index.images[image_id].parent or store.config(index.images[image_id])["history"]
