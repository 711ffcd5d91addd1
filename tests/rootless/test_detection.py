"""Why rootless mode cannot work here, named with the fix: each cause made real where this
machine allows it (a seccomp filter, a PATH without newuidmap, a user without a range), and
the AppArmor sysctl, which this kernel does not have, read from a stand-in ``/proc/sys``.

The sysctl ``user.max_user_namespaces=0`` is made real in ``test_refused.py`` and
``test_proot.py`` (a user namespace of the test whose limit is 0).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.rootless.conftest import NOBODY, as_user

CLONE_NEWUSER = 0x10000000


def test_apparmor_restriction_and_the_sysctls_are_named_with_their_fix(tmp_path: Path) -> None:
    from ipydock.engine.runtime.rootless import refusal

    (tmp_path / "user").mkdir()
    (tmp_path / "kernel").mkdir()
    (tmp_path / "user" / "max_user_namespaces").write_text("15000\n")
    assert refusal(str(tmp_path)) == ""
    (tmp_path / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    why = refusal(str(tmp_path))
    assert "AppArmor" in why and "kernel.apparmor_restrict_unprivileged_userns=1" in why
    assert "set it to 0" in why and "AppArmor profile with userns" in why
    (tmp_path / "kernel" / "unprivileged_userns_clone").write_text("0\n")
    assert "sysctl -w kernel.unprivileged_userns_clone=1" in refusal(str(tmp_path))
    (tmp_path / "user" / "max_user_namespaces").write_text("0\n")
    assert "sysctl -w user.max_user_namespaces=15000" in refusal(str(tmp_path))


def _block_user_namespaces() -> None:
    """A seccomp filter as container runtimes install: unshare and clone with CLONE_NEWUSER
    fail with EPERM, clone3 (its flags are behind a pointer) with ENOSYS so libc falls back."""
    import pyseccomp as seccomp

    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for call in ("unshare", "clone"):
        flags = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
        f.add_rule(seccomp.ERRNO(errno.EPERM), call, flags)
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    f.load()


def test_a_seccomp_filter_that_blocks_user_namespaces_is_named(
    nobody_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyseccomp")
    monkeypatch.setenv("IPYDOCK_PROOT", "")  # no PRoot: the run is refused, with the cause

    def work() -> dict[str, Any]:
        import subprocess

        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError
        from ipydock.models.containers import RunOptions

        _block_user_namespaces()
        tried = subprocess.run(["unshare", "--user", "true"], capture_output=True, text=True)
        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        info = backend.info()
        try:
            backend.run(RunOptions("busybox", ("true",), auto_remove=True))
            refused = ""
        except IPyDockError as exc:
            refused = str(exc)
        return {"unshare": [tried.returncode, tried.stderr], "mode": info["mode"],
                "reason": info["mode_reason"], "refused": refused}  # fmt: skip

    found = as_user(NOBODY, work, preload=("pyseccomp",))
    code, why = found["unshare"]
    assert code != 0 and "Operation not permitted" in why  # really refused, by the filter
    assert found["mode"] == "none"
    for text in (found["reason"], found["refused"]):
        assert "a seccomp filter blocks user namespaces" in text, text
        assert "--security-opt seccomp=unconfined" in text and "proot" in text


def test_a_missing_newuidmap_is_named_when_other_ids_are_needed(
    ranged_user: tuple[int, str], busybox_tgz: str
) -> None:
    """The user has a range, but the setuid helpers are not on its PATH."""
    uid, home = ranged_user
    base = tempfile.mkdtemp(prefix="ipdu-nouidmap-", dir=home)
    os.chown(base, uid, uid)
    tools = os.path.join(base, "bin")  # every tool of /usr/bin but newuidmap and newgidmap
    os.mkdir(tools)
    for name in os.listdir("/usr/bin"):
        if name not in ("newuidmap", "newgidmap"):
            os.symlink(os.path.join("/usr/bin", name), os.path.join(tools, name))
    tarball = os.path.join(base, "busybox.tar.gz")
    shutil.copy(busybox_tgz, tarball)
    os.chown(tarball, uid, uid)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError
        from ipydock.models.containers import RunOptions

        os.environ["PATH"] = tools
        backend = BundledBackend(Store(os.path.join(base, "store")), warm=False)
        backend.import_image(tarball, "busybox", changes=['CMD ["sh"]'])
        try:
            backend.run(RunOptions("busybox", ("id",), user="1000", auto_remove=True))
            refused = ""
        except IPyDockError as exc:
            refused = str(exc)
        return {"refused": refused, "mapping": backend.info()["id_mapping"]}

    found = as_user(uid, work)
    for text in (found["refused"], found["mapping"]):
        assert "newuidmap/newgidmap are not installed (Debian package uidmap)" in text, text
    assert "not 1000:0" in found["refused"] or "not 1000:" in found["refused"]


def test_without_a_range_the_usermod_line_is_given(nobody_dir: str) -> None:
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        context = os.path.join(nobody_dir, "ctx")
        os.mkdir(context)
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write("FROM busybox\nUSER 1000\nRUN id\n")
        try:
            backend.build(context, tags=["as-1000"])
            refused = ""
        except IPyDockError as exc:
            refused = str(exc)
        return {"refused": refused}

    found = as_user(NOBODY, work)
    line = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody"
    assert line in found["refused"], found["refused"]
    assert "no /etc/subuid and /etc/subgid range for nobody" in found["refused"]
