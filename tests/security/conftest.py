"""The escape suite's fixtures: a default container engine, a static helper for the system calls
busybox has no applet for, things on the host to reach for, and the session's tally.

::

    session:  escape_helper (gcc -static)  host_bait (marker file, sleeping process, loop disk)
    each test: one attempt from inside a default container --> judged here, on the host
    end:      "escape attempts: N, contained: N" (and the same under docker, when it ran)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import require
from tests.containers.conftest import engine  # noqa: F401 - the bundled engine, leak-checked
from tests.rootless.conftest import nobody_dir  # noqa: F401 - a store nobody owns, leak-checked
from tests.security.tally import TALLY

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "ipds-"  # this suite's host objects


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, results in TALLY.results.items():
        contained = sum(results.values())
        line = f"escape attempts ({name}): {len(results)}, contained: {contained}"
        if name == "ipydock":
            line = f"escape attempts: {len(results)}, contained: {contained}"
        terminalreporter.write_line(line)
        for attempt, ok in sorted(results.items()):
            if not ok:
                terminalreporter.write_line(f"  NOT CONTAINED: {attempt}")


@pytest.fixture(scope="session")
def escape_helper() -> Iterator[str]:
    """A directory holding ``escape`` (tests/security/escape_helper.c, linked statically so it
    runs in busybox) and nothing else; containers get it read-only at ``/h``."""
    gcc = shutil.which("gcc")
    require(gcc is not None, "gcc is not installed (apt-get install gcc libc6-dev)")
    directory = tempfile.mkdtemp(prefix=PREFIX + "helper-")
    os.chmod(directory, 0o755)
    try:
        subprocess.run([str(gcc), "-static", "-O1", "-o", os.path.join(directory, "escape"),
                        os.path.join(HERE, "escape_helper.c")], check=True,
                       capture_output=True)  # fmt: skip
        yield directory
    finally:
        shutil.rmtree(directory)


@dataclass
class Bait:
    """What a container must not reach: ``secret`` (a host file holding ``token``), a host
    process ``pid``, a loop device ``disk`` over ``backing`` that starts with ``token``."""

    dir: str
    secret: str
    token: str
    pid: int
    disk: str
    backing: str


@pytest.fixture(scope="session")
def bait() -> Iterator[Bait]:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("losetup") is not None, "losetup (util-linux) is not installed")
    directory = tempfile.mkdtemp(prefix=PREFIX + "bait-")
    os.chmod(directory, 0o755)
    token = "HOST-SECRET-" + secrets.token_hex(8)
    secret = os.path.join(directory, "secret")
    with open(secret, "w") as f:
        f.write(token + "\n")
    backing = os.path.join(directory, "disk.img")
    with open(backing, "wb") as f:
        f.write(token.encode() + bytes(1 << 20))
    disk = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    sleeper = subprocess.Popen(["sleep", "3600"])
    try:
        yield Bait(directory, secret, token, sleeper.pid, disk, backing)
    finally:
        sleeper.kill()
        sleeper.wait()
        subprocess.run(["losetup", "--detach", disk], check=True)
        shutil.rmtree(directory)
