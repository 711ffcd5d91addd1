"""Where user namespaces are refused: what cannot run says so; the rest keeps working."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.rootless.conftest import NOBODY, as_user

DOCKERFILE = """\
FROM busybox
COPY greeting /greeting
ENV WHO=world
"""


def test_without_user_namespaces_store_copy_builds_and_volumes_work(
    nobody_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDOCK_PROOT", "")  # no PRoot either: containers cannot run
    _without_user_namespaces(NOBODY, nobody_dir, os.path.join(nobody_dir, "busybox.tar.gz"))


def test_a_user_with_a_range_without_user_namespaces_too(
    ranged_user: tuple[int, str], busybox_tgz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its ranges are of no use there: store writes stay the user's own (no worker)."""
    monkeypatch.setenv("IPYDOCK_PROOT", "")
    uid, home = ranged_user
    base = os.path.join(home, "refused")
    os.mkdir(base)
    os.chown(base, uid, uid)
    tarball = os.path.join(base, "busybox.tar.gz")
    shutil.copy(busybox_tgz, tarball)
    os.chown(tarball, uid, uid)
    _without_user_namespaces(uid, base, tarball)


def _without_user_namespaces(uid: int, base: str, tarball: str) -> None:
    context = os.path.join(base, "context")
    os.mkdir(context)
    for name, text in (("Dockerfile", DOCKERFILE), ("greeting", "hello\n")):
        with open(os.path.join(context, name), "w") as f:
            f.write(text)
        os.chown(os.path.join(context, name), uid, uid)
    os.chown(context, uid, uid)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError
        from ipydock.models.containers import RunOptions

        out: dict[str, Any] = {}
        tried = subprocess.run(["unshare", "--user", "true"], capture_output=True, text=True)
        out["unshare"] = (tried.returncode, tried.stderr)
        backend = BundledBackend(Store(os.path.join(base, "store")), warm=False)
        info = backend.info()
        out["info"] = {k: info.get(k) for k in ("mode", "mode_reason", "storage_driver")}
        backend.import_image(tarball, "busybox", changes=['CMD ["sh"]'])
        out["built"] = backend.build(context, tags=["copied"]).image_id
        out["history"] = [h.created_by for h in backend.history("copied")]
        out["files"] = [f.path for layer in backend.image_layers("copied") for f in layer.files]
        out["volume"] = backend.create_volume("ipdu-data").name
        try:
            backend.run(RunOptions("copied", ("true",), auto_remove=True))
            out["run"] = "ran"
        except IPyDockError as exc:
            out["run"] = str(exc)
        with open(os.path.join(context, "Dockerfile.run"), "w") as f:
            f.write("FROM busybox\nRUN true\n")
        try:
            backend.build(context, dockerfile=os.path.join(context, "Dockerfile.run"), tags=["ran"])
            out["build_run"] = "built"
        except IPyDockError as exc:
            out["build_run"] = str(exc)
        return out

    found = as_user(uid, work, userns_refused=True)
    code, why = found["unshare"]
    assert code != 0 and "No space left on device" in why  # really refused, by the kernel
    info = found["info"]
    assert info["mode"] == "none" and "max_user_namespaces" in info["mode_reason"]
    assert info["storage_driver"] == "vfs"
    assert found["built"].startswith("sha256:")
    assert any("COPY" in h for h in found["history"])
    assert any(p.endswith("greeting") for p in found["files"])
    assert found["volume"] == "ipdu-data"
    assert "cannot run containers" in found["run"] and "max_user_namespaces" in found["run"]
    assert found["build_run"].startswith("RUN (Dockerfile line 2): not possible")
    assert "cannot run containers" in found["build_run"]
