"""The rootless suite: the engine driven by an unprivileged user, as a data scientist runs it.

Each test forks a child that becomes the user for good (no capabilities, no way back) and
works on a store that user owns; results come back as JSON and are checked here as root, with
the leak checks. The user's Python: this machine's interpreter lives where only root may read
(``/root/.pyenv``), so the child imports the engine before it drops privileges and the helper
processes it starts (the build's fork server) use the distribution's Python of the same
version with the same packages, as a user's own installation would.

::

    pytest (root) --fork--> child: setgroups([]), setresgid, setresuid(user) --> work()
          ^                                                                   |
          +---------------------- JSON (or the traceback) --------------------+
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.containers.conftest import settled_processes_using

NOBODY = 65534
PREFIX = "ipdu-"  # this suite's host objects (temp dirs, users)


def _user_python() -> str:
    """An interpreter of this Python's version that any user may run."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        path = os.path.realpath(candidate)
        if _world_reachable(path):
            return path
    return ""


def _world_reachable(path: str) -> bool:
    """Every directory on the way searchable and the file executable by others."""
    parts = path.split("/")
    for i in range(2, len(parts)):
        try:
            if not os.stat("/".join(parts[:i])).st_mode & 0o001:
                return False
        except OSError:
            return False
    return os.path.isfile(path) and bool(os.stat(path).st_mode & 0o001)


