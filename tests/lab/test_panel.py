"""The Containers panel in a real JupyterLab driven by Playwright in Debian's Chromium: live
updates from a kernel's build, removing a container, `%%dockerfile` cells. Screenshots go to a
temp dir (or to ``IPYDOCK_SCREENSHOTS``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.models import RunOptions
from tests.conftest import require
from tests.lab.conftest import Server, start_server, stop_server
from tests.notebook.test_screenshots import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow
LABEXTENSION = os.path.join(sys.prefix, "share", "jupyter", "labextensions", "ipydock")
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "%load_ext ipydock"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "%%dockerfile -t ipdl-panel-built\nFROM ipdl-busybox\nENV BUILT_BY=panel-test"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, busybox_tgz: str, cgroup_parent: str
) -> Iterator[Server]:
    require(os.path.exists(CHROMIUM), "Debian's chromium is not installed")
    require(os.path.isdir(LABEXTENSION), "the labextension is not built (pip install -e .)")
    root = str(tmp_path_factory.mktemp("ipdl-panel") / "store")
    backend = BundledBackend(Store(root), warm=False)
    backend.import_image(busybox_tgz, "ipdl-busybox", changes=['CMD ["sh"]'])
    proc, server = start_server(root, lab=True)
    try:
        with open(os.path.join(server.work, "panel.ipynb"), "w") as f:
            json.dump(NOTEBOOK, f)
        yield server
    finally:
        stop_server(proc, server)
        for row in backend.containers(all=True):
            backend.remove_container(row.id, force=True)


@pytest.fixture
def page(lab: Server, tmp_path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "lab-last.png"))  # how the test left it
            browser.close()


def open_panel(page, lab: Server, path: str = "") -> None:  # noqa: ANN001 - a Page
    where = f"ipdl-{path.removesuffix('.ipynb') or 'empty'}" + (f"/tree/{path}" if path else "")
    page.goto(f"{lab.url}/lab/workspaces/{where}?reset&token={lab.token}")
    page.add_style_tag(content=".Toastify { display: none !important; }")
    page.locator('li[data-id="ipydock-containers"]').click(timeout=60_000)
    page.locator(".jp-ipydock-image:has-text('ipdl-busybox')").wait_for(timeout=30_000)


def test_the_panel_shows_a_kernel_build_live_and_dockerfile_cells_complete(
    page, lab: Server, tmp_path
) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    open_panel(page, lab, "panel.ipynb")
    assert page.locator(".jp-ipydock-image:has-text('ipdl-panel-built')").count() == 0
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    cell.locator(".cm-content[data-language='dockerfile']").wait_for(timeout=30_000)
    idle = page.get_by_text("Python 3 (ipykernel) | Idle")
    dialog = page.locator(".jp-Dialog:has-text('Select Kernel')")
    idle.or_(dialog).first.wait_for(timeout=60_000)
    if dialog.count():
        dialog.get_by_role("button", name="Select", exact=True).click(timeout=30_000)
        idle.wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click(timeout=30_000)
    page.get_by_text("Run All Cells", exact=True).click(timeout=30_000)
    # no refresh click: the server's "changed" event brings it
    built = page.locator(".jp-ipydock-image:has-text('ipdl-panel-built')")
    built.wait_for(timeout=60_000)
    shots = os.environ.get("IPYDOCK_SCREENSHOTS") or str(tmp_path)
    page.screenshot(path=os.path.join(shots, "lab-panel.png"))
    # completion of an instruction keyword in the %%dockerfile cell
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nFRO")
    page.keyboard.press("Tab")
    # ours first (the kernel's and the document's words after it)
    first = page.locator(".jp-Completer-item").first
    first.wait_for(timeout=30_000)
    assert first.locator(".jp-Completer-match").inner_text() == "FROM"
    page.keyboard.press("Enter")
    expect(cell.locator(".cm-line").nth(3)).to_have_text("FROM", timeout=30_000)
    # a click on the image opens its history in the main area
    built.click()
    page.locator(".jp-ipydock-history").wait_for(timeout=30_000)
    assert "BUILT_BY=panel-test" in page.locator(".jp-ipydock-history").inner_text()


def test_removing_a_container_from_the_panel_removes_it(page, lab: Server) -> None:  # noqa: ANN001
    backend = BundledBackend(Store(lab.root), warm=False)
    backend.create_container(RunOptions(image="ipdl-busybox", name="ipdl-rm-me", command=("true",)))
    open_panel(page, lab)
    row = page.locator(".jp-ipydock-container[data-name='ipdl-rm-me']")
    row.wait_for(timeout=30_000)
    row.get_by_role("button", name="Remove").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Remove").click(timeout=30_000)
    row.wait_for(state="detached", timeout=30_000)
    ipydock = os.path.join(os.path.dirname(sys.executable), "ipydock")
    env = {**os.environ, "IPYDOCK_ROOT": lab.root}
    out = subprocess.run([ipydock, "ps", "-a", "--format", "json"], capture_output=True,
                         text=True, env=env, check=True).stdout  # fmt: skip
    assert "ipdl-rm-me" not in out


def test_logs_follow_in_a_tab_and_stop_from_the_panel(page, lab: Server) -> None:  # noqa: ANN001
    require(os.geteuid() == 0, "containers need root")
    backend = BundledBackend(Store(lab.root), warm=False)
    script = "echo hello-ipdl; trap 'echo bye-ipdl; exit 0' TERM; while :; do sleep 0.1; done"
    opts = RunOptions(image="ipdl-busybox", name="ipdl-logs", command=("sh", "-c", script))
    backend.run(opts, detach=True)
    open_panel(page, lab)
    row = page.locator(".jp-ipydock-container.jp-ipydock-running[data-name='ipdl-logs']")
    row.locator(".jp-ipydock-name").click(timeout=30_000)
    logs = page.locator(".jp-ipydock-logs")
    logs.locator("text=hello-ipdl").wait_for(timeout=30_000)
    row.get_by_role("button", name="Stop").click()
    # the line written on SIGTERM arrives, then the end of the stream
    logs.locator(".jp-ipydock-end").wait_for(timeout=30_000)
    assert "bye-ipdl" in logs.inner_text()
    page.locator(".jp-ipydock-container.jp-ipydock-exited[data-name='ipdl-logs']").wait_for()
    assert backend.inspect_container("ipdl-logs").state["Status"] == "exited"


def test_a_dockerfile_file_completes_keywords_and_image_names(page, lab: Server) -> None:  # noqa: ANN001,E501
    from playwright.sync_api import expect

    with open(os.path.join(lab.work, "Dockerfile"), "w") as f:
        f.write("# a file\n")
    open_panel(page, lab, "Dockerfile")
    editor = page.locator(".jp-FileEditor .cm-content")  # JupyterLab's own Dockerfile mode
    editor.wait_for(timeout=30_000)
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("FRO")
    page.keyboard.press("Tab")
    first = page.locator(".jp-Completer-item").first
    first.wait_for(timeout=30_000)
    assert first.locator(".jp-Completer-match").inner_text() == "FROM"
    page.keyboard.press("Enter")
    page.keyboard.type(" ipdl-bu")
    page.keyboard.press("Tab")  # the local images' names after FROM
    names = page.locator(".jp-Completer-item .jp-Completer-match")
    expect(names.first).to_have_text("ipdl-busybox", timeout=30_000)
    assert "ipdl-busybox:latest" in names.all_inner_texts()
    page.keyboard.press("Enter")
    line = page.locator(".jp-FileEditor .cm-line").nth(1)
    expect(line).to_have_text(re.compile(r"^FROM ipdl-busybox"), timeout=30_000)


def test_network_picture_and_volume_files_open_in_the_main_area(page, lab: Server) -> None:  # noqa: ANN001,E501
    backend = BundledBackend(Store(lab.root), warm=False)
    volume = backend.create_volume("ipdl-files")
    try:
        with open(os.path.join(volume.mountpoint, "notes.txt"), "w") as f:
            f.write("hello\n")
        open_panel(page, lab)
        page.locator(".jp-ipydock-volume:has-text('ipdl-files')").click(timeout=30_000)
        page.locator(".jp-ipydock-view td:text-is('/notes.txt')").wait_for(timeout=30_000)
        page.locator(".jp-ipydock-networks").get_by_role("button", name="Picture").click()
        graph = page.locator(".jp-ipydock-graph svg")
        graph.wait_for(timeout=30_000)
        assert "host" in graph.inner_html()
    finally:
        backend.remove_volume("ipdl-files")
