"""A real kernel (ipykernel through nbclient) runs the teaching notebooks; widgets send state."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import require

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "example-notebooks")


def execute(path: str, root: str, cwd: str, **env: str) -> nbformat.NotebookNode:
    """Run the notebook in a kernel whose working directory is ``cwd``; a server a failed
    notebook left running there (its last cell stops it) is stopped too."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": cwd}}
    )
    try:
        client.execute(env={**os.environ, "IPYDOCK_ROOT": root, **env})
    finally:
        stop_processes_in(cwd)
    return nb


def stop_processes_in(cwd: str) -> None:
    """Kill the processes whose working directory is ``cwd`` (a notebook's own servers)."""
    import signal

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            here = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if here == os.path.realpath(cwd) and int(pid) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def outputs(nb: nbformat.NotebookNode, source_start: str) -> list[dict]:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return cell.outputs


@pytest.mark.usefixtures("busybox_tgz")  # skips where busybox-static is missing
def test_layers_notebook_runs_in_a_kernel_with_widgets(root, tmp_path) -> None:
    require(os.geteuid() == 0, "RUN steps: root here (tests/rootless runs it as a user)")
    nb = execute(os.path.join(NOTEBOOKS, "layers-and-whiteouts.ipynb"), root, str(tmp_path))
    for cell in nb.cells:
        assert all(o.output_type != "error" for o in cell.get("outputs", [])), cell.source
    history, account = outputs(nb, "h = %image history app")  # teaching mode: account under it
    assert "hides /data/big with a whiteout" in account.data["text/plain"]
    assert "ipydock-history" in history.data["text/html"]
    explorer = outputs(nb, "explorer = %image files app")[0]
    view = explorer.data["application/vnd.jupyter.widget-view+json"]
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert view["model_id"] in state
    html_values = [m["state"].get("value", "") for m in state.values()]
    assert any("65.5kB wasted" in v and "efficiency" in v for v in html_values)  # the header
    assert any("<s>big</s>" in v for v in html_values)  # the top layer's tree: /data/big deleted
    (wasted,) = outputs(nb, "explorer.files[explorer.files.wasted")
    assert re.search(r"data/big\s+A\s+file\s+65536", wasted.data["text/plain"])
    (whiteout,) = outputs(nb, "explorer.files[explorer.files.change")
    assert re.search(r"data/big\s+D", whiteout.data["text/plain"])
    # teaching mode: the build's account names the layer and the whiteout
    account = "".join(o.data.get("text/plain", "") for o in outputs(nb, "%%dockerfile -t app"))
    assert "added a 65.5kB layer on top of" in account
    assert "hides /data/big with a whiteout, it is not deleted: its 65.5kB still ship" in account


@pytest.fixture
def no_containers_left(root: str) -> Iterator[None]:
    require(os.geteuid() == 0, "containers need root")
    yield
    from tests.containers.conftest import settled_processes_using

    assert not os.listdir(os.path.join(root, "containers"))
    assert settled_processes_using(root) == []


@pytest.mark.usefixtures("busybox_tgz", "no_containers_left")
def test_build_run_volumes_notebook_runs_in_a_kernel(root, tmp_path) -> None:
    work = tmp_path / "work"  # the build context: the notebook's directory, without the store
    work.mkdir()
    nb = execute(os.path.join(NOTEBOOKS, "build-run-and-volumes.ipynb"), root, str(work))
    errors = {c.source.splitlines()[0]: o for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "error"}  # fmt: skip
    assert list(errors) == ["%%dockerfile -t broken"]  # the one cell meant to fail
    failed = "\n".join(errors["%%dockerfile -t broken"].traceback)
    assert "cell line 3: RUN echo about to fail && ls /nowhere" in failed
    assert "| about to fail" in failed and "Traceback" not in failed
    (progress, history) = outputs(nb, "%%dockerfile -t greeter")
    assert "ipydock-history" in history.data["text/html"]
    assert "Successfully built sha256:" in history.data["text/html"]
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert progress.data["application/vnd.jupyter.widget-view+json"]["model_id"] in state
    values = [m["state"].get("value", "") for m in state.values()]
    assert any("COPY greet.sh /app/" in v and "done" in v for v in values)
    (run,) = outputs(nb, "out = %container run")
    assert "hello from" in run.data["text/plain"] and ", 0)" in run.data["text/plain"]
    streamed = "".join(o.get("text", "") for o in outputs(nb, "%container logs -f counter"))
    assert streamed == "tick 1\ntick 2\ntick 3\n"
    (files,) = outputs(nb, "%container rm first")[-1:]
    assert "runs.txt" in files.data["text/html"] and "<details" in files.data["text/html"]
    assert "1\n2\n" in files.data["text/html"]  # the preview of /runs.txt


@pytest.mark.usefixtures("busybox_tgz", "no_containers_left")
def test_networks_notebook_runs_in_a_kernel(root, tmp_path) -> None:
    """Bridges, names and a published port from a kernel (netlink under its asyncio loop)."""
    require(os.geteuid() == 0, "bridge networks need root")
    nb = execute(os.path.join(NOTEBOOKS, "networks.ipynb"), root, str(tmp_path))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    shown = outputs(nb, "%network create lab")
    fetched = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in shown)
    # the container on `lab` fetched www's /etc/hostname (web's short ID) through the alias
    assert re.fullmatch(r"[0-9a-f]{12}\n", fetched), fetched
    (graph,) = outputs(nb, "%network ls --graph")
    assert "<svg" in graph.data["image/svg+xml"] and "lab" in graph.data["image/svg+xml"]
    (port,) = outputs(nb, "%container port web")
    assert "127.0.0.1" in port.data["text/plain"] and "80" in port.data["text/plain"]
