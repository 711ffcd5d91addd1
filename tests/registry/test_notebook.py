"""The teaching notebook on registries runs in a real kernel: push, pull, digests."""

from __future__ import annotations

import os

import pytest

from tests.notebook.test_kernel import NOTEBOOKS, execute, outputs
from tests.registry.conftest import need_registry


@pytest.mark.usefixtures("busybox_tgz")
def test_registry_notebook_runs_in_a_kernel(root, tmp_path) -> None:
    need_registry()
    nb = execute(os.path.join(NOTEBOOKS, "registries-push-pull-digests.ipynb"), root, str(tmp_path))
    for cell in nb.cells:
        assert all(o.output_type != "error" for o in cell.get("outputs", [])), cell.source
    *_, pushed = outputs(nb, "%image tag busybox")
    assert "PushResult(" in pushed.data["text/plain"] and "sha256:" in pushed.data["text/plain"]
    (same,) = outputs(nb, "again = %image push")[-1:]
    assert same.data["text/plain"] == "True"
    (table,) = outputs(nb, "%image ls --digests")
    assert "sha256:" in table.data["text/html"]  # the digest column
    (digests,) = outputs(nb, "info = %image inspect")
    assert "/class/busybox@sha256:" in digests.data["text/plain"]
    (same_id,) = outputs(nb, "by_digest = ")[-1:]
    assert same_id.data["text/plain"] == "True"
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    values = [str(m["state"].get("value", "")) for m in state.values()]
    assert any("Pushed" in v for v in values)  # the push's progress widget, a row per layer
    assert any("Pull complete" in v or "Already exists" in v for v in values)
