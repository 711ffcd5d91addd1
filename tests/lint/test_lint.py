"""The lint's rule table: one folder with a Dockerfile that must get the rule's advice (at the
lines in ``expected``) and one that must get none, per rule (``cases/CODE-bad``, ``CODE-good``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ipydock.errors import DockerfileError
from ipydock.lint import RULES, lint

CASES = os.path.join(os.path.dirname(__file__), "cases")


def _cases() -> list[str]:
    return sorted(os.listdir(CASES))


def test_every_rule_has_a_good_and_a_bad_case() -> None:
    assert {c for c in _cases()} == {f"{r.code}-{kind}" for r in RULES for kind in ("bad", "good")}
    assert len({r.code for r in RULES}) == len({r.name for r in RULES}) == len(RULES) >= 8


@pytest.mark.parametrize("case", _cases())
def test_case(case: str) -> None:
    with open(os.path.join(CASES, case, "Dockerfile")) as f:
        text = f.read()
    with open(os.path.join(CASES, case, "expected")) as f:
        expected = [tuple(line.split()) for line in f.read().splitlines() if line.strip()]
    found = lint(text)
    assert [(str(a.line), a.code) for a in found] == expected
    lines = text.splitlines()
    for advice in found:  # the advice names the instruction on its line and a fix
        assert lines[advice.line - 1].startswith(advice.instruction.split()[0])
        assert advice.fix and advice.message


def test_an_ignore_comment_silences_one_rule() -> None:
    text = "FROM debian:bookworm\n# ipydock-lint ignore=IPD004\nRUN apt-get install -y a=1\n"
    assert lint(text) == []
    assert [a.code for a in lint(text.replace("IPD004", "IPD003"))] == ["IPD004"]


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(DockerfileError) as info:
        lint("FROM debian:bookworm\nRUN echo <<EOF\n")
    assert info.value.line >= 2 or "EOF" in str(info.value)


def _cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipydock", *args], capture_output=True,
                          text=True, input=input, timeout=60)  # fmt: skip


def test_cli_prints_line_rule_and_fix_and_exits_1(tmp_path) -> None:
    bad = os.path.join(CASES, "IPD005-bad", "Dockerfile")
    proc = _cli("--root", str(tmp_path), "lint", bad)
    assert proc.returncode == 1, proc.stderr
    assert f"{bad}:2 IPD005 pip-unpinned: scikit-learn without a pinned version" in proc.stdout
    assert "fix: pin each package" in proc.stdout
    good = _cli("--root", str(tmp_path), "dockerfile", "lint", "-",
                input="FROM debian:bookworm\n")  # fmt: skip
    assert (good.returncode, good.stdout, good.stderr) == (0, "", "")
    rows = _cli("--root", str(tmp_path), "lint", "--format", "json", bad).stdout.splitlines()
    assert json.loads(rows[0])["code"] == "IPD005" and json.loads(rows[0])["line"] == 2


def test_cli_error_for_a_missing_file(tmp_path) -> None:
    proc = _cli("--root", str(tmp_path), "lint", str(tmp_path / "nope"))
    assert proc.returncode == 1 and proc.stderr.startswith("Error: cannot read")
