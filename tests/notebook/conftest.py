"""A real IPython shell with ``%load_ext ipydock`` on the test's own store root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output


@pytest.fixture
def ip(root: str) -> Iterator[InteractiveShell]:
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    assert shell is not None
    shell.run_line_magic("load_ext", "ipydock")
    shell.run_line_magic("config", f"IPyDock.root = {root!r}")
    shell.run_line_magic("config", "IPyDock.engine = 'bundled'")
    shell.run_line_magic("config", "IPyDock.widgets = 'off'")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "ipydock")


def shown(shell: InteractiveShell, cell: str) -> tuple[Any, str]:
    """Run ``cell`` as a user would; return the run's result and everything the shell printed."""
    with capture_output() as cap:
        result = shell.run_cell(cell)
    return result, cap.stdout + cap.stderr


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The DataFrame's rows as the CLI prints them with ``--format json``."""
    out = []
    for row in df.to_dict("records"):
        rec = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                value = value.isoformat().replace("+00:00", "Z")
            elif value is pd.NaT:
                value = None
            rec[key] = value
        out.append(rec)
    return out
