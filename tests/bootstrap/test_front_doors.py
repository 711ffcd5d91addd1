"""``%image bootstrap`` in a real InteractiveShell and ``DockerBackend.bootstrap`` against a
private dockerd, both with the one-package variant (seconds, not a minbase's half minute)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.docker import DockerBackend
from ipydock.models import RunOptions, TransferEvent
from ipydock.testing import Dockerd
from tests.bootstrap.conftest import TINY, need_mmdebstrap
from tests.conftest import private_dockerd
from tests.notebook.conftest import ip, shown  # noqa: F401 - the shell fixture

__all__ = ["ip"]


def test_the_magic_prints_the_steps_and_errors_in_one_line(
    ip,
    backend: BundledBackend,
    dead_mirror: str,  # noqa: F811
) -> None:
    need_mmdebstrap()
    result, printed = shown(
        ip, "i = %image bootstrap --variant extract --include busybox-static tiny"
    )
    assert result.success
    lines = printed.splitlines()
    assert lines[0] == "bootstrap bookworm extract +busybox-static"
    assert "mmdebstrap: Bootstrap complete" in lines
    assert ip.user_ns["i"].startswith("sha256:")
    assert [i.id for i in backend.images()] == [ip.user_ns["i"]]

    result, printed = shown(ip, f"%image bootstrap -q --mirror {dead_mirror} x")
    assert "Traceback" not in printed and "UsageError" not in printed
    (line,) = printed.strip().splitlines()
    assert f"the mirror {dead_mirror} does not answer" in line


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    with private_dockerd() as d:
        yield d


def test_the_docker_backend_imports_the_same_root(dockerd: Dockerd) -> None:
    need_mmdebstrap()
    engine = DockerBackend(dockerd.host)
    events: list[TransferEvent] = []
    image_id = engine.bootstrap("ipdb-tiny:1", progress=events.append, **TINY)  # type: ignore[arg-type]
    try:
        (row,) = engine.history("ipdb-tiny:1")
        assert row.comment == "bootstrap bookworm extract +busybox-static"
        assert engine.inspect_image(image_id).config["Cmd"] == ["bash"]
        out: list[str] = []
        opts = RunOptions("ipdb-tiny:1", ("/bin/busybox", "echo", "hi"), auto_remove=True,
                          network="none")  # fmt: skip
        assert engine.run(opts, output=lambda _s, text: out.append(text)).exit_code == 0
        assert "".join(out) == "hi\n"
        assert [e.status for e in events if e.id == "mmdebstrap"][-1] == "Bootstrap complete"
    finally:
        engine.remove_image(image_id, force=True)
