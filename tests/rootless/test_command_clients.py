"""An ordinary user's ``ipydock`` commands reach that user's own command server, through the
Python client and the native one: the runtime dir is the user's (``$XDG_RUNTIME_DIR``), the
server, its workers and the containers theirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

from ipydock import native_launcher
from ipydock.cli import server
from tests.conftest import require
from tests.rootless.conftest import NOBODY, _user_python


def _workers(pid: int) -> list[int]:
    """The server's children but its fork-server helper: one worker per command running."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children
            if b"forkserver" not in Path(f"/proc/{c}/cmdline").read_bytes()]  # fmt: skip


def test_an_ordinary_users_commands_reach_their_own_server_through_either_client(
    nobody_dir: str,
) -> None:
    python = _user_python()
    require(bool(python), "no Python of this version that an unprivileged user may run")
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    require(native_launcher.compiler() is not None, "no C compiler (cc)")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = f"{package_root}{os.pathsep}{sysconfig.get_paths()['purelib']}"
    native = os.path.join(nobody_dir, "ipydock")  # built for the user's interpreter
    native_launcher.build(native, python=python, env={**os.environ, "PYTHONPATH": python_path})
    xdg = os.path.join(nobody_dir, "xdg")
    os.mkdir(xdg, 0o700)
    os.chown(xdg, NOBODY, NOBODY)
    runtime = os.path.join(xdg, f"ipydock-{NOBODY}")  # launcher.runtime_dir() for the user
    env = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env",
        "-u", "IPYDOCK_RUNTIME_DIR", "-u", "IPYDOCK_SERVER", f"HOME={nobody_dir}",
        f"XDG_RUNTIME_DIR={xdg}", f"PYTHONPATH={python_path}",
    ]  # fmt: skip
    store = os.path.join(nobody_dir, "store")
    imported = subprocess.run([*env, "IPYDOCK_SERVER=0", python, "-m", "ipydock", "--root",
                               store, "import", "--change", 'CMD ["sh"]',
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
        [sock] = [n for n in os.listdir(runtime) if n.endswith(".sock")]
        assert os.stat(os.path.join(runtime, sock)).st_uid == NOBODY
        for client in ([python, "-m", "ipydock"], [native]):
            cat = subprocess.Popen([*env, *client, "--root", store, "run", "-i", "--rm",
                                    "--network", "none", "busybox", "cat"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)  # fmt: skip
            assert cat.stdin is not None and cat.stdout is not None
            cat.stdin.write(b"as nobody\n")
            cat.stdin.flush()
            assert cat.stdout.readline() == b"as nobody\n"  # the container runs
            [worker] = _workers(serving.pid)  # in the user's server
            assert os.stat(f"/proc/{worker}").st_uid == NOBODY
            out, err = cat.communicate(timeout=60)
            assert (cat.returncode, out, err) == (0, b"", b""), (client, err)
    finally:
        server.stop(runtime)
        serving.wait()