def _import_everything() -> None:
    """What the child needs must be imported before it drops privileges (lazy imports too)."""
    import ipydock.engine

    for info in pkgutil.walk_packages(ipydock.engine.__path__, "ipydock.engine."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    importlib.import_module("ipydock.backends")
    importlib.import_module("pyseccomp")  # the seccomp compiler imports it when first needed


def as_user(
    uid: int,
    work: Callable[[], dict[str, Any]],
    preload: tuple[str, ...] = (),
    *,
    userns_refused: bool = False,
    as_root_first: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``work`` in a forked child that has become ``uid`` (and its group) for good;
    ``preload`` names more modules to import first; ``as_root_first`` runs in the child before
    it drops privileges (e.g. mounts in a mount namespace of its own, which end with it and
    with what the user starts from it). ``userns_refused``: the child first moves
    into a user namespace of its own (ids 0-65535 mapped as they are) whose
    ``user.max_user_namespaces`` is 0, so the user can create none, as on hosts that disable
    them; the host's setting is not touched."""
    python = _user_python()
    require(bool(python), "no Python of this version that an unprivileged user may run")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join([package_root, sysconfig.get_paths()["purelib"]])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            _import_everything()
            for name in preload:
                importlib.import_module(name)
            if as_root_first is not None:
                as_root_first()
            if userns_refused:
                _refuse_user_namespaces()
            gid = pwd.getpwuid(uid).pw_gid
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            sys.executable = python  # for the helpers the engine starts
            os.environ["PYTHONPATH"] = path
            os.environ["HOME"] = pwd.getpwuid(uid).pw_dir
            result = work()
            os.write(w, json.dumps(result).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the pipe
            os.write(w, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert "error" not in result, result["error"]
    return result


def _refuse_user_namespaces() -> None:
    """Enter a user namespace (identity map of 0-65535, written by a helper still outside)
    and set its ``user.max_user_namespaces`` to 0: nothing below may create one."""
    from ipydock.engine.runtime.plan import CLONE_NEWUSER
    from ipydock.engine.runtime.spawn import unshare

    me = os.getpid()
    go_r, go_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(go_w)
            if os.read(go_r, 1) == b"u":
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/{me}/{name}", "w") as f:
                        f.write("0 0 65536\n")
                code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    unshare(CLONE_NEWUSER)
    os.write(go_w, b"u")
    os.close(go_w)
    _, raw = os.waitpid(helper, 0)
    assert raw == 0, "could not map the ids of the test's user namespace"
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")


def user_dir(uid: int) -> str:
    """A temp dir ``uid`` owns, where it can reach (``/tmp``)."""
    base = tempfile.mkdtemp(prefix=PREFIX + "rootless-")
    os.chmod(base, 0o755)
    os.chown(base, uid, uid)
    return base


@pytest.fixture
def nobody_dir(busybox_tgz: str) -> Iterator[str]:
    """A store dir and the busybox tarball owned by nobody; checked for leaks afterwards."""
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    try:
        pwd.getpwuid(NOBODY)
    except KeyError:
        require(False, "no user 'nobody' (65534)")
    base = user_dir(NOBODY)
    shutil.copy(busybox_tgz, os.path.join(base, "busybox.tar.gz"))
    os.chown(os.path.join(base, "busybox.tar.gz"), NOBODY, NOBODY)
    try:
        yield base
        store = os.path.join(base, "store")
        assert settled_processes_using(store) == []
        if os.path.isdir(os.path.join(store, "containers")):
            assert not os.listdir(os.path.join(store, "containers"))
    finally:
        shutil.rmtree(base)


@pytest.fixture(scope="session")
def debian_tar() -> Iterator[str]:
    """A Debian minbase root as ``mmdebstrap`` makes it (device nodes in /dev included), as a
    tar anyone may read; made once per session (about 20 s, from the distribution's mirror)."""
    require(os.geteuid() == 0, "mmdebstrap's root mode")
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap is not installed")
    suite = _host_suite()
    require(bool(suite), "not a Debian host (no suite to bootstrap)")
    base = tempfile.mkdtemp(prefix=PREFIX + "debian-")
    os.chmod(base, 0o755)
    tar = os.path.join(base, "debian.tar")
    try:
        proc = subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--quiet", suite, tar],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        os.chmod(tar, 0o644)
        yield tar
    finally:
        shutil.rmtree(base)


def _host_suite() -> str:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        return ""
    if fields.get("ID") != "debian":
        return ""
    return fields.get("VERSION_CODENAME", "").strip('"')


def _subid_lines(name: str) -> list[str]:
    found = []
    for path in ("/etc/subuid", "/etc/subgid"):
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            found += [f"{path}:{line.strip()}" for line in f if line.split(":")[0] == name]
    return found


@pytest.fixture(scope="module")
def ranged_user() -> Iterator[tuple[int, str]]:
    """A throwaway user (``ipdu-…``) with a subordinate id range of 65536, and a home dir it
    owns in /tmp; removed with its ranges afterwards. Yields (uid, home)."""
    require(os.geteuid() == 0, "creating a user needs root")
    require(shutil.which("useradd") is not None, "no useradd (package passwd)")
    require(shutil.which("newuidmap") is not None, "newuidmap is not installed (package uidmap)")
    name = PREFIX + os.urandom(3).hex()
    home = tempfile.mkdtemp(prefix=PREFIX + "home-")
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", name], check=True)
    try:
        if len(_subid_lines(name)) < 2:  # useradd adds a range where login.defs says so
            start = 3_000_000_000 + int.from_bytes(os.urandom(2), "big") * 65536 % 900_000_000
            span = f"{start}-{start + 65535}"
            subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name],
                           check=True)  # fmt: skip
        uid = pwd.getpwnam(name).pw_uid
        os.chmod(home, 0o755)
        os.chown(home, uid, uid)
        yield uid, home
    finally:
        uid = pwd.getpwnam(name).pw_uid
        left = _settled_processes_of(uid)  # userdel refuses while the user runs anything
        deleted = subprocess.run(["userdel", name], check=False, capture_output=True, text=True)
        for line in _subid_lines(name):  # an older userdel leaves the ranges
            path, _, entry = line.partition(":")
            _drop_line(path, entry)
        assert _subid_lines(name) == []
        shutil.rmtree(home, ignore_errors=True)
        assert left == [] and deleted.returncode == 0, (left, deleted.stderr)


def _settled_processes_of(uid: int, timeout: float = 30) -> list[str]:
    """The live processes of ``uid`` once they had ``timeout`` seconds to exit (a ``--rm``
    container's supervisor finishes after its starter), as ``pid: name (parent ppid)``."""
    import select

    def running() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        found.append(int(entry))
        return found

    for pid in running():
        with contextlib.suppress(OSError):
            fd = os.pidfd_open(pid)
            try:
                select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
    out = []
    for pid in running():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            if not status.get("State", "").startswith("Z"):  # a zombie is gone, unreaped
                out.append(f"{pid}: {status.get('Name', '')} (parent {status.get('PPid')})")
    return out


def _drop_line(path: str, entry: str) -> None:
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(line for line in lines if line.strip() != entry)
