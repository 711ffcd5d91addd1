"""The layer explorer on a build with whiteouts; %%dockerfile on the real builder: history,
progress rows, errors pinned to the cell line, the context and its warning."""

from __future__ import annotations

import os
from typing import Any

import pytest
from IPython.utils.capture import capture_output
from ipywidgets.widgets.widget import _instances

from ipydock.commands import dockerignore
from ipydock.display.frames import HistoryFrame
from ipydock.display.layers import LayerExplorer, LayerListing
from ipydock.display.progress import BuildProgress
from ipydock.models import BuildEvent
from ipydock.testing import add_step, layer_tar
from tests.conftest import require
from tests.notebook.conftest import frame_records, json_lines, shown


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


@pytest.fixture
def can_run(busybox) -> str:
    require(os.geteuid() == 0, "RUN steps need root")
    return busybox


@pytest.fixture
def context(tmp_path) -> str:
    """A build context with a file to COPY and one that .dockerignore leaves out."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "secret.txt").write_text("secret\n")
    (ctx / ".dockerignore").write_text("secret.txt\n")
    return str(ctx)


def widgets_shown(ip, monkeypatch) -> list[Any]:
    """The widgets the cell displays (found by the model IDs it publishes)."""
    found: list[Any] = []

    def publish(data: dict[str, Any], **kw: Any) -> None:
        view = data.get("application/vnd.jupyter.widget-view+json")
        if view:
            found.append(_instances[view["model_id"]])

    monkeypatch.setattr(ip.display_pub, "publish", publish)
    return found


def test_dockerfile_builds_with_the_real_builder(ip, ipd, can_run, context, monkeypatch) -> None:
    monkeypatch.chdir(context)  # the default context: the notebook's directory
    cell = "FROM busybox\nRUN echo one && echo two > /two\nCOPY hello.txt /\n"
    result, out = shown(ip, f"%%dockerfile -t demo\n{cell}")
    assert result.success, out
    h = result.result
    assert ip.user_ns["_"] is h
    assert isinstance(h, HistoryFrame)
    cli = ipd("image", "history", "demo", "--format", "json").stdout
    assert frame_records(h) == json_lines(cli)
    assert h.attrs["tags"] == ["demo:latest"] and h.attrs["image_id"] == h["id"].iloc[0]
    assert h["created_by"].iloc[0].startswith("/bin/sh -c #(nop) COPY file:")
    assert h["created_by"].iloc[1] == "/bin/sh -c echo one && echo two > /two"
    assert f"Successfully built {h.attrs['image_id']}, tagged demo:latest" in h.text()
    # the terminal's progress: docker build's lines, the RUN output streamed
    assert "Step 2/3 : RUN echo one && echo two > /two\none\n ---> " in out
    assert "Successfully tagged demo:latest" in out
    files = ip.run_line_magic("image", "files demo --layer 2").files
    assert "hello.txt" in set(files["path"]) and "secret.txt" not in set(files["path"])


def test_the_progress_widget_rows_of_a_real_build(ip, can_run, context, monkeypatch) -> None:
    ip.run_line_magic("config", "IPyDock.widgets = 'on'")
    shown_widgets = widgets_shown(ip, monkeypatch)
    cell = "FROM busybox\nRUN echo working\nRUN echo again\n"
    ip.run_cell_magic("dockerfile", f"-t demo --context {context}", cell)
    ip.run_cell_magic("dockerfile", f"-t demo --context {context}", cell.replace("again", "more"))
    first, second = shown_widgets
    assert isinstance(first, BuildProgress) and isinstance(second, BuildProgress)
    heads = [row[0].value for row in first.rows.values()]
    assert ["done" in h for h in heads] == [True, True, True]
    assert "1/3" in heads[0] and "RUN echo working" in heads[1]
    assert "working" in first.rows[2][1].value and first.rows[2][2].layout.display is None
    heads = [row[0].value for row in second.rows.values()]
    assert "cached" in heads[1] and "done" in heads[2] and "RUN echo more" in heads[2]
    assert "Built demo" in second.header.value and "demo:latest" in second.header.value
    failing = "FROM busybox\nRUN echo working\nRUN echo about to fail && exit 3\n"
    with capture_output(display=False):  # the error text; the widget goes to `publish`
        result = ip.run_cell(f"%%dockerfile --context {context}\n{failing}")
    assert result.error_in_exec is not None
    third = shown_widgets[2]
    heads = [row[0].value for row in third.rows.values()]
    assert "cached" in heads[1] and "failed" in heads[2]
    assert "about to fail" in third.rows[3][1].value and third.rows[3][2].selected_index == 0
    assert "failed at step 3" in third.header.value


def test_a_failing_step_points_at_the_cell_line(ip, can_run, context) -> None:
    cell = "FROM busybox\n\nRUN echo about to fail && false\nRUN echo never\n"
    result, out = shown(ip, f"%%dockerfile -t demo --context {context}\n{cell}")
    assert result.error_in_exec is not None
    assert "build failed" in out and "returned a non-zero code: 1" in out
    assert "cell line 4: RUN echo about to fail && false" in out and "| about to fail" in out
    assert "Traceback" not in out and "File " not in out
    assert "Step 2/3 : RUN echo about to fail && false" in out  # text progress in a terminal
    assert ip.run_line_magic("image", "ls --filter reference=demo").empty  # nothing tagged


def test_a_copy_of_an_ignored_file_fails_at_its_line(ip, busybox, context) -> None:
    result, out = shown(ip, f"%%dockerfile -q --context {context}\nFROM busybox\nCOPY secret.txt /")
    assert result.error_in_exec is not None and "Traceback" not in out
    assert "cell line 3: COPY secret.txt /" in out and "secret.txt" in out.splitlines()[0]


def test_a_large_context_warns(ip, busybox, context, monkeypatch) -> None:
    monkeypatch.setattr(dockerignore, "LARGE_CONTEXT", 10)
    result, out = shown(ip, f"%%dockerfile -q --context {context}\nFROM busybox\nENV A=1")
    assert result.success and "[Warning] the context is large; use .dockerignore" in out
    progress = BuildProgress("demo")
    progress.handle(BuildEvent("context", size=4000, text="the context is large"))
    assert "⚠ the context is large (4kB)" in progress.notes.value


def test_progress_rows_from_events() -> None:
    progress = BuildProgress("demo")
    for ev in (
        BuildEvent("step", 1, 2, "FROM busybox", 1),
        BuildEvent("done", 1, 2, image_id="sha256:" + "a" * 64),
        BuildEvent("step", 2, 2, "RUN make", 2),
        BuildEvent("output", 2, 2, line=2, text="compiling"),
        BuildEvent("failed", 2, 2, "RUN make", 2, text="exit 2"),
    ):
        progress.handle(ev)
    heads = [row[0].value for row in progress.rows.values()]
    assert "done" in heads[0] and "1/2" in heads[0] and "aaaaaaaaaaaa" in heads[0]
    assert "failed" in heads[1] and "RUN make" in heads[1]
    out, box = progress.rows[2][1], progress.rows[2][2]
    assert "compiling" in out.value and "exit 2" in out.value and box.selected_index == 0


def test_context_dash_is_refused(ip) -> None:
    result, out = shown(ip, "%%dockerfile --context -\nFROM busybox")
    assert "the context cannot be '-'" in out and "Traceback" not in out
