"""A notebook has no terminal: ``-it`` in a magic says, in one line, where to go instead."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from tests.notebook.conftest import shown


@pytest.mark.parametrize(
    "cell",
    [
        "%container run -it busybox sh",
        "%container run -t busybox sh",
        "%container exec -it somebox sh",
        "%container attach somebox",
    ],
)
def test_terminal_commands_point_to_a_jupyterlab_terminal(ip, busybox, cell: str) -> None:
    result, out = shown(ip, cell)
    assert isinstance(result.error_in_exec, UsageError)  # IPython's: no traceback
    assert "JupyterLab terminal" in out and "%container exec" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
