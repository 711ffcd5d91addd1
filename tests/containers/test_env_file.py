"""``-e`` and ``--env-file`` as docker's client resolves them (RunOptions.environment)."""

from __future__ import annotations

import pytest

from ipydock.errors import UsageError
from ipydock.models import RunOptions


def test_env_files_then_e_flags_with_bare_names_from_our_environment(
    engine, tmp_path, monkeypatch
) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# a comment\n\nA=1\n  B=from file\nFROM_HOST\nUNSET_NAME\n")
    monkeypatch.setenv("FROM_HOST", "host value")
    monkeypatch.delenv("UNSET_NAME", raising=False)
    lines: list[str] = []
    opts = RunOptions("busybox", ("env",), env_file=(str(env_file),), env=("B=from flag",),
                      auto_remove=True)  # fmt: skip
    assert engine.run(opts, output=lambda _s, text: lines.append(text)).exit_code == 0
    env = dict(line.split("=", 1) for line in "".join(lines).splitlines())
    assert env["A"] == "1" and env["B"] == "from flag"  # -e comes after the file
    assert env["FROM_HOST"] == "host value" and "UNSET_NAME" not in env


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (RunOptions("busybox", env_file=("/nonexistent/app.env",)), "--env-file /nonexistent"),
        (RunOptions("busybox", env=("=x",)), "invalid environment variable: '=x'"),
    ],
)
def test_bad_environment_is_one_clear_error(opts: RunOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        opts.environment()
