"""The README's first command: ``scripts/demo.sh --no-browser`` executes the first teaching
notebook headless and writes its HTML beside it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import require

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HTML = os.path.join(REPO, "example-notebooks", "containers-vs-vms.html")


@pytest.mark.slow
@pytest.mark.usefixtures("busybox_tgz")
def test_demo_without_a_browser_writes_the_first_notebook_as_html(root) -> None:
    require(os.geteuid() == 0, "the first notebook runs containers: root here")
    require(not os.path.exists(HTML), f"{HTML} exists already (from a run by hand?)")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(IPYDOCK_ROOT=root, SETUP="0")  # the suite's venv is set up already
    try:
        proc = subprocess.run([os.path.join(REPO, "scripts", "demo.sh")], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "executing example-notebooks/containers-vs-vms.ipynb headless" in proc.stderr
        with open(HTML) as f:
            page = f.read()
        assert "<b>Mode root</b>" in page  # the table of what this machine can show
        assert "sleep 600" in page and f"inside {os.uname().release}" in page  # ps, uname
        assert "UsageError" not in page and "Traceback" not in page
    finally:
        if os.path.exists(HTML):
            os.unlink(HTML)
