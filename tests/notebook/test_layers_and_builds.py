"""The layer explorer on a build with whiteouts, and %%dockerfile's progress through callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ipydock import errors
from ipydock.display.frames import HistoryFrame
from ipydock.display.layers import LayerExplorer, LayerListing
from ipydock.display.progress import BuildProgress
from ipydock.testing import add_step, layer_tar
from tests.notebook.conftest import json_lines, shown


@pytest.fixture
def app(store, busybox) -> str:
    """busybox + a 5000-byte file + a step that deletes it (whiteout) and empties /data/cache
    (opaque directory) + a metadata step."""
    one = add_step(
        store,
        busybox,
        "/bin/sh -c dd if=/dev/zero of=/data/big",
        {"data": None, "data/big": b"x" * 5000, "data/cache": None, "data/cache/a": b"aa"},
    )
    two = add_step(
        store,
        one,
        "/bin/sh -c rm /data/big && rm -rf /data/cache/* && echo hi > /etc/motd",
        layer=layer_tar(
            {
                "data": None,
                "data/.wh.big": b"",
                "data/cache": None,
                "data/cache/.wh..wh..opq": b"",
                "etc": None,
                "etc/motd": b"hi\n",
                "etc/passwd": b"root:x:0:0::/root:/bin/sh\n",
            }
        ),
    )
    return add_step(store, two, "ENV A=1", tags=["app"])


def by_path(rows: list[dict[str, Any]], layer: int) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in rows if r["layer"] == layer}


def test_layer_explorer_data_for_a_build_with_whiteouts(ip, ipd, app) -> None:
    ip.run_line_magic("config", "IPyDock.widgets = 'on'")
    ex = ip.run_line_magic("image", "files app")
    assert isinstance(ex, LayerExplorer)
    assert [layer.created_by for layer in ex.layers][1:] == [
        "/bin/sh -c dd if=/dev/zero of=/data/big",
        "/bin/sh -c rm /data/big && rm -rf /data/cache/* && echo hi > /etc/motd",
    ]
    rows = ex.files.to_dict("records")
    assert rows == json_lines(ipd("image", "files", "app", "--format", "json").stdout)
    one, two = by_path(rows, 1), by_path(rows, 2)
    assert (one["data/big"]["change"], one["data/big"]["wasted"]) == ("A", 5000)
    assert (one["data/cache/a"]["change"], one["data/cache/a"]["wasted"]) == ("A", 2)
    assert one["data/cache"]["wasted"] == 0
    assert two["data/big"]["change"] == "D" and two["data/big"]["type"] == "file"
    assert two["data/cache/a"]["change"] == "D"  # hidden by the opaque directory
    assert (two["etc/motd"]["change"], two["etc/passwd"]["change"]) == ("A", "C")
    assert by_path(rows, 0)["etc/passwd"]["wasted"] > 0  # overwritten by layer 2
    assert [layer.wasted for layer in ex.layers][1:] == [5002, 0]
    # the widget: the top layer shown first; picking layer 1 shows its tree
    assert "etc/" not in ex.tree.value or "motd" in ex.tree.value
    ex.picker.value = 1
    assert "big" in ex.tree.value and "4.9kB" not in ex.tree.value
    assert "5kB wasted" in ex.tree.value


def test_layer_listing_as_text_and_one_layer(ip, app) -> None:
    listing = ip.run_line_magic("image", "files app --layer 2")
    assert isinstance(listing, LayerListing)
    text = listing.text()
    assert "  D  ----------       0B  /data/big" in text
    assert "  C  -rw-r--r--      26B  /etc/passwd" in text


@dataclass
class Event:
    kind: str
    step: int
    total: int
    instruction: str
    text: str = ""


class BuildingBackend:
    """The bundled backend plus a ``build`` that reports like the builder and commits steps."""

    def __init__(self, real: Any, store: Any, base: str) -> None:
        self.real, self.store, self.base = real, store, base
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def build(self, context: str, *, progress: Any = None, **kw: Any) -> str:
        self.calls.append({"context": context, **kw})
        steps = [line for line in kw["dockerfile"].splitlines() if line.strip()]
        image = self.base
        for n, line in enumerate(steps, 1):
            progress(Event("step", n, len(steps), line))
            if line.startswith("FROM"):
                progress(Event("cached", n, len(steps), line))
                continue
            if line.startswith("RUN false"):
                progress(Event("output", n, len(steps), line, "about to fail"))
                raise errors.BuildStepFailed(n, line, 1, ["about to fail"])
            progress(Event("output", n, len(steps), line, "working"))
            image = add_step(self.store, image, line, {"out": b"x"}, tags=kw["tags"])
            progress(Event("done", n, len(steps), line))
        return image


@pytest.fixture
def building(ip, backend, store, busybox) -> BuildingBackend:
    fake = BuildingBackend(backend, store, busybox)
    magics = ip.find_cell_magic("dockerfile").__self__
    magics._backend = fake
    return fake


def test_dockerfile_reports_progress_and_returns_history(ip, building, tmp_path) -> None:
    ip.run_line_magic("config", "IPyDock.widgets = 'on'")
    shown_objects: list[Any] = []
    ip.display_pub.publish = lambda data, **kw: shown_objects.append(data)  # type: ignore[method-assign]
    h = ip.run_cell_magic(
        "dockerfile", f"-t demo --context {tmp_path} --build-arg V=1", "FROM busybox\nRUN make\n"
    )
    assert isinstance(h, HistoryFrame) and h["created_by"].iloc[0] == "RUN make"
    (call,) = building.calls
    assert call["context"] == str(tmp_path) and call["tags"] == ["demo"]
    assert call["build_args"] == {"V": "1"} and call["dockerfile"].startswith("FROM busybox")


def test_the_progress_widget_rows(ip) -> None:
    progress = BuildProgress("demo")
    for ev in (
        Event("step", 1, 2, "FROM busybox"),
        Event("cached", 1, 2, "FROM busybox"),
        Event("step", 2, 2, "RUN make"),
        Event("output", 2, 2, "RUN make", "compiling"),
        Event("failed", 2, 2, "RUN make", "exit 2"),
    ):
        progress.handle(ev)
    heads = [row[0].value for row in progress.rows.values()]
    assert "cached" in heads[0] and "1/2" in heads[0]
    assert "failed" in heads[1] and "RUN make" in heads[1]
    out, box = progress.rows[2][1], progress.rows[2][2]
    assert "compiling" in out.value and "exit 2" in out.value and box.selected_index == 0


@pytest.mark.skipif(not hasattr(errors, "BuildStepFailed"), reason="the builder's errors")
def test_a_failing_step_points_at_the_cell_line(ip, building) -> None:
    result, out = shown(ip, "%%dockerfile -t demo\nFROM busybox\nRUN false\n")
    assert result.error_in_exec is not None
    assert "build failed" in out and "cell line 3: RUN false" in out and "| about to fail" in out
    assert "Traceback" not in out
    assert "Step 2/2 : RUN false" in out  # text progress in a terminal shell
