"""Rootless containers get the same seccomp filter and flags: an unprivileged user (nobody, in
a forked child that cannot go back) runs them on a store it owns; judged here as root."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ipydock.models.containers import RunOptions
from tests.rootless.conftest import NOBODY, as_user

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"


def test_rootless_containers_are_filtered_as_root_ones(nobody_dir: str, escape_helper: str) -> None:
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox")
        out: dict[str, Any] = {"mode": backend.info()["mode"]}

        def run(script: str, **flags: Any) -> str:
            seen: list[str] = []
            opts = RunOptions("busybox", ("sh", "-c", script), auto_remove=True,
                              volumes=(f"{escape_helper}:/h:ro",), **flags)  # fmt: skip
            backend.run(opts, output=lambda _s, text: seen.append(text))
            return "".join(seen)

        probe = f"{STATUS}; /h/escape keyctl; /h/escape unshare-user-mount; ulimit -n"
        out["default"] = run(probe)
        out["unconfined"] = run(probe, security_opt=("seccomp=unconfined",))
        out["nnp_off"] = run(probe, security_opt=("no-new-privileges:false",),
                             ulimits=("nofile=64:64",))  # fmt: skip
        out["init"] = run("cat /proc/1/cmdline", init=True)
        backend.close()
        return out

    found = as_user(NOBODY, work)
    assert found["mode"] == "rootless"
    default = found["default"]
    assert "NoNewPrivs:\t1" in default and "Seccomp:\t2" in default
    assert "keyctl: EPERM" in default and "unshare: EPERM" in default
    unconfined = found["unconfined"]
    assert "Seccomp:\t0" in unconfined and "keyctl: ok" in unconfined
    nnp_off = found["nnp_off"]  # loaded with CAP_SYS_ADMIN of the user's own namespace
    assert "NoNewPrivs:\t0" in nnp_off and "Seccomp:\t2" in nnp_off and "keyctl: EPERM" in nnp_off
    assert nnp_off.split()[-1] == "64"
    assert found["init"].startswith("/sbin/docker-init\0--\0sh")


pytestmark = pytest.mark.root
