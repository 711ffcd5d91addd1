"""An ordinary user's ``ipydock run -it`` on a terminal: the CLI, its command server and the
container all that user's (a user namespace each), the terminal the user's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig

from ipydock.cli import server
from ipydock.engine.runtime.console import set_size
from tests.conftest import require
from tests.containers.test_tty import PROMPT, Screen
from tests.rootless.conftest import NOBODY, _user_python


def test_run_it_as_an_ordinary_user_with_and_without_its_command_server(
    nobody_dir: str,
) -> None:
    python = _user_python()
    require(bool(python), "no Python of this version that an unprivileged user may run")
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runtime = os.path.join(nobody_dir, "run")
    env = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env",
        f"HOME={nobody_dir}", f"IPYDOCK_RUNTIME_DIR={runtime}",
        f"PYTHONPATH={package_root}{os.pathsep}{sysconfig.get_paths()['purelib']}",
    ]  # fmt: skip
    store = os.path.join(nobody_dir, "store")

    def ipydock(served: bool) -> list[str]:
        return [*env, f"IPYDOCK_SERVER={int(served)}", python, "-m", "ipydock", "--root", store]

    imported = subprocess.run([*ipydock(False), "import", "--change", 'CMD ["sh"]',
                               os.path.join(nobody_dir, "busybox.tar.gz"), "busybox"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    r, w = os.pipe()
    serving = subprocess.Popen([*env, python, "-m", "ipydock.cli.server", "serve",
                                "--ready-fd", str(w)], pass_fds=[w])  # fmt: skip
    os.close(w)
    try:
        with os.fdopen(r, "rb") as ready:
            assert ready.readline() == b"ready\n"
        for served in (True, False):  # through nobody's command server, then without it
            s = Screen([*ipydock(served), "run", "-it", "--rm", "--network", "none", "busybox",
                        "sh"], rows=29, cols=81)  # fmt: skip
            try:
                s.expect(PROMPT)
                s.send(b"id -u; stty size\r")
                s.expect(rb"\r\n0\r\n29 81\r\n")  # root in its user namespace
                s.expect(PROMPT)
                set_size(s.master, 33, 99)
                s.size_becomes(33, 99)
                s.send(b"exit 3\r")
                assert s.wait() == 3
                assert s.restored()
            finally:
                s.close()
    finally:
        left = subprocess.run([*ipydock(False), "ps", "-aq"], capture_output=True, text=True)
        if left.stdout.split():  # a failed check leaves its (detached) container running
            subprocess.run([*ipydock(False), "rm", "-f", *left.stdout.split()], check=False)
        server.stop(runtime)
        serving.wait()
