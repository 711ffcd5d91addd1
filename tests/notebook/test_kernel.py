"""A real kernel (ipykernel through nbclient) runs the teaching notebooks; widgets send state."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "example-notebooks")


def execute(path: str, root: str, cwd: str) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": cwd}}
    )
    client.execute(env={**os.environ, "IPYDOCK_ROOT": root})
    return nb


def outputs(nb: nbformat.NotebookNode, source_start: str) -> list[dict]:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return cell.outputs


@pytest.mark.usefixtures("busybox_tgz")  # skips where busybox-static is missing
def test_layers_notebook_runs_in_a_kernel_with_widgets(root, tmp_path) -> None:
    nb = execute(os.path.join(NOTEBOOKS, "layers-and-whiteouts.ipynb"), root, str(tmp_path))
    for cell in nb.cells:
        assert all(o.output_type != "error" for o in cell.get("outputs", [])), cell.source
    (history,) = outputs(nb, "h = %image history app")
    assert "ipydock-history" in history.data["text/html"]
    (explorer,) = outputs(nb, "explorer = %image files app")
    view = explorer.data["application/vnd.jupyter.widget-view+json"]
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert view["model_id"] in state
    html_values = [m["state"].get("value", "") for m in state.values()]
    assert any("65.5kB wasted" in v and "efficiency" in v for v in html_values)  # the header
    assert any("<s>big</s>" in v for v in html_values)  # the top layer's tree: /data/big deleted
    (wasted,) = outputs(nb, "explorer.files[")
    assert "data/big" in wasted.data["text/plain"]
    (dangling,) = outputs(nb, "add_step(")
    assert "%image prune -f" in dangling.data["text/html"]
    (pruned,) = outputs(nb, "%image prune -f")
    assert "Total reclaimed space" in pruned.data["text/html"]
