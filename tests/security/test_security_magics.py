"""The security flags in a notebook: the magics take the CLI's words; bad values are one short
message (IPython's UsageError path), never a traceback."""

from __future__ import annotations

import pytest

from tests.notebook.conftest import ip, shown  # noqa: F401 - the shell fixture
from tests.notebook.test_containers_volumes import engine  # noqa: F401 - the magics' engine

pytestmark = pytest.mark.root


def test_magics_take_the_security_flags(ip, engine) -> None:  # noqa: F811
    script = "'grep Seccomp: /proc/self/status; ulimit -n; head -c 23 /proc/1/cmdline'"
    out = ip.run_line_magic("container", "run --rm --network none --security-opt "
                            "seccomp=unconfined --ulimit nofile=50:60 --init busybox sh -c "
                            + script)  # fmt: skip
    assert out == "Seccomp:\t0\n50\n/sbin/docker-init\0--\0sh"
    out = ip.run_line_magic("container", "run --rm --network none busybox grep Seccomp: "
                            "/proc/self/status")  # fmt: skip
    assert out == "Seccomp:\t2\n"


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%container run --ulimit nofile=3:2 busybox true",
         "ulimit soft limit must be less than or equal to hard limit: 3 > 2"),
        ("%container run --security-opt seccomp=/nonexistent.json busybox true",
         "opening seccomp profile (/nonexistent.json) failed"),
        ("%container run --security-opt bogus busybox true", "invalid --security-opt: 'bogus'"),
        ("%container run --userns keep-id busybox true", "--userns: invalid USER mode"),
    ],
)  # fmt: skip
def test_bad_security_flags_are_one_short_message(ip, engine, cell: str, message: str) -> None:  # noqa: F811
    result, out = shown(ip, cell)
    assert result.error_in_exec is not None
    assert message in out
    assert "Traceback" not in out and len(out.strip().splitlines()) <= 2
