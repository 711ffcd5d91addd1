"""The teaching notebooks, and an apt-get build in a notebook, executed by an ordinary user's
kernel (nbclient), as a data scientist runs JupyterLab.

Every notebook in ``example-notebooks/`` is picked up: a new one runs here without a change,
unless :data:`NEEDS_ROOT` names it with the reason; :data:`CHECKS` holds what to look for in a
notebook's outputs beyond "no error and no UsageError" (both are checked for every notebook).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.rootless.conftest import NOBODY, as_user

NOTEBOOKS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                         "example-notebooks"))  # fmt: skip


def _rootless_bridges(uid: int, base: str) -> str:
    """Why the user cannot make a bridge network here, or "" (then the notebook runs)."""

    def probe() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import NotSupported

        backend = BundledBackend(Store(os.path.join(base, "probe-store")), warm=False)
        try:
            backend.create_network("ipdu-probe")
        except NotSupported as exc:
            return {"why": str(exc)}
        backend.remove_network("ipdu-probe")
        return {"why": ""}

    return str(as_user(uid, probe)["why"])


#: Notebooks that need what an ordinary user may not have: a probe that says why (skip
#: reason), or "" when the user has it after all.
def _debian_root(uid: int, base: str) -> str:
    return ("it makes a Debian root with pandas by mmdebstrap (minutes): the root suite runs "
            "it; test_debian.py builds with apt-get as this user")  # fmt: skip


NEEDS: dict[str, Callable[[int, str], str]] = {
    "networks.ipynb": _rootless_bridges,
    "dask-cluster.ipynb": _rootless_bridges,  # a user-defined network of four containers
    "data-science.ipynb": _debian_root,
}


def _texts(found: dict[str, Any], start: str) -> list[str]:
    return [t for k, v in found["texts"].items() if k.startswith(start) for t in v]


def _build_run(found: dict[str, Any]) -> None:
    assert list(found["errors"]) == ["%%dockerfile -t broken"], found["errors"]
    assert "RUN echo about to fail && ls /nowhere" in found["errors"]["%%dockerfile -t broken"]
    assert any("hello from" in t for t in _texts(found, "out = %container run")), found["texts"]
    built = _texts(found, "%%dockerfile -t greeter")
    assert any("Successfully built sha256:" in t for t in built), built


def _layers(found: dict[str, Any]) -> None:
    assert any("ipydock-history" in t for t in _texts(found, "h = %image history app"))


def _registries(found: dict[str, Any]) -> None:
    assert any("True" in t for t in _texts(found, "again = %image push")), found["texts"]
    assert any("True" in t for t in _texts(found, "by_digest = %image pull")), found["texts"]


#: Per notebook: a check of what its cells printed (besides no error, no UsageError).
CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "build-run-and-volumes.ipynb": _build_run,
    "layers-and-whiteouts.ipynb": _layers,
    "registries-push-pull-digests.ipynb": _registries,
}


#: Errors a notebook shows on purpose (the first line of the cell).
def expected_errors(nb: Any) -> set[str]:
    """The cells meant to fail (tagged ``raises-exception``, as nbclient reads them), by their
    first line: a refused build shows the user what the refusal looks like."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "raises-exception" in c.metadata.get("tags", [])]
    return {c.source.splitlines()[0] for c in tagged}


def run_notebook(nb: Any, uid: int, base: str, timeout: int = 180) -> dict[str, Any]:
    """Execute ``nb`` in a kernel of user ``uid`` with its store, runtime dir and home in
    ``base``; the error outputs, stderr streams and texts of each cell, by its first line."""
    work = os.path.join(base, "work")
    os.makedirs(work, exist_ok=True)
    os.chown(work, uid, uid)

    def execute() -> dict[str, Any]:
        from nbclient import NotebookClient

        # jupyter_client looks for kernel specs in IPython's dir too: with a home the user
        # cannot write (nobody's /nonexistent) IPython makes an empty /tmp/tmpXXXXXXXX for it
        # and never removes it
        os.environ["HOME"] = base
        env = {**os.environ, "IPYDOCK_ROOT": os.path.join(base, "store"),
               "JUPYTER_RUNTIME_DIR": os.path.join(base, "runtime"), "HOME": base}  # fmt: skip
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}
        )
        client.execute(env=env)
        code = [c for c in nb.cells if c.cell_type == "code"]
        first = {id(c): c.source.splitlines()[0] for c in code}
        outs = [(first[id(c)], o) for c in code for o in c.get("outputs", [])]
        state = nb.metadata.get("widgets", {}).get(
            "application/vnd.jupyter.widget-state+json", {}).get("state", {})  # fmt: skip
        return {
            "widgets": [str(m.get("state", {}).get("value", "")) for m in state.values()],
            "errors": {k: "\n".join(o.traceback) for k, o in outs if o.output_type == "error"},
            "stderr": [o.text for _, o in outs if o.get("name") == "stderr"],
            "texts": {first[id(c)]: [o.get("text", "") or str(o.get("data", ""))
                      for o in c.get("outputs", [])] for c in code},
        }  # fmt: skip

    return as_user(uid, execute, preload=("encodings.unicode_escape", "nbclient"))


