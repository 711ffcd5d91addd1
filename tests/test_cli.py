"""The real CLI in a subprocess: tables, JSON lines, aliases, one-line errors with exit 1."""

from __future__ import annotations

import json
import re

import pytest

from ipydock import cli


@pytest.fixture
def imported(ipd, busybox_tgz) -> str:
    proc = ipd("image", "import", "-c", 'CMD ["sh"]', busybox_tgz, "busybox")
    image_id = proc.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    return image_id


def test_image_ls_table_and_json(ipd, imported) -> None:
    table = ipd("image", "ls").stdout.splitlines()
    assert re.match(r"REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$", table[0])
    assert re.match(rf"busybox\s+latest\s+{imported[7:19]}\s+.+ ago\s+[\d.]+[kM]?B$", table[1])
    (line,) = ipd("images", "--format", "json").stdout.splitlines()
    row = json.loads(line)
    assert set(row) == {"repository", "tag", "id", "created", "size", "digest"}
    assert row["id"] == imported and isinstance(row["size"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", row["created"])
    assert ipd("image", "ls", "-q").stdout == imported[7:19] + "\n"
    assert ipd("image", "ls", "-q", "--no-trunc").stdout == imported + "\n"


def test_history_table_json_and_raw_sizes(ipd, imported) -> None:
    lines = ipd("history", "busybox").stdout.splitlines()
    assert re.match(r"IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$", lines[0])
    assert lines[1].startswith(imported[7:19]) and lines[1].endswith("Imported from -")
    raw = ipd("image", "history", "-H=false", "busybox").stdout.splitlines()[1]
    row = json.loads(ipd("image", "history", "--format", "json", "busybox").stdout)
    assert str(row["size"]) in raw.split()
    assert row["comment"] == "Imported from -"


def test_inspect_tag_rm_and_aliases(ipd, imported) -> None:
    ipd("tag", "busybox", "me/bb:2")
    detail = json.loads(ipd("image", "inspect", "me/bb:2").stdout)[0]
    assert detail["id"] == imported
    assert detail["repo_tags"] == ["busybox:latest", "me/bb:2"]
    assert detail["config"]["Cmd"] == ["sh"]
    assert ipd("rmi", "me/bb:2").stdout == "Untagged: me/bb:2\n"
    out = ipd("image", "rm", "busybox").stdout
    assert "Untagged: busybox:latest" in out and f"Deleted: {imported}" in out


def test_prune_asks_unless_forced(ipd, imported) -> None:
    ipd("tag", "busybox", "keep")
    ipd("rmi", "busybox")
    proc = ipd("image", "prune", input="n\n")
    assert "Are you sure" in proc.stdout and "Deleted" not in proc.stdout
    assert "Total reclaimed space: 0B" in ipd("image", "prune", "-f").stdout
    out = ipd("image", "prune", "-a", "-f").stdout
    assert "untagged: keep:latest" in out and f"deleted: {imported}" in out


def test_save_load_via_cli(ipd, imported, tmp_path) -> None:
    out = tmp_path / "bb.tar"
    ipd("save", "-o", str(out), "busybox")
    ipd("rmi", "busybox")
    assert ipd("load", "-i", str(out)).stdout == "Loaded image: busybox:latest\n"


def test_system_df_info_and_check(ipd, imported) -> None:
    df = ipd("system", "df").stdout.splitlines()
    assert re.match(r"Images\s+1\s+0\s+", df[1])
    info = json.loads(ipd("info", "--format", "json").stdout)
    assert info["images"] == 1 and info["storage_driver"] in ("overlay", "vfs")
    assert info["mode"] in ("root", "rootless", "none") and info["mode_reason"]
    assert ipd("system", "check").stdout.strip().endswith("store is consistent")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["image", "history", "nothere"], r"Error: No such image: nothere"),
        (["image", "tag", "busybox", "Bad:Name!"], r"Error: invalid reference format"),
        (["image", "ls", "--filter", "color=red"], r"Error: invalid filter 'color=red'"),
        (["image", "load", "-i", "/nonexistent.tar"], r"Error: cannot read /nonexistent.tar"),
        (["image", "frobnicate"], r"Error: ipydock image: argument COMMAND: invalid choice"),
        (["image", "ls", "--bogus"], r"Error: ipydock: unrecognized arguments: --bogus"),
    ],
)
def test_errors_are_one_line_exit_1_no_traceback(ipd, imported, args, pattern) -> None:
    proc = ipd(*args, check=False)
    assert proc.returncode == 1
    assert re.match(pattern, proc.stderr)
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_command_modules_table_matches_the_registry() -> None:
    """`ipydock WORD` imports only MODULES[WORD]: the table must name every defining module."""
    import ipydock.cli as cli
    from ipydock.cli.registry import COMMANDS

    cli.load_commands()
    defined: dict[str, set[str]] = {}
    for cmd in COMMANDS:
        module = cmd.run.__module__.rsplit(".", 1)[1]
        for word in (cmd.group, *cmd.top_level):
            defined.setdefault(word, set()).add(module)
    assert {w: set(m) for w, m in cli.MODULES.items()} == defined
    assert set(cli.ALL_MODULES) == set().union(*defined.values())


def test_image_commands_do_not_import_the_container_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, io; from ipydock.cli import build_parser; "
        "build_parser(['--root', '/x', 'images']); print(*sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "ipydock.cli.images" in loaded
    assert (
        not {
            "ipydock.cli.containers",
            "ipydock.engine.containers",
            "ipydock.engine.runtime",
            "ipydock.engine.builder",
        }
        & loaded
    )


def test_a_command_without_an_engine_makes_no_store(tmp_path, capsys) -> None:
    root = tmp_path / "never-made"
    assert cli.main(["--root", str(root), "system", "server", "status"]) == 0
    assert capsys.readouterr().out.startswith(("running", "not running"))
    assert not root.exists()
