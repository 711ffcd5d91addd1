"""Teaching mode: the accounts written from the models (pure), and ``%ipydock explain on|off``
in a real shell."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from IPython.core.error import UsageError

from ipydock.display.explain import Explanation, explain, history_lines, layer_lines
from ipydock.models import (
    ContainerDetail,
    FileChange,
    HistoryRow,
    ImageInfo,
    LayerFile,
    LayerFiles,
    PruneResult,
    RemoveEvent,
)


def displayed(ip, cell: str) -> str:
    """The text of what the cell displayed (not its result, not what it printed)."""
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        ip.run_cell(cell)
    return "".join(o.data.get("text/plain", "") for o in cap.outputs)


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
IDS = [f"sha256:{c * 64}" for c in "abcd"]


def _history() -> list[HistoryRow]:
    oldest_first = [
        HistoryRow(IDS[0], NOW, "/bin/sh -c #(nop) ADD file:1f2e in / ", 1_980_000, ""),
        HistoryRow(IDS[1], NOW, '/bin/sh -c #(nop)  CMD ["sh"]', 0, "", empty_layer=True),
        HistoryRow(
            IDS[2], NOW, "/bin/sh -c mkdir -p /data && dd if=/dev/zero of=/data/big", 65_536, ""
        ),  # fmt: skip
        HistoryRow(IDS[3], NOW, "/bin/sh -c rm /data/big", 0, ""),
    ]
    return list(reversed(oldest_first))  # history is newest first


def _layers() -> list[LayerFiles]:
    big = LayerFile("data/big", "A", "file", 65_536, "-rw-r--r--", wasted=65_536)
    gone = LayerFile("data/big", "D", "file", 0, "----------")
    return [
        LayerFiles(0, "sha256:0", "ADD file:1f2e in /", 1_980_000, 0, []),
        LayerFiles(
            1,
            "sha256:1",
            "/bin/sh -c mkdir -p /data && dd if=/dev/zero of=/data/big",
            65_536,
            65_536,
            [big],
        ),  # fmt: skip
        LayerFiles(2, "sha256:2", "/bin/sh -c rm /data/big", 0, 0, [gone]),
    ]


def test_history_says_which_step_added_what_on_top_of_what() -> None:
    lines = history_lines(_history())
    assert lines[0] == "step 1 (`ADD file:1f2e in /`) added a 1.98MB layer as the first layer"
    assert lines[1].startswith("step 3 (`RUN mkdir -p /data && dd if=/dev/zero o…`) added "
                               "a 65.5kB layer on top of bbbbbbbbbbbb")  # fmt: skip
    assert lines[2] == "step 4 (`RUN rm /data/big`) added a 0B layer on top of cccccccccccc"
    assert lines[3] == "step 2 (CMD) changed only the image's config (metadata): no layer"
    assert lines[4].startswith("3 read-only layers, 2.05MB in all")


def test_a_whiteout_is_not_a_deletion() -> None:
    lines = layer_lines(_layers())
    assert lines[0] == ("layer 2 (`RUN rm /data/big`) hides /data/big with a whiteout, it is not "
                        "deleted: its 65.5kB still ship in layer 1")  # fmt: skip
    assert lines[1].startswith("65.5kB in lower layers are hidden by later ones")
    assert layer_lines(_layers()[:2]) == ["65.5kB in lower layers are hidden by later ones: "
                                          "wasted bytes every pull still downloads"]  # fmt: skip


def test_build_account_and_its_display() -> None:
    e = explain("build", _history(), history=_history(), layers=_layers(), image=IDS[3])
    assert isinstance(e, Explanation)
    assert "the image ID dddddddddddd is the sha256 of the image's config" in e.text()
    assert e.text().count("ℹ ") == len(e.lines) == 8
    assert "<li>layer 2 (<code>RUN rm /data/big</code>) hides /data/big" in e._repr_html_()


def test_run_account_names_namespaces_network_and_mounts() -> None:
    detail = ContainerDetail(
        id="f" * 64, name="/web", image="busybox", created=NOW, path="httpd", args=["-f"],
        state={}, config={}, host_config={"NetworkMode": "lab"}, log_path="",
        mounts=[{"Type": "volume", "Name": "data", "Destination": "/data", "RW": True},
                {"Type": "bind", "Source": "/srv/in", "Destination": "/in", "RW": False}],
    )  # fmt: skip
    text = explain("run", None, group="container", detail=detail, rootless=True).text()
    assert "container web (ffffffffffff) ran `httpd -f` as an ordinary process" in text
    assert "in its own pid, mount, uts, ipc and network and user namespaces" in text
    assert "network: the user-defined bridge lab: containers on it find it by name" in text
    assert "volume data is mounted at /data: it lives apart from the container" in text
    assert "the host directory /srv/in is bind-mounted read-only at /in" in text


def test_run_account_of_a_removed_container_comes_from_the_flags() -> None:
    import argparse

    request = argparse.Namespace(name=None, command=["true"], image="busybox", network="none",
                                 volumes=["notes:/notes:ro"], mount=[])  # fmt: skip
    result = type("R", (), {"id": "e" * 64})()
    text = explain("run", result, group="container", request=request).text()
    assert "container eeeeeeeeeeee (removed, --rm) ran `true`" in text
    assert "network: none: only a loopback interface" in text
    assert "volume notes is mounted read-only at /notes" in text


def test_untag_delete_prune_dangling_and_diff() -> None:
    untag = explain("rm", [RemoveEvent("untagged", "a:1")], group="image").text()
    assert "removed the name a:1" in untag and "the image itself stays" in untag
    gone = explain("rm", [RemoveEvent("untagged", "a:1"), RemoveEvent("deleted", IDS[0])],
                   group="image").text()  # fmt: skip
    assert "that was the last name: 1 image deleted" in gone
    pruned = explain("prune", PruneResult([RemoveEvent("deleted", IDS[0])], 65_536), group="image")
    assert "deleted 1 image no name and no child needed, 65.5kB of layers freed" in pruned.text()
    rows = [ImageInfo("<none>", "<none>", IDS[0], NOW, 10)]
    dangling = explain("ls", rows, group="image", filters=["dangling=true"]).text()
    assert "1 dangling image: no tag, and no child image depends on it" in dangling
    diff = explain("diff", [FileChange("A", "/root/n"), FileChange("D", "/etc/group")]).text()
    assert "1 added, 0 changed, 1 deleted" in diff and "whiteout in the writable layer" in diff
    assert explain("ls", [], group="container") is None  # nothing to teach: no account


@pytest.mark.usefixtures("busybox")
def test_explain_on_and_off_in_a_shell(ip) -> None:
    assert displayed(ip, "%image history busybox") == ""
    ip.run_line_magic("ipydock", "explain on")
    out = displayed(ip, "%image history busybox")
    assert "ℹ step 1 (`imported`) added a 1.98MB layer as the first layer" in out
    assert "ℹ a new name for the same image ID" in displayed(ip, "%image tag busybox other:1")
    ip.run_line_magic("ipydock", "explain off")
    assert displayed(ip, "%image rm other:1") == ""
    with pytest.raises(UsageError):
        ip.run_line_magic("ipydock", "explain maybe")
