"""Rootless: an unprivileged user runs containers in user namespaces of its own.

The test forks, drops to ``nobody`` for good (no capabilities, no way back) and drives the real
engine from there on a store that user owns; the results come back as JSON and are checked
here, with the leak checks. Nothing runs as root in the child.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from ipydock.errors import CommandNotFound
from ipydock.models.containers import RunOptions
from tests.conftest import require
from tests.containers.conftest import settled_processes_using
from tests.rootless.conftest import NOBODY, as_user


@pytest.fixture
def user_root(busybox_tgz: str) -> Iterator[str]:
    """A store directory and the busybox tarball, owned by nobody, where nobody can reach."""
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    try:
        pwd.getpwuid(NOBODY)
    except KeyError:
        require(False, "no user 'nobody' (65534)")
    base = tempfile.mkdtemp(prefix="ipydock-rootless-")
    os.chmod(base, 0o755)
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    for path in (base, os.path.join(base, "busybox.tar.gz")):
        os.chown(path, NOBODY, NOBODY)
    try:
        yield base
        store = os.path.join(base, "store")
        assert settled_processes_using(store) == []
        assert not os.listdir(os.path.join(store, "containers"))
        assert [n for n in os.listdir(os.path.join(store, "tmp")) if "container" in n] == []
    finally:
        shutil.rmtree(base)


def test_an_unprivileged_user_runs_containers(user_root: str) -> None:
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(user_root, "store")), warm=False)
        out: dict[str, Any] = {"euid": os.geteuid(), "mode": backend.info()["mode"]}
        backend.import_image(os.path.join(user_root, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        lines: list[str] = []

        def run(*command: str, **kw: Any) -> int:
            lines.clear()
            opts = RunOptions("busybox", command, auto_remove=True, **kw)
            result = backend.run(opts, output=lambda _stream, text: lines.append(text))
            return int(result.exit_code or 0)

        script = "id -u; cat /proc/self/uid_map; echo $$; hostname; ls /dev/null; ps -o pid"
        out["run"] = (run("sh", "-c", script), "".join(lines).split())
        try:
            run("nosuch")
        except CommandNotFound as exc:
            out["missing"] = (exc.exit_code, str(exc))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out["limited"] = run("true", memory="64m")
        out["warnings"] = [str(w.message) for w in caught]
        # copy-on-write, diff, commit, exec, stop: a detached container
        cid = backend.run(RunOptions("busybox", ("sh", "-c", "echo x > /etc/made; while :; "
                          "do sleep 0.05; done")), detach=True).id  # fmt: skip
        out["exec"] = backend.exec(cid, ["test", "-f", "/etc/made"])
        out["diff"] = [(c.kind, c.path) for c in backend.diff(cid)]
        upper = os.path.join(user_root, "store", "containers", cid, "upper")
        out["upper_owner"] = os.stat(os.path.join(upper, "etc", "made")).st_uid
        out["stop"] = backend.stop_container(cid, timeout=1) == cid
        out["status"] = backend.inspect_container(cid).state["Status"]
        backend.commit(cid, "snap")
        backend.remove_container(cid)
        out["fresh_image"] = run("test", "-f", "/etc/made")
        lines.clear()
        backend.run(RunOptions("snap", ("cat", "/etc/made"), auto_remove=True),
                    output=lambda _s, text: lines.append(text))  # fmt: skip
        out["committed"] = "".join(lines)
        return out

    found = as_user(NOBODY, work)
    assert found["euid"] == NOBODY and found["mode"] == "rootless"
    code, words = found["run"]
    assert code == 0
    uid, inside, outside, count, pid, *_ = words
    assert (uid, inside, outside, count) == ("0", "0", str(NOBODY), "1")  # root = nobody
    assert pid == "1" and "/dev/null" in words
    assert found["missing"][0] == 127 and "executable file not found" in found["missing"][1]
    assert found["limited"] == 0
    assert any("rootless mode" in w and "--memory" in w for w in found["warnings"])
    assert found["exec"] == 0
    assert ("A", "/etc/made") in [tuple(d) for d in found["diff"]]
    assert found["upper_owner"] == NOBODY  # the container's root writes as the user
    assert found["stop"] and found["status"] == "exited"
    assert found["fresh_image"] == 1  # the image was not touched
    assert found["committed"] == "x\n"


def test_the_native_pid_1_builds_the_world_python_builds_for_a_user_too(user_root: str) -> None:
    """Rootless starts are spawned (no prepared pid 1): the fork execs ``ipydock-pid1`` where
    the user may run it; the container sees what Python's spawn builds
    (``IPYDOCK_NATIVE_PID1=0``), device nodes bound from the host included."""
    from tests.containers.test_prepared_start import WORLD

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.runtime import pid1
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(os.path.join(user_root, "store")), warm=False)
        backend.import_image(os.path.join(user_root, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        out: dict[str, Any] = {"native_pid1": pid1.path()}
        for mode, value in (("native", "1"), ("python", "0")):
            os.environ["IPYDOCK_NATIVE_PID1"] = value
            opts = RunOptions("busybox", WORLD, auto_remove=True, network="none",
                              hostname="same")  # fmt: skip
            out[mode] = _run_collecting(backend, opts)
        del os.environ["IPYDOCK_NATIVE_PID1"]
        backend.close()
        return out

    out = as_user(NOBODY, work)
    assert out.pop("native_pid1", "") is not None, "nobody cannot run ipydock-pid1"
    assert out["native"] == out["python"] and out["native"][0] == 0
    assert "/dev/null" in out["native"][1]


def _run_collecting(backend: Any, opts: RunOptions) -> tuple[int | None, str]:
    lines: list[str] = []
    result = backend.run(opts, output=lambda _stream, text: lines.append(text))
    return result.exit_code, "".join(lines)
