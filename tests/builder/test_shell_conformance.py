"""BuildKit's own expansion tables (envVarTest, wordsTest) run against ``build.shell``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipydock.engine.builder.shell import ExpansionError, expand, words
from tests.conftest import require

SHELL_DATA = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "buildkit-shell"
ENV_VAR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _table(name: str) -> Path:
    path = SHELL_DATA / name
    require(
        path.exists(), f"conformance data not found at {path} (clone ../shared next to the repo)"
    )
    return path


def _env_var_cases() -> list[tuple[int, str, str]]:
    path = SHELL_DATA / "envVarTest"
    if not path.exists():
        return [(0, "", "")]  # one case that skips visibly
    cases = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        platform, given, expected = (part.strip() for part in line.split("|", 2))
        if platform in ("A", "U"):
            cases.append((n, given, expected))
    return cases


@pytest.mark.parametrize(("line", "given", "expected"), _env_var_cases())
def test_env_var_table(line: int, given: str, expected: str) -> None:
    _table("envVarTest")
    if expected == "error":
        with pytest.raises(ExpansionError):
            expand(given, ENV_VAR_ENV)
    else:
        assert expand(given, ENV_VAR_ENV) == expected, f"envVarTest line {line}"


def test_words_table() -> None:
    env: dict[str, str] = {}
    checked = 0
    for n, line in enumerate(_table("wordsTest").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, _, value = line[4:].partition("=")
            env[key] = value
            continue
        given, expected = line.split("|", 1)
        given, expected = given.strip(), expected.lstrip(" ")  # as BuildKit: trailing kept
        if expected == "error":
            with pytest.raises(ExpansionError):
                words(given, env)
        else:
            assert words(given, env) == expected.split(","), f"wordsTest line {n}: {given!r}"
        checked += 1
    assert checked > 10
