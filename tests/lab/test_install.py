"""`pip install` (here: scripts/setup.sh's editable install) builds and enables both extensions;
the TypeScript unit tests (jest, mocking only src/request.ts) pass."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from tests.conftest import require

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LABEXTENSION = os.path.join(REPO, "labextension")


def jupyter(*args: str) -> str:
    """``jupyter ARGS`` of this venv, as a user runs it (no test config dirs), without colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    exe = os.path.join(os.path.dirname(sys.executable), "jupyter")
    out = subprocess.run([exe, *args], capture_output=True, text=True, env=env, check=True)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


def test_the_server_extension_is_enabled_by_the_installed_config() -> None:
    text = jupyter("server", "extension", "list")
    assert "ipydock.server enabled" in text, text
    assert re.search(r"ipydock\.server\s+OK", text), text


def test_the_prebuilt_labextension_is_installed_and_enabled() -> None:
    text = jupyter("labextension", "list")
    assert re.search(r"ipydock v[\d.]+ enabled\s+OK \(python, ipydock\)", text), text


def test_typescript_unit_tests() -> None:
    npx = shutil.which("npx")
    require(npx is not None, "node/npm is not installed")
    require(os.path.isdir(os.path.join(LABEXTENSION, "node_modules")),
            "labextension/node_modules is missing (pip install -e . runs npm install)")  # fmt: skip
    assert npx is not None
    out = subprocess.run([npx, "jest", "--ci"], cwd=LABEXTENSION, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"Tests:\s+\d+ passed, \d+ total", out.stderr), out.stderr
