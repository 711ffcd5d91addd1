"""PRoot mode: where user namespaces are really refused, commands still run through PRoot."""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any

import pytest

from tests.conftest import require
from tests.rootless.conftest import NOBODY, as_user

DOCKERFILE = """\
FROM busybox
COPY greeting /greeting
RUN echo built > /built && id -u > /uid
"""


@pytest.fixture
def proot() -> str:
    path = shutil.which("proot")
    require(path is not None, "proot is not installed (Debian package proot)")
    assert path is not None
    return path


def test_run_and_build_run_through_proot_without_user_namespaces(
    nobody_dir: str, proot: str
) -> None:
    context = os.path.join(nobody_dir, "context")
    shared = os.path.join(nobody_dir, "shared")
    for path in (context, shared):
        os.mkdir(path)
        os.chown(path, NOBODY, NOBODY)
    for name, text in (("Dockerfile", DOCKERFILE), ("greeting", "hello\n")):
        with open(os.path.join(context, name), "w") as f:
            f.write(text)
        os.chown(os.path.join(context, name), NOBODY, NOBODY)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import CommandNotFound
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        info = backend.info()
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        lines: list[str] = []

        def run(image: str, script: str, **kw: Any) -> tuple[int, list[str]]:
            lines.clear()
            opts = RunOptions(image, ("sh", "-c", script), auto_remove=True, **kw)
            result = backend.run(opts, output=lambda _s, text: lines.append(text))
            return int(result.exit_code or 0), "".join(lines).split()

        out: dict[str, Any] = {"mode": info["mode"], "reason": info["mode_reason"]}
        out["run"] = run("busybox", "id -u; echo hi > /made; cat /made; echo v > /data/v",
                         volumes=(f"{shared}:/data",))  # fmt: skip
        out["fresh"] = run("busybox", "test -e /made && echo leaked || echo clean")
        out["exit"] = run("busybox", "exit 3")
        try:
            backend.run(RunOptions("busybox", ("nosuch",), auto_remove=True))
        except CommandNotFound as exc:
            out["missing"] = exc.exit_code
        cid = backend.run(RunOptions("busybox", ("sh", "-c", "echo up > /up; exec sleep 60")),
                          detach=True).id  # fmt: skip
        out["exec"] = backend.exec(cid, ["sh", "-c", "while ! test -e /up; do sleep 0.05; done"])
        backend.remove_container(cid, force=True)
        backend.build(context, tags=["app"])
        out["built"] = run("app", "cat /greeting /built /uid")
        return out

    left_before = set(glob.glob("/tmp/prooted-*"))
    found = as_user(NOBODY, work, userns_refused=True)
    assert set(glob.glob("/tmp/prooted-*")) - left_before == set()  # killed PRoots' loaders too
    assert found["mode"] == "proot", found["reason"]
    assert "max_user_namespaces" in found["reason"] and "PRoot" in found["reason"]
    assert found["run"] == [0, ["0", "hi"]]  # root as PRoot fakes it
    with open(os.path.join(shared, "v")) as f:
        assert f.read() == "v\n"  # the bind mount (-v) reached the host directory
    assert found["fresh"] == [0, ["clean"]]  # each container its own copy of the image
    assert found["exit"] == [3, []]
    assert found["missing"] == 127
    assert found["exec"] == 0  # exec: another PRoot process on the container's root
    assert found["built"] == [0, ["hello", "built", "0"]]
