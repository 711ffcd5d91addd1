"""The builder's public surface is pinned, and it imports no notebook library."""

from __future__ import annotations

import subprocess
import sys

import ipydock.engine.build as build


def test_public_api_is_pinned() -> None:
    assert sorted(build.__all__) == [
        "BuildContext",
        "BuildOptions",
        "Dockerfile",
        "Progress",
        "build",
        "open_context",
        "parse_dockerfile",
    ]


def test_builder_imports_no_notebook_libraries() -> None:
    code = "import sys, ipydock.engine.build, ipydock.cli.build; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"IPython", "pandas", "ipywidgets"} & set(out.stdout.split())


def test_dockerignore_rules() -> None:
    from ipydock.engine.build.ignore import IgnoreRules, read_patterns

    rules = IgnoreRules(read_patterns("# c\n./node_modules/\n**/*.log\n!keep.log\n/docs/*.md\n"))
    assert rules.excluded("node_modules/a/b.js")
    assert rules.excluded("a/b/c.log") and rules.excluded("c.log")
    assert not rules.excluded("keep.log")
    assert rules.excluded("docs/x.md") and not rules.excluded("docs/sub/x.md")
    assert not rules.excluded("src/main.py")
