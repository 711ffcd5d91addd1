"""An unprivileged user pulls, pushes and logs in with a store and a docker config of its own."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator

import pytest

from ipydock.backends import BundledBackend
from ipydock.testing import LocalRegistry
from tests.conftest import require
from tests.registry.conftest import PASSWORD, USER

NOBODY = 65534


@pytest.fixture
def home() -> Iterator[str]:
    require(os.geteuid() == 0, "the test switches to an unprivileged user")
    try:
        pwd.getpwuid(NOBODY)
    except KeyError:
        require(False, "no user 'nobody' (65534)")
    base = tempfile.mkdtemp(prefix="ipdr-rootless-")
    os.chmod(base, 0o755)
    os.chown(base, NOBODY, NOBODY)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def as_nobody(home: str, registry_host: str, commands: list[list[str]]) -> list[list]:
    """Run CLI commands in a forked child that has become nobody for good; return
    [exit code, stdout, error] per command. This machine's Python lives where only root may
    read, so the child imports and warms up what it needs (the HTTP client too) first."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            _warm_up(registry_host)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.environ.update(HOME=home, IPYDOCK_ROOT=os.path.join(home, "store"))
            os.environ.pop("DOCKER_CONFIG", None)
            os.chdir(home)
            results = [_cli(words) for words in commands]
            os.write(w, json.dumps(results).encode())
            code = 0
        except BaseException:
            os.write(w, json.dumps([[99, "", traceback.format_exc()]]).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _warm_up(host: str) -> None:
    import concurrent.futures.thread  # noqa: F401
    import getpass  # noqa: F401

    import ipydock.cli
    import ipydock.engine.registry.login  # noqa: F401
    import ipydock.engine.registry.pull  # noqa: F401
    import ipydock.engine.registry.push  # noqa: F401
    import ipydock.engine.store.archive  # noqa: F401
    import ipydock.engine.store.snapshots  # noqa: F401
    from ipydock.engine.registry.client import Registry

    ipydock.cli.load_commands()
    with Registry(host, use_stored_credentials=False) as reg:
        reg.ping()
        reg.blob_size("ipdr/warm-up", "sha256:" + "0" * 64)


def _cli(words: list[str]) -> list:
    import io

    import ipydock.cli
    from ipydock.errors import IPyDockError

    out = io.StringIO()
    stdin, sys.stdin = sys.stdin, io.StringIO(PASSWORD)
    try:
        return [ipydock.cli.run(words, out), out.getvalue(), ""]
    except IPyDockError as exc:
        return [1, out.getvalue(), str(exc)]
    finally:
        sys.stdin = stdin


def test_an_unprivileged_user_pulls_pushes_and_logs_in(
    backend: BundledBackend, busybox: str, repo: str, home: str, auth_registry: LocalRegistry,
    registry: LocalRegistry,
) -> None:  # fmt: skip
    backend.tag("busybox", f"{repo}:root")
    backend.push(f"{repo}:root")

    private = f"{auth_registry.host}/ipdr/nobody:1"
    results = as_nobody(home, registry.host, [
        ["pull", f"{repo}:root"],
        ["images", "-q", "--no-trunc"],
        ["tag", f"{repo}:root", private],
        ["login", "-u", USER, "--password-stdin", auth_registry.host],
        ["push", private],
    ])  # fmt: skip
    assert all(code == 0 for code, _, _ in results), results
    (_, pulled, _), (_, ids, _), _, (_, login, _), (_, pushed, _) = results
    assert pulled.splitlines()[-1] == f"{repo}:root"
    assert ids.split() == [busybox]  # docker's image ID, as root got it
    blob_dir = os.path.join(home, "store", "blobs", "sha256")
    assert {os.stat(os.path.join(blob_dir, n)).st_uid for n in os.listdir(blob_dir)} == {NOBODY}
    assert login == "Login Succeeded\n"
    config = os.path.join(home, ".docker", "config.json")
    assert os.stat(config).st_uid == NOBODY
    with open(config) as f:
        assert auth_registry.host in json.load(f)["auths"]
    assert pushed.splitlines()[-1].startswith("1: digest: sha256:")
