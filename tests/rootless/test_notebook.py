"""The teaching notebook of builds, runs and volumes, executed by a kernel of an ordinary user."""

from __future__ import annotations

import os
from typing import Any

from tests.rootless.conftest import NOBODY, as_user

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "example-notebooks")


def test_build_run_volumes_notebook_runs_as_an_unprivileged_user(nobody_dir: str) -> None:
    path = os.path.abspath(os.path.join(NOTEBOOKS, "build-run-and-volumes.ipynb"))
    work = os.path.join(nobody_dir, "work")
    os.mkdir(work)
    os.chown(work, NOBODY, NOBODY)

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)  # here: its validator imports lazily

    def work_() -> dict[str, Any]:
        env = {**os.environ, "IPYDOCK_ROOT": os.path.join(nobody_dir, "store"),
               "JUPYTER_RUNTIME_DIR": os.path.join(nobody_dir, "runtime"),
               "HOME": nobody_dir}  # fmt: skip
        client = NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": work}}
        )
        client.execute(env=env)
        errors = {c.source.splitlines()[0]: "\n".join(o.traceback) for c in nb.cells
                  for o in c.get("outputs", []) if o.output_type == "error"}  # fmt: skip
        code = [c for c in nb.cells if c.cell_type == "code"]
        texts = {c.source.splitlines()[0]: [o.get("text", "") or str(o.get("data", ""))
                 for o in c.get("outputs", [])] for c in code}  # fmt: skip
        return {"errors": errors, "texts": texts}

    found = as_user(NOBODY, work_, preload=("encodings.unicode_escape",))
    assert list(found["errors"]) == ["%%dockerfile -t broken"], found["errors"]
    assert "RUN echo about to fail && ls /nowhere" in found["errors"]["%%dockerfile -t broken"]
    run = [t for k, v in found["texts"].items() if k.startswith("out = %container run") for t in v]
    assert any("hello from" in t for t in run), found["texts"]
    built = [t for k, v in found["texts"].items() if k.startswith("%%dockerfile -t greeter")
             for t in v]  # fmt: skip
    assert any("Successfully built sha256:" in t for t in built), built


def test_layers_notebook_runs_as_an_unprivileged_user(nobody_dir: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    path = os.path.abspath(os.path.join(NOTEBOOKS, "layers-and-whiteouts.ipynb"))
    nb = nbformat.read(path, as_version=4)
    work = os.path.join(nobody_dir, "work")
    os.mkdir(work)
    os.chown(work, NOBODY, NOBODY)

    def work_() -> dict[str, Any]:
        env = {**os.environ, "IPYDOCK_ROOT": os.path.join(nobody_dir, "store"),
               "JUPYTER_RUNTIME_DIR": os.path.join(nobody_dir, "runtime"),
               "HOME": nobody_dir}  # fmt: skip
        client = NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": work}}
        )
        client.execute(env=env)
        errors = ["\n".join(o.traceback) for c in nb.cells for o in c.get("outputs", [])
                  if o.output_type == "error"]  # fmt: skip
        html = [str(o.get("data", {}).get("text/html", "")) for c in nb.cells
                for o in c.get("outputs", [])]  # fmt: skip
        return {"errors": errors, "history": any("ipydock-history" in h for h in html)}

    found = as_user(NOBODY, work_, preload=("encodings.unicode_escape",))
    assert found["errors"] == []
    assert found["history"]
