"""binder/: the files parse and name what exists (the packages, the repository's install)."""

from __future__ import annotations

import os
import shutil
import subprocess

import tomllib
from packaging.requirements import Requirement

from ipydock.notebook_export import BINDER_APT
from tests.conftest import require

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
BINDER = os.path.join(REPO, "binder")


def _lines(name: str) -> list[str]:
    with open(os.path.join(BINDER, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_requirements_are_the_projects_dependencies_and_jupyterlab() -> None:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    wanted = {Requirement(r).name for r in project["dependencies"]} | {"jupyterlab"}
    assert {Requirement(line).name for line in _lines("requirements.txt")} == wanted


def test_apt_packages_exist_in_debian() -> None:
    assert _lines("apt.txt") == BINDER_APT  # what an export writes too
    require(shutil.which("apt-cache") is not None, "apt-cache (Debian) is not here")
    for package in _lines("apt.txt"):
        shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True)
        assert shown.returncode == 0 and f"Package: {package}" in shown.stdout, package


def test_post_build_parses_and_installs_this_repository() -> None:
    post = os.path.join(BINDER, "postBuild")
    assert os.access(post, os.X_OK)
    assert subprocess.run(["bash", "-n", post]).returncode == 0
    with open(post) as f:
        text = f.read()
    assert "pip install --no-cache-dir --no-deps ." in text  # run in the repository's root
    assert os.path.exists(os.path.join(REPO, "pyproject.toml"))
    # the server extension the wheel enables, and the notebooks Binder opens
    assert os.path.exists(os.path.join(REPO, "jupyter-config", "server-config", "ipydock.json"))
    assert os.path.exists(os.path.join(REPO, "ipydock", "server", "__init__.py"))
    assert len([n for n in os.listdir(os.path.join(REPO, "example-notebooks"))
                if n.endswith(".ipynb")]) >= 10  # fmt: skip
