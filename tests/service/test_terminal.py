"""``docker run -it`` and ``docker exec -it`` against the service: the real docker CLI on a
pseudo-terminal the test drives (tests/containers/test_tty.py's :class:`Screen`): a shell
prompt, a command and its output, the window size and a resize, Ctrl-C, the exit code."""

from __future__ import annotations

import pytest

from ipydock.engine.runtime.console import set_size
from tests.containers.test_tty import PROMPT, Screen
from tests.service.conftest import DOCKER, Engine

pytestmark = pytest.mark.docker


def test_run_it_gives_a_shell(service: Engine) -> None:
    screen = Screen([DOCKER, "run", "-it", "--rm", "--name", "svc-tty", "busybox", "sh"],
                    rows=30, cols=100, DOCKER_HOST=service.host)  # fmt: skip
    try:
        screen.expect(PROMPT)
        screen.send(b"echo hi there\r")
        screen.expect(rb"hi there\r\n")
        screen.send(b"stty size\r")
        screen.expect(rb"30 100\r\n")
        set_size(screen.slave, 40, 120)  # the user resizes the window: docker sends /resize
        screen.size_becomes(40, 120)
        # Ctrl-C: a key to the terminal, SIGINT to sleep, not the shell; sent once the sleep is
        # the terminal's foreground (before, the shell would get it and the sleep run its time)
        screen.send(b"(echo sleeping; exec sleep 1234)\r")
        screen.expect(rb"sleeping\r\n")
        screen.send(b"\x03")
        screen.expect(PROMPT)
        screen.send(b"echo rc=$?\r")
        screen.expect(rb"rc=130\r\n")
        screen.send(b"exit 3\r")
        assert screen.wait() == 3
    finally:
        screen.close()
        service.docker("rm", "-f", "svc-tty", check=False)


def test_exec_it_in_a_running_container(service: Engine) -> None:
    service.docker("run", "-d", "--name", "svc-tty-exec", "busybox", "sleep", "300")
    screen = Screen([DOCKER, "exec", "-it", "svc-tty-exec", "sh"], DOCKER_HOST=service.host)
    try:
        screen.expect(PROMPT)
        screen.send(b"tty; ps -o pid,args | grep -c sleep\r")
        screen.expect(rb"/dev/pts/\d+\r\n")
        screen.send(b"exit 4\r")
        assert screen.wait() == 4
    finally:
        screen.close()
        service.docker("rm", "-f", "svc-tty-exec")
