"""The builder's public surface is pinned, and it imports no notebook library."""

from __future__ import annotations

import subprocess
import sys

import ipydock.engine.builder as builder


def test_public_api_is_pinned() -> None:
    assert sorted(builder.__all__) == [
        "BuildContext",
        "BuildOptions",
        "Dockerfile",
        "Progress",
        "build",
        "open_context",
        "parse_dockerfile",
    ]


def test_builder_imports_no_notebook_libraries() -> None:
    code = "import sys, ipydock.engine.builder, ipydock.cli.build; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"IPython", "pandas", "ipywidgets"} & set(out.stdout.split())


def test_dockerignore_rules() -> None:
    from ipydock.commands.dockerignore import IgnoreRules, read_patterns

    rules = IgnoreRules(read_patterns("# c\n./node_modules/\n**/*.log\n!keep.log\n/docs/*.md\n"))
    assert rules.excluded("node_modules/a/b.js")
    assert rules.excluded("a/b/c.log") and rules.excluded("c.log")
    assert not rules.excluded("keep.log")
    assert rules.excluded("docs/x.md") and not rules.excluded("docs/sub/x.md")
    assert not rules.excluded("src/main.py")


def test_builder_import_chain_is_small() -> None:
    """A fully cached rebuild from the CLI pays for every import: the runtime (needed only when
    a RUN misses the cache) and urllib (only for URLs) are imported when used."""
    code = "import sys, ipydock.engine.builder, ipydock.cli.build; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not {m for m in loaded if m.startswith("ipydock.engine.runtime")}
    assert not {"urllib.request", "http.client", "email.parser"} & loaded


def test_default_path_matches_the_runtime() -> None:
    from ipydock.engine.builder.state import DEFAULT_PATH
    from ipydock.engine.runtime.spec import DEFAULT_PATH as RUNTIME_PATH

    assert DEFAULT_PATH == RUNTIME_PATH
