"""Every command has its data half: the magics return data (never captured CLI text), and a
many-names command reports the names it could not do as one error after doing the others."""

from __future__ import annotations

import pandas as pd
import pytest

from ipydock import cli
from ipydock.cli.registry import COMMANDS
from ipydock.models import RunOutput, VolumeInfo
from tests.notebook.conftest import shown
from tests.notebook.test_containers_volumes import engine  # noqa: F401  (the fixture)


def test_every_command_has_a_call() -> None:
    cli.load_commands()
    assert len(COMMANDS) >= 45
    assert [f"{c.group} {c.name}" for c in COMMANDS if not callable(c.call)] == []


def test_exec_returns_its_output_without_touching_the_kernels_stdio(ip, engine) -> None:  # noqa: F811
    ip.run_line_magic("container", "run -d --name box busybox sleep 60")
    out = ip.run_line_magic("container", "exec box sh -c 'echo hi; echo oops >&2; exit 4'")
    assert isinstance(out, RunOutput)
    assert (out.stdout, out.stderr, out.exit_code) == ("hi\n", "oops\n", 4)


def test_top_diff_and_wait_are_frames(ip, engine) -> None:  # noqa: F811
    ip.run_line_magic("container", "run -d --name box busybox sh -c 'touch /new; sleep 60'")
    top = ip.run_line_magic("container", "top box")
    assert isinstance(top, pd.DataFrame) and "PID" in top.columns
    assert any("sleep 60" in cmd for cmd in top.iloc[:, -1])
    ip.run_line_magic("container", "exec box test -e /new")  # the touch has happened
    diff = ip.run_line_magic("container", "diff box")
    assert diff.to_dict("records") == [{"kind": "A", "path": "/new"}]
    ip.run_line_magic("container", "kill box")
    waited = ip.run_line_magic("container", "wait box")
    assert waited.to_dict("records") == [{"container": "box", "status_code": 137}]


def test_stop_of_several_names_does_the_others_and_says_which_failed(ip, engine) -> None:  # noqa: F811
    ip.run_line_magic("container", "run -d --name one busybox sleep 60")
    result, out = shown(ip, "%container stop -t 0 one nosuch")
    assert result.error_in_exec is not None and "Traceback" not in out
    assert "1 of 2 failed" in out and "nosuch" in out
    state = ip.run_line_magic("container", "ls -a").set_index("name")["status"]
    assert state["one"] == "exited"  # done although another name failed
    rows = ip.run_line_magic("container", "rm one")
    assert rows.to_dict("records") == [{"name": "one", "error": ""}]


def test_volume_create_and_rm_return_data(ip, engine) -> None:  # noqa: F811
    vol = ip.run_line_magic("volume", "create data")
    assert isinstance(vol, VolumeInfo) and vol.name == "data"
    with pytest.raises(Exception, match="No such volume|no such volume"):
        ip.run_line_magic("volume", "rm nosuch")
    assert ip.run_line_magic("volume", "rm data")["name"].tolist() == ["data"]
