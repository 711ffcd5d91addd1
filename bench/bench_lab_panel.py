"""Benchmark: the JupyterLab Containers panel with 1,000 images and 100 containers.

Loads 1,000 images (``bench_images.many_images_archive``) and creates 100 containers in a fresh
store, starts JupyterLab (127.0.0.1, a token, the ipydock server extension) on it, and drives
Debian's Chromium with Playwright. Prints, as the median of several page loads:

* ``shell``: navigation -> JupyterLab's shell on screen (JupyterLab's own start, not ours);
* ``panel``: navigation -> every image and container row painted in the panel;
* ``panel - shell``: what the panel adds after the page is there (the issue's bound: <= 1 s);
* ``change``: ``ipydock tag`` in another process -> the new row painted (bound: <= 1 s).

Run as root: ``python bench/bench_lab_panel.py [--images 1000] [--containers 100] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from bench_images import many_images_archive  # noqa: E402

from ipydock.backends import BundledBackend  # noqa: E402
from ipydock.engine.store import Store  # noqa: E402
from ipydock.models import RunOptions  # noqa: E402
from ipydock.testing import busybox_tarball  # noqa: E402
from tests.lab.conftest import start_server, stop_server  # noqa: E402
from tests.notebook.test_screenshots import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--containers", type=int, default=100)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    base = tempfile.mkdtemp(prefix="ipdl-bench-")
    root = os.path.join(base, "store")
    backend = BundledBackend(Store(root), warm=False)
    tgz = busybox_tarball(os.path.join(base, "busybox.tar.gz"))
    archive = os.path.join(base, "many.tar")
    many_images_archive(archive, a.images, tgz)
    backend.load(archive)
    image = backend.images()[0].id
    for i in range(a.containers):
        backend.create_container(RunOptions(image=image, name=f"ipdl-c{i}", command=("true",)))
    rows = len(backend.images())
    proc, server = start_server(root, lab=True)
    shell, panel, change = [], [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            url = f"{server.url}/lab/workspaces/ipdl-bench?token={server.token}"
            page.goto(url + "&reset")  # once: the panel opened, saved in the workspace
            tab = page.locator('li[data-id="ipydock-containers"]')
            tab.wait_for(timeout=60_000)
            if tab.get_attribute("aria-selected") != "true":
                tab.click()
            page.locator("#ipydock-containers").wait_for(timeout=60_000)
            page.locator(".jp-ipydock-image").nth(rows - 1).wait_for(timeout=60_000)
            for _ in range(a.runs):
                t0 = time.perf_counter()
                page.goto(url)
                page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
                t1 = time.perf_counter()
                page.locator(".jp-ipydock-image").nth(rows - 1).wait_for(state="attached")
                page.locator(".jp-ipydock-container").nth(a.containers - 1).wait_for(
                    state="attached"
                )
                t2 = time.perf_counter()
                shell.append(t1 - t0)
                panel.append(t2 - t0)
            ipydock = os.path.join(os.path.dirname(sys.executable), "ipydock")
            env = {**os.environ, "IPYDOCK_ROOT": root}
            for i in range(a.runs):
                t0 = time.perf_counter()
                subprocess.run([ipydock, "tag", image, f"ipdl-new:{i}"], env=env, check=True)
                new = page.locator(f".jp-ipydock-image:has-text('ipdl-new:{i}')")
                new.wait_for(state="attached")
                change.append(time.perf_counter() - t0)
            browser.close()
    finally:
        stop_server(proc, server)
        for c in backend.containers(all=True):
            backend.remove_container(c.id, force=True)
        shutil.rmtree(base, ignore_errors=True)
    med = statistics.median
    print(f"{rows} image rows, {a.containers} containers, median of {a.runs}:")
    print(f"  shell           {med(shell):.3f} s   (JupyterLab itself)")
    print(f"  panel           {med(panel):.3f} s")
    print(f"  panel - shell   {med(p - s for p, s in zip(panel, shell, strict=True)):.3f} s")
    print(f"  change          {med(change):.3f} s   (CLI process start included)")


if __name__ == "__main__":
    main()
