"""JupyterLab (headless, 127.0.0.1, a token) runs the teaching notebooks in Debian's Chromium;
PNGs of the outputs go to a temp dir, or to docs/screenshots/ when ``IPYDOCK_SCREENSHOTS`` names
it (updating the README's pictures is a deliberate step, not a side effect of a test run).
Everything started here is stopped and removed."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.lab.conftest import stop_process, wait_until_answering

HERE = os.path.dirname(__file__)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow
NOTEBOOKS = ("layers-and-whiteouts.ipynb", "dangling-images.ipynb", "build-run-and-volumes.ipynb",
             "networks.ipynb")  # fmt: skip
# output area (a CSS selector for Playwright) -> PNG name
SHOTS_OF = {
    "layers-and-whiteouts.ipynb": {
        ".jp-OutputArea-output:has(table.ipydock-history)": "image-history.png",
        ".jp-OutputArea-output:has(.widget-select)": "layer-explorer.png",
        ".jp-OutputArea-output:has(.ipydock-explain)": "teaching-mode.png",
        ".jp-OutputArea-output:has(.ipydock-capabilities)": "capabilities.png",
    },
    "dangling-images.ipynb": {
        ".jp-OutputArea-output:has(.ipydock-images)": "dangling-images.png",
    },
    "build-run-and-volumes.ipynb": {
        ".jp-OutputArea-output:has-text('Built greeter')": "build-progress.png",
        ".jp-OutputArea-output:has(p.ipydock-built)": "build-history.png",
        ".jp-OutputArea-output:has-text('cell line 3')": "build-error.png",
        ".jp-OutputArea-output:has(table.ipydock-containers)": "container-ls.png",
        ".jp-OutputArea-output:has(button:has-text('Remove'))": "container-list.png",
        ".jp-OutputArea-output:has(.ipydock-volume)": "volume-files.png",
    },
    "networks.ipynb": {
        ".jp-OutputArea-output.jp-RenderedSVG": "network-graph.png",
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(root: str, busybox_tgz: str) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on a copy of example-notebooks/; yields (base URL, token)."""
    require(os.path.exists(CHROMIUM), "Debian's chromium is not installed")
    work = tempfile.mkdtemp(prefix="ipydock-lab-")
    for name in NOTEBOOKS:
        shutil.copy(os.path.join(REPO, "example-notebooks", name), work)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "IPYDOCK_ROOT": root, "JUPYTER_CONFIG_DIR": os.path.join(work, ".cfg")}
    env["JUPYTER_RUNTIME_DIR"] = os.path.join(work, ".run")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, url, token)
        yield url, token
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


def run_all(page, url: str, token: str, notebook: str) -> None:  # noqa: ANN001 - a Page
    """Open ``notebook``, run every cell, wait for its last output ("Total reclaimed space")."""
    workspace = notebook.removesuffix(".ipynb")  # a fresh one: only this notebook is open
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # JupyterLab's toasts (the "Jupyter news?" question) would cover outputs in the pictures.
    page.add_style_tag(content=".Toastify { display: none !important; }")
    idle = page.get_by_text("Python 3 (ipykernel) | Idle")
    dialog = page.locator(".jp-Dialog:has-text('Select Kernel')")
    idle.or_(dialog).first.wait_for(timeout=60_000)
    if dialog.count():  # JupyterLab asks once which kernel a notebook gets
        dialog.get_by_role("button", name="Select", exact=True).click(timeout=30_000)
        idle.wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click(timeout=30_000)
    page.get_by_text("Run All Cells", exact=True).click(timeout=30_000)
    try:
        page.wait_for_selector("text=Total reclaimed space", timeout=180_000)
    except Exception:
        page.screenshot(path=os.path.join(tempfile.gettempdir(), "ipydock-lab-fail.png"))
        raise


def test_screenshots_of_the_notebook_outputs(lab, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots_dir = os.environ.get("IPYDOCK_SCREENSHOTS") or str(tmp_path)
    os.makedirs(shots_dir, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for notebook, shots in SHOTS_OF.items():
                run_all(page, url, token, notebook)
                for selector, name in shots.items():
                    output = page.locator(selector).first
                    output.scroll_into_view_if_needed(timeout=30_000)
                    output.screenshot(path=os.path.join(shots_dir, name))
        finally:
            browser.close()
    for shots in SHOTS_OF.values():
        for name in shots.values():
            assert os.path.getsize(os.path.join(shots_dir, name)) > 2000, name
