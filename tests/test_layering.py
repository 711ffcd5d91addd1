"""Layer boundaries hold: the engine imports no notebook code; display touches no engine."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "ipydock.engine.store.archive",
    "ipydock.engine.store.images",
    "ipydock.engine.store.check",
    "ipydock.layerwalk",
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


def test_the_engine_imports_no_front_door_and_the_runtime_nothing_above_it() -> None:
    """engine/ never imports display/, docker/, cli/ or magics/; engine/runtime/ imports
    nothing of the container layer or the builder above it (they hand it names, not imports)."""
    loaded = imported_after(
        "ipydock.engine.containers.lifecycle",
        "ipydock.engine.containers.views",
        "ipydock.engine.containers.supervisor",
        "ipydock.engine.builder",
    )
    fronts = ("ipydock.display", "ipydock.docker", "ipydock.cli", "ipydock.magics")
    assert not {m for m in loaded if m.startswith(fronts)}
    runtime = imported_after(
        "ipydock.engine.runtime.forkserver",
        "ipydock.engine.runtime.runner",
        "ipydock.engine.runtime.cgroups",
    )
    above = ("ipydock.engine.containers", "ipydock.engine.builder", "ipydock.backends")
    assert not {m for m in runtime if m.startswith(above)}


def test_the_docker_backend_imports_no_engine() -> None:
    loaded = imported_after("ipydock.docker.backend", "ipydock.docker.distribution")
    assert not {m for m in loaded if m.startswith("ipydock.engine")}


def test_the_request_layer_imports_only_errors_and_models() -> None:
    loaded = imported_after(
        "ipydock.commands.runflags", "ipydock.commands.dockerignore", "ipydock.commands.credentials"
    )
    mine = {m for m in loaded if m.startswith("ipydock.") and m != "ipydock.commands"}
    assert mine <= {"ipydock.errors", "ipydock.models"} | {
        m for m in mine if m.startswith(("ipydock.commands.", "ipydock.models."))
    }
