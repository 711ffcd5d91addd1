"""The server extension as users run it: JupyterLab started by an ordinary user (nobody), on a
store that user owns; the panel's lists and its live updates work without root."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.lab.conftest import PREFIX, Server, free_port, stop_process, wait_until_answering
from tests.rootless.conftest import NOBODY, _user_python

pytestmark = pytest.mark.root


@pytest.fixture
def user_server(busybox_tgz: str) -> Iterator[tuple[Server, dict[str, str], str]]:
    """(server, the user's environment, its Python) for a jupyter server run by nobody."""
    require(os.geteuid() == 0, "the test starts the server as another user")
    python = _user_python()
    require(bool(python), "no Python of this version that an unprivileged user may run")
    pwd.getpwuid(NOBODY)
    base = tempfile.mkdtemp(prefix=f"{PREFIX}-user-")
    os.chmod(base, 0o755)
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    for name in ("busybox.tar.gz", ""):
        os.chown(os.path.join(base, name), NOBODY, NOBODY)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": base,
        "PYTHONPATH": os.pathsep.join([repo, sysconfig.get_paths()["purelib"]]),
        "IPYDOCK_ROOT": os.path.join(base, "store"),
        "IPYDOCK_RUNTIME_DIR": os.path.join(base, "run"),
        "JUPYTER_CONFIG_DIR": os.path.join(base, ".cfg"),
        "JUPYTER_RUNTIME_DIR": os.path.join(base, ".run"),
        "JUPYTER_DATA_DIR": os.path.join(base, ".data"),
    }
    as_nobody = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    subprocess.run([python, "-m", "ipydock", "import", "-c", 'CMD ["sh"]',
                    os.path.join(base, "busybox.tar.gz"), "ipdl-busybox"],
                   env=env, check=True, capture_output=True, **as_nobody)  # fmt: skip
    port, token = free_port(), secrets.token_hex(16)
    log = os.path.join(base, "server.log")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [python, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={base}",
             "--ServerApp.jpserver_extensions=ipydock.server=True"],
            env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            **as_nobody,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", token, env["IPYDOCK_ROOT"], base)
    try:
        wait_until_answering(proc, server.url, token, log)
        yield server, env, python
    finally:
        stop_process(proc)
        subprocess.run([python, "-m", "ipydock", "system", "server", "stop"], env=env,
                       capture_output=True, **as_nobody)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def test_an_ordinary_user_serves_the_panel_and_its_live_updates(user_server) -> None:
    server, env, python = user_server
    assert os.stat(server.root).st_uid == NOBODY  # the user's store, made by the user's CLI
    assert "ipdl-busybox" in {r["repository"] for r in server.get("images")}
    events = server.events()
    try:
        assert events.next(10) == "hello"
        subprocess.run([python, "-m", "ipydock", "tag", "ipdl-busybox", "ipdl-mine:1"],
                       env=env, check=True, capture_output=True, user=NOBODY, group=NOBODY,
                       extra_groups=[])  # fmt: skip
        done = time.monotonic()
        assert events.next(5) == "changed"
        assert time.monotonic() - done < 1.0
    finally:
        events.close()
    assert "ipdl-mine" in {r["repository"] for r in server.get("images")}
    status, body = server.call("DELETE", "images/ipdl-mine:1")
    assert status == 200, body
