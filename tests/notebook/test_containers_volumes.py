"""Containers and volumes through the magics (real containers, a real InteractiveShell), and the
same operations from plain Python (``ipydock.dock``)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest

from ipydock import dock
from ipydock.display.containers import ContainerList, ContainersFrame, LogText
from ipydock.display.frames import HistoryFrame
from ipydock.display.volumes import VolumeFilesFrame
from ipydock.engine.runtime import cgroups
from ipydock.models import RunOutput
from tests.conftest import require
from tests.containers.conftest import leftovers
from tests.notebook.conftest import frame_records, json_lines, shown

_counter = itertools.count()


@pytest.fixture
def engine(ip, busybox, root: str) -> Iterator[Any]:
    """The magics' own backend on the test's store; afterwards no container, supervisor, cgroup
    or mount of this store is left."""
    require(os.geteuid() == 0, "containers need root")
    parent = f"ipydock-nbtest-{os.getpid()}-{next(_counter)}"
    os.environ["IPYDOCK_CGROUP_PARENT"] = parent
    magics = ip.find_line_magic("container").__self__
    try:
        yield magics.backend
        backend = magics.backend
        for row in backend.containers(all=True):
            backend.remove_container(row.id, force=True, volumes=True)
        magics.close()
        assert leftovers(root, parent) == []
    finally:
        magics.close()
        cgroups.remove_parent(parent)
        del os.environ["IPYDOCK_CGROUP_PARENT"]


def without_status_text(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "status_text"} for r in records]


def test_run_returns_the_output_with_its_exit_code(ip, engine) -> None:
    out = ip.run_line_magic("container", "run --rm busybox echo hello")
    assert isinstance(out, RunOutput) and out == "hello\n" and out.exit_code == 0
    out = ip.run_line_magic("container", "run busybox sh -c 'echo out; echo err >&2; exit 3'")
    assert out.exit_code == 3 and out.stdout == "out\n" and out.stderr == "err\n"
    assert "out\n" in out and out.id == ip.run_line_magic("container", "ls -a")["id"].iloc[0]


def test_detached_run_ls_logs_and_the_container_object(ip, ipd, engine) -> None:
    web = ip.run_line_magic("container", "run -d --name web busybox sh -c 'echo up; sleep 60'")
    assert isinstance(web, dock.Container) and web.name == "web"
    df = ip.run_line_magic("container", "ls")
    assert isinstance(df, ContainersFrame) and df["name"].tolist() == ["web"]
    cli = json_lines(ipd("container", "ls", "--format", "json").stdout)
    assert list(df.columns) == list(cli[0])
    assert without_status_text(frame_records(df)) == without_status_text(cli)
    assert "web" in df.text() and "ipydock-containers" in df._repr_html_()
    assert ip.run_line_magic("container", f"inspect {web.id}")["name"].lstrip("/") == "web"
    web.stop(timeout=0)
    assert web.wait() == 137  # sh as pid 1 ignores SIGTERM: killed
    logs = ip.run_line_magic("container", "logs web")
    assert isinstance(logs, LogText) and logs == "up\n"
    assert ip.run_line_magic("container", "ls").empty
    assert list(ip.run_line_magic("container", "ls").columns) == list(cli[0])


def test_logs_follow_streams_into_the_cell(ip, engine) -> None:
    ip.run_line_magic("container", "run -d --name talk busybox sh -c 'echo one; echo two >&2'")
    result, out = shown(ip, "%container logs -f talk")
    assert result.success and result.result is None
    assert "one\n" in out and "two\n" in out  # streamed to stdout / stderr, until it exited


def test_the_container_list_widget_stops_and_removes(ip, engine) -> None:
    ip.run_line_magic("container", "run -d --name w1 --stop-signal KILL busybox sleep 60")
    ip.run_line_magic("container", "run --name w2 busybox true")
    panel = dock.container_list(backend=engine)
    assert isinstance(panel, ContainerList) and sorted(panel.frame["name"]) == ["w1", "w2"]
    ids = dict(zip(panel.frame["name"], panel.frame["id"], strict=True))
    assert panel.buttons[ids["w1"]]["remove"].disabled  # running: stop first
    assert not panel.buttons[ids["w2"]]["remove"].disabled
    panel.buttons[ids["w1"]]["stop"].click()
    assert "stop" in panel.message.value
    status = dict(zip(panel.frame["name"], panel.frame["status"], strict=True))
    assert status["w1"] == "exited"
    panel.buttons[ids["w2"]]["remove"].click()
    assert panel.frame["name"].tolist() == ["w1"]
    engine.remove_container(ids["w1"])
    panel.buttons[ids["w1"]]["remove"].click()  # gone already: the message says so
    assert "No such container" in panel.message.value or "not found" in panel.message.value


def test_container_ls_in_a_notebook_is_the_frame_drawn_as_the_list_widget(ip, engine) -> None:
    ip.run_line_magic("config", "IPyDock.widgets = 'on'")
    ip.run_line_magic("container", "run --name done1 busybox true")
    listed = ip.run_line_magic("container", "ls -a")
    assert isinstance(listed, ContainersFrame) and listed["name"].tolist() == ["done1"]
    bundle = listed._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # drawn with buttons
    assert "_ipydock_list" not in listed[listed.status == "exited"].__dict__  # a derived table
    panel = listed.__dict__["_ipydock_list"]()
    [cid] = listed["id"]
    panel.buttons[cid]["remove"].click()  # the buttons act on the magics' engine
    assert engine.containers(all=True) == [] and "remove" in panel.message.value


def test_a_kernel_that_cannot_run_containers_says_what_to_do(ip, busybox, monkeypatch) -> None:
    """Pure logic of the refusal: the machine here can run containers, so the probe's
    answer is replaced by what an unprivileged user without user namespaces gets."""
    from ipydock.engine.runtime import rootless

    reason = "uid 1000 is not root and user namespaces do not work (disabled)"
    monkeypatch.setattr(rootless, "runtime_mode", lambda: ("none", reason))
    result, out = shown(ip, "%container run --rm busybox true")
    assert result.result is None and "Traceback" not in out
    [line] = out.strip().splitlines()
    assert "cannot run containers" in line and reason in line and "%ipydock engine docker" in line
    magics = ip.find_line_magic("container").__self__
    assert magics.backend.containers(all=True) == []  # nothing half made
    assert ip.run_line_magic("image", "ls")["repository"].tolist() == ["busybox"]  # still works


def test_volume_files_of_a_volume_a_container_wrote(ip, ipd, engine) -> None:
    script = (
        "mkdir -p /data/sub && echo hello > /data/sub/a.txt && "
        "head -c 5000 /dev/zero > /data/big && ln -s /etc/passwd /data/link"
    )
    out = ip.run_line_magic("container", f"run --rm -v data:/data busybox sh -c '{script}'")
    assert out.exit_code == 0, out
    files = ip.run_line_magic("volume", "files data")
    assert isinstance(files, VolumeFilesFrame)
    assert list(files.columns)[:5] == ["path", "type", "size", "mode", "mtime"]
    cli = ipd("volume", "files", "data", "--format", "json").stdout
    assert frame_records(files) == json_lines(cli)
    assert files.set_index("path")["type"].to_dict() == {
        "/": "dir", "/big": "file", "/link": "symlink", "/sub": "dir", "/sub/a.txt": "file",
    }  # fmt: skip
    assert files.previews == {"/sub/a.txt": "hello\n"}  # not the big file, not the link
    html = files._repr_html_()
    assert "<details open><summary><b>sub/</b>" in html and "hello" in html
    assert "→ /etc/passwd" in html and "/sub/a.txt" in files.text()
    vols = ip.run_line_magic("volume", "ls")
    assert vols["name"].tolist() == ["data"]


def test_plain_python_functions(engine, busybox, tmp_path) -> None:
    h = dock.build("FROM busybox\nENV A=1\n", str(tmp_path), tags=["py"], backend=engine)
    assert isinstance(h, HistoryFrame) and h.attrs["tags"] == ["py:latest"]
    assert "py" in set(dock.images(backend=engine)["repository"])
    out = dock.run("py", "sh", "-c", "echo $A", auto_remove=True, backend=engine)
    assert out == "1\n" and out.exit_code == 0
    c = dock.run("py", "sh", "-c", "echo bg", detach=True, backend=engine)
    assert isinstance(c, dock.Container) and c.wait() == 0 and c.logs() == "bg\n"
    assert dock.containers(all=True, backend=engine)["id"].tolist() == [c.id]
    c.remove()
    assert dock.containers(all=True, backend=engine).empty
    assert dock.volumes(backend=engine).empty
