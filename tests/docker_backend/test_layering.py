"""The Docker backend stands apart from the bundled engine."""

from __future__ import annotations

from tests.test_layering import imported_after


def test_the_docker_backend_imports_no_bundled_engine() -> None:
    loaded = imported_after("ipydock.docker", "ipydock.docker.build", "ipydock.docker.runopts")
    assert not {m for m in loaded if m.startswith("ipydock.engine")}
    assert not {"IPython", "pandas", "ipywidgets"} & loaded
