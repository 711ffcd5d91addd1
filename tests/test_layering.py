"""Layer boundaries hold: the engine imports no notebook code; display touches no engine."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "ipydock.engine.store.archive",
    "ipydock.engine.store.images",
    "ipydock.engine.store.check",
    "ipydock.engine.store.explore",
    "ipydock.engine.runtime",
    "ipydock.engine.registry.pull",
    "ipydock.engine.registry.push",
    "ipydock.engine.registry.login",
    "ipydock.backends",
    "ipydock.cli",
]


def imported_after(*modules: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_and_cli_import_no_notebook_libraries() -> None:
    loaded = imported_after(*ENGINE_MODULES)
    assert not {"IPython", "pandas", "ipywidgets"} & loaded


def test_display_imports_no_engine_or_backend() -> None:
    loaded = imported_after(
        "ipydock.display.text",
        "ipydock.display.frames",
        "ipydock.display.layers",
        "ipydock.display.progress",
        "ipydock.display.results",
        "ipydock.display.transfer",
    )
    assert not {m for m in loaded if m.startswith(("ipydock.engine", "ipydock.backends"))}


def test_listing_images_from_the_cli_loads_no_archive_code() -> None:
    """Start-up time: tar, compressors and snapshot drivers are imported on use only."""
    loaded = imported_after("ipydock.cli")
    assert (
        not {"tarfile", "lzma", "ipydock.engine.store.archive", "ipydock.engine.store.snapshots"}
        & loaded
    )