@pytest.mark.parametrize(
    "name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
)
def test_every_teaching_notebook_runs_as_a_user_with_id_ranges(
    name: str, ranged_user: tuple[int, str]
) -> None:
    import nbformat

    uid, home = ranged_user
    base = os.path.join(home, "nb-" + name.removesuffix(".ipynb"))
    os.mkdir(base)
    os.chown(base, uid, uid)
    why = NEEDS[name](uid, base) if name in NEEDS else ""
    if why:
        pytest.skip(f"{name} needs what this user lacks: {why}")
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    found = run_notebook(nb, uid, base)
    assert set(found["errors"]) == expected_errors(nb), found["errors"]
    assert not [t for t in found["stderr"] if "UsageError" in t], found["stderr"]
    if name in CHECKS:
        CHECKS[name](found)
    _no_containers_left(os.path.join(base, "store"))


def test_build_run_volumes_notebook_runs_as_nobody_without_a_range(nobody_dir: str) -> None:
    """The same notebook for a user without subordinate ids (uid 0 alone inside)."""
    import nbformat

    nb = nbformat.read(os.path.join(NOTEBOOKS, "build-run-and-volumes.ipynb"), as_version=4)
    found = run_notebook(nb, NOBODY, nobody_dir)
    assert not [t for t in found["stderr"] if "UsageError" in t], found["stderr"]
    _build_run(found)


APT_CELLS = [
    "%load_ext ipydock",
    "%image import {tar} debian",
    "%%dockerfile -t sci\n"
    "FROM debian\n"
    "RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-minimal "
    "&& rm -rf /var/lib/apt/lists/*\n"
    "USER 1000:1000\n"
    "WORKDIR /tmp",
    "out = %container run --rm sci python3 -c 'import os, sys; print(sys.version_info[0], "
    "os.getuid())'\nout",
    "h = %image history sci\nh[['created_by', 'size']]",
    "%image rm sci debian",
]


@pytest.mark.slow  # the Debian root (mmdebstrap, once per session) and the mirror
def test_an_apt_get_build_in_a_notebook_of_a_user_with_id_ranges(
    ranged_user: tuple[int, str], debian_tar: str
) -> None:
    """A ``%%dockerfile`` cell FROM the imported Debian root installs a Python with apt-get
    (which drops to ``_apt``), then ``%container run`` runs it as uid 1000."""
    import nbformat

    uid, home = ranged_user
    base = os.path.join(home, "nb-apt")
    os.mkdir(base)
    os.chown(base, uid, uid)
    cells = [nbformat.v4.new_code_cell(c.format(tar=debian_tar)) for c in APT_CELLS]
    nb = nbformat.v4.new_notebook(cells=cells)
    found = run_notebook(nb, uid, base, timeout=600)
    assert found["errors"] == {}, found["errors"]
    assert not [t for t in found["stderr"] if "UsageError" in t], found["stderr"]
    built = _texts(found, "%%dockerfile -t sci")
    assert any("apt-get install" in t for t in built), built  # the history it returns
    assert any("Setting up python3-minimal" in t for t in found["widgets"])  # the progress
    ran = _texts(found, "out = %container run")
    assert any("3 1000" in t for t in ran), ran  # Python 3, as uid 1000 of the range
    _no_containers_left(os.path.join(base, "store"))


def _no_containers_left(store: str) -> None:
    from tests.containers.conftest import settled_processes_using

    assert settled_processes_using(store) == []
    containers = os.path.join(store, "containers")
    if os.path.isdir(containers):
        assert not os.listdir(containers)
