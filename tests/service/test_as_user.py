"""An ordinary user serves the API from their own store on their own socket
(``$XDG_RUNTIME_DIR/ipydock/docker.sock``, mode 0600) and runs ``docker run --rm`` through it."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.containers.conftest import settled_processes_using
from tests.rootless.conftest import NOBODY, as_user

PRELOAD = ("ipydock.service", "ipydock.service.routes", "ipydock.service.state",
           "ipydock.server.watch", "tornado.httpserver", "tornado.netutil",
           "ipydock.engine.store.archive")  # fmt: skip


@pytest.fixture
def user_dir(busybox_tgz: str) -> Iterator[str]:
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    require(os.path.exists("/usr/bin/docker"), "docker.io (the docker client) is not installed")
    base = tempfile.mkdtemp(prefix="ipdu-service-")
    os.chmod(base, 0o755)
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    os.makedirs(os.path.join(base, "run"))
    for dirpath, dirs, files in os.walk(base):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in dirs + files)]:
            os.chown(name, NOBODY, NOBODY)
    try:
        yield base
        assert settled_processes_using(os.path.join(base, "store")) == []
    finally:
        shutil.rmtree(base)


def test_a_user_serves_the_api_on_their_socket(user_dir: str) -> None:
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.service import default_uri, serve

        os.environ["XDG_RUNTIME_DIR"] = os.path.join(user_dir, "run")
        backend = BundledBackend(Store(os.path.join(user_dir, "store")))
        backend.import_image(os.path.join(user_dir, "busybox.tar.gz"), "busybox")
        uri = default_uri()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the service, in a process of its own
            code = 1
            try:
                os.close(r)
                serve(backend, None, idle=0, ready=lambda _uri: os.write(w, b"ready"))
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        ready = os.read(r, 5)
        os.close(r)
        env = {**os.environ, "DOCKER_HOST": uri, "DOCKER_BUILDKIT": "0"}
        ran = subprocess.run(["/usr/bin/docker", "run", "--rm", "--network", "none", "busybox",
                              "sh", "-c", "echo hello from $(id -u)"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        mode = stat.S_IMODE(os.stat(uri.removeprefix("unix://")).st_mode)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        return {"uri": uri, "ready": ready.decode(), "mode": mode, "out": ran.stdout,
                "err": ran.stderr, "code": ran.returncode, "exit": status,
                "left": os.path.exists(uri.removeprefix("unix://"))}  # fmt: skip

    found = as_user(NOBODY, work, PRELOAD)
    assert found["uri"] == f"unix://{user_dir}/run/ipydock/docker.sock"
    assert found["ready"] == "ready" and found["mode"] == 0o600
    assert (found["code"], found["out"], found["err"]) == (0, "hello from 0\n", "")
    assert found["exit"] == 0 and not found["left"]


def test_a_user_the_socket_mode_excludes_is_refused(tmp_path, busybox_tgz: str) -> None:
    """root's socket is 0660 root:root: another user cannot connect (the kernel says no, and
    docker's client prints the line it prints for dockerd's socket)."""
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    from ipydock.testing import ServiceProcess

    base = tempfile.mkdtemp(prefix="ipdu-service-root-")
    os.chmod(base, 0o755)  # reachable: the socket's own mode is what refuses
    svc = ServiceProcess(str(tmp_path / "store"), base)
    svc.start()
    try:
        mode = stat.S_IMODE(os.stat(svc.socket).st_mode)

        def work() -> dict[str, Any]:
            env = {**os.environ, "DOCKER_HOST": svc.host}
            done = subprocess.run(["/usr/bin/docker", "version", "--format", "{{.Server}}"],
                                  env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
            return {"code": done.returncode, "err": done.stderr}

        found = as_user(NOBODY, work)
    finally:
        assert "Traceback" not in svc.stop()
    assert mode == 0o660
    assert found["code"] == 1 and "permission denied" in found["err"]
