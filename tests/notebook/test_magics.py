"""Every magic through a real InteractiveShell: values equal to the CLI's JSON, short errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ipydock.display.frames import HistoryFrame, ImagesFrame
from ipydock.display.results import InfoDict, PruneView
from ipydock.testing import add_step
from tests.notebook.conftest import frame_records, json_lines, shown


def test_load_ext_registers_every_magic(ip) -> None:
    for name in ("image", "container", "network", "volume", "ipydock"):
        assert ip.find_line_magic(name) is not None
    assert ip.find_cell_magic("dockerfile") is not None
    assert "ipydock image" in ip.find_line_magic("image").__doc__  # what `%image?` shows


def test_image_ls_is_the_cli_json_as_a_dataframe(ip, ipd, busybox, store) -> None:
    add_step(store, busybox, "ENV A=1", tags=["app"])
    add_step(store, busybox, "ENV A=2", tags=["app"])  # the first app is dangling now
    for words in (["ls"], ["ls", "-a"], ["ls", "--filter", "dangling=true"]):
        df = ip.run_line_magic("image", " ".join(words))
        assert isinstance(df, ImagesFrame)
        expected = json_lines(ipd("image", *words, "--format", "json").stdout)
        assert list(df.columns) == list(expected[0])
        assert frame_records(df) == expected
    result, _ = shown(ip, "d = %image ls --filter dangling=true")
    assert result.success and ip.user_ns["d"]["repository"].tolist() == ["<none>"]
    assert "%image prune -f" in ip.user_ns["d"]._repr_html_()
    assert "1 dangling image" in ip.user_ns["d"].text()


def test_an_empty_list_still_has_the_columns(ip, busybox) -> None:
    df = ip.run_line_magic("image", "ls -f dangling=true")
    assert df.empty and list(df.columns) == ["repository", "tag", "id", "created", "size", "digest"]


def test_history_frame_matches_cli_and_draws_sizes(ip, ipd, busybox, store) -> None:
    add_step(store, busybox, "/bin/sh -c echo hi > /hi", {"hi": b"hi\n" * 500}, tags=["app"])
    ip.user_ns["name"] = "app"
    h = ip.run_line_magic("image", "history $name")  # IPython's $var expansion
    assert isinstance(h, HistoryFrame)
    assert frame_records(h) == json_lines(ipd("image", "history", "app", "--format", "json").stdout)
    assert h.cumulative() == [int(h["size"].sum()), int(h["size"].iloc[1])]
    html = h._repr_html_()
    assert "1.5kB" in html and "1.98MB" in html and "width:100%" in html
    assert "CREATED BY" in h.text()
    assert ip.run_line_magic("image", "history {name.upper().lower()}").equals(h)


def test_inspect_returns_a_dict_and_several_a_list(ip, ipd, busybox) -> None:
    detail = ip.run_line_magic("image", "inspect busybox")
    assert detail == json_lines(ipd("image", "inspect", "busybox", "--format", "json").stdout)[0]
    ip.run_line_magic("image", "tag busybox me/bb:2")
    both = ip.run_line_magic("image", "inspect busybox me/bb:2")
    assert [d["id"] for d in both] == [busybox, busybox]


def test_tag_rm_prune_and_import_return_objects(ip, busybox, busybox_tgz, store) -> None:
    assert ip.run_line_magic("image", "tag busybox keep") == busybox  # the image it names
    events = ip.run_line_magic("image", "rm keep")
    assert isinstance(events, pd.DataFrame)
    assert events.to_dict("records") == [{"action": "untagged", "target": "keep:latest"}]
    add_step(store, busybox, "ENV A=1", tags=["app"])
    add_step(store, busybox, "ENV A=2", tags=["app"])
    result, out = shown(ip, "%image prune")
    assert isinstance(result.error_in_exec, Exception) and "image prune -f" in out
    pruned = ip.run_line_magic("image", "prune -f")
    assert isinstance(pruned, PruneView) and len(pruned.deleted) == 1
    assert "Total reclaimed space" in pruned._repr_html_()
    new_id = ip.run_line_magic("image", f"import {busybox_tgz} other")
    assert new_id.startswith("sha256:")


def test_ipydock_info_and_system_commands(ip, ipd, busybox) -> None:
    info = ip.run_line_magic("ipydock", "info")
    assert isinstance(info, InfoDict) and info["images"] == 1 and "<table" in info._repr_html_()
    df = ip.run_line_magic("ipydock", "system df")
    assert frame_records(df) == json_lines(ipd("system", "df", "--format", "json").stdout)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%image history nothere", "No such image: nothere"),
        ("%image tag busybox Bad:Name!", "invalid reference format"),
        ("%image ls --filter color=red", "invalid filter 'color=red'"),
        ("%image frobnicate", "invalid choice: 'frobnicate'"),
        ("%image ls --bogus", "unrecognized arguments: --bogus"),
        ("%image load -i /nonexistent.tar", "cannot read /nonexistent.tar"),
        ("%image files busybox --layer 7", "has layers 0 to 0, not 7"),
        ("%%dockerfile --bogus\nFROM busybox", "unrecognized arguments: --bogus"),
    ],
)
def test_errors_are_one_short_message_without_traceback(ip, busybox, cell, message) -> None:
    result, out = shown(ip, cell)
    assert result.error_in_exec is not None
    assert message in out
    assert "Traceback" not in out and "File " not in out
    assert len(out.strip().splitlines()) <= 2


def test_engine_setting_through_config_and_the_engine_word(ip, root) -> None:
    # a socket that cannot exist: the test must not depend on a dockerd (not) running here
    ip.run_line_magic("config", "IPyDock.host = 'unix:///nonexistent/ipydock-test.sock'")
    result, out = shown(ip, "%config IPyDock.engine = 'docker'\n%image ls")
    assert result.error_in_exec is not None and "Traceback" not in out
    assert "nonexistent" in out  # it says which engine did not answer
    info = ip.run_line_magic("ipydock", "engine bundled")
    assert info["engine"] == "bundled" and info["root"] == root
    result, out = shown(ip, "%ipydock engine nothing")
    assert "invalid choice: 'nothing'" in out and "Traceback" not in out
    assert ip.find_line_magic("ipydock").__self__.engine == "bundled"  # the bad switch undone


def test_help_prints_usage_and_returns_nothing(ip) -> None:
    result, out = shown(ip, "%image ls --help")
    assert result.success and result.result is None
    assert "usage: ipydock image ls" in out
