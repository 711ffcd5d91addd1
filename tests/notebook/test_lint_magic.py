"""``%%dockerfile --lint``: the advice as a DataFrame, nothing built; a syntax error points at
the cell line."""

from __future__ import annotations

import pandas as pd

from ipydock.lint import Advice
from ipydock.magics import CellError
from tests.notebook.conftest import shown

CELL = "FROM debian\nRUN pip install numpy\n"


def test_lint_cell_is_a_dataframe_and_builds_nothing(ip) -> None:
    df = ip.run_cell_magic("dockerfile", "--lint", CELL)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(Advice.__dataclass_fields__)
    assert df[["line", "code"]].values.tolist() == [[1, "IPD001"], [2, "IPD005"], [2, "IPD006"]]
    assert ip.run_line_magic("image", "ls -a").empty  # nothing was built
    clean = ip.run_cell_magic("dockerfile", "--lint", "FROM debian:bookworm\n")
    assert clean.empty and list(clean.columns) == list(Advice.__dataclass_fields__)


def test_a_syntax_error_names_the_cell_line(ip) -> None:
    result, out = shown(ip, "%%dockerfile --lint\nFROM debian:bookworm\nNOPE x\n")
    assert isinstance(result.error_in_exec, CellError)
    assert "Traceback" not in out and "cell line 3: NOPE x" in out
    assert "unknown instruction: NOPE" in out
