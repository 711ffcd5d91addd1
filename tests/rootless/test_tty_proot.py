"""PRoot mode (no user namespaces at all): ``run -t`` still gets a terminal, one of the host's
(PRoot binds the host's /dev), held by the supervisor as in the other modes."""

from __future__ import annotations

import glob
import shutil
from typing import Any

from tests.conftest import require
from tests.containers.test_tty import PROMPT, _opts, _until
from tests.rootless.conftest import NOBODY, as_user


def test_a_terminal_in_proot_mode(nobody_dir: str) -> None:
    require(shutil.which("proot") is not None, "proot is not installed (Debian package proot)")

    def work() -> dict[str, Any]:
        import os

        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        backend.import_image(os.path.join(nobody_dir, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        out: dict[str, Any] = {"mode": backend.info()["mode"]}
        s = backend.run_terminal(_opts(("sh",), tty=True, interactive=True, auto_remove=True),
                                 console_size=(27, 88))  # fmt: skip
        _until(s.terminal, PROMPT)
        s.terminal.write(b"tty; stty size; echo $TERM\r")
        out["tty"] = _until(s.terminal, rb"xterm\r\n").decode()
        s.terminal.resize(31, 91)
        s.terminal.write(b"stty size; exit 3\r")
        out["resized"] = _until(s.terminal, None).decode()
        out["code"] = s.wait()
        return out

    left_before = set(glob.glob("/tmp/prooted-*"))
    found = as_user(NOBODY, work, userns_refused=True)
    assert set(glob.glob("/tmp/prooted-*")) - left_before == set()
    assert found["mode"] == "proot"
    assert "/dev/pts/" in found["tty"] and "\r\n27 88\r\nxterm\r\n" in found["tty"]
    assert "\r\n31 91\r\n" in found["resized"]
    assert found["code"] == 3
