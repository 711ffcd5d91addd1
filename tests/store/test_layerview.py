"""The merged view of layer dirs, read without a mount (whiteouts, opaque dirs, symlinks)."""

from __future__ import annotations

import os
import stat

import pytest

from ipydock.engine.store.layerfmt import OPAQUE_XATTR
from ipydock.engine.store.layerview import LayerView
from tests.conftest import require


@pytest.fixture
def stack(tmp_path):
    require(os.geteuid() == 0, "whiteouts are 0/0 character devices: mknod needs root")
    bottom, middle, top = (tmp_path / n for n in ("bottom", "middle", "top"))
    for d in (bottom / "etc", bottom / "bin", bottom / "tmp", middle / "etc", middle / "tmp",
              top / "tmp"):  # fmt: skip
        d.mkdir(parents=True)
    (bottom / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (bottom / "bin" / "sh").write_text("#!")
    (bottom / "tmp" / "old").write_text("old")
    (bottom / "gone").write_text("gone")
    (middle / "etc" / "group").write_text("root:x:0:\n")
    (middle / "tmp" / "mid").write_text("mid")
    os.symlink("/etc", middle / "link")
    (top / "etc").mkdir()
    (top / "etc" / "passwd").write_text("app:x:1:1::/home:/bin/sh\n")
    os.mknod(top / "gone", stat.S_IFCHR, 0)
    os.setxattr(top / "tmp", OPAQUE_XATTR, b"y")
    (top / "tmp" / "new").write_text("new")
    return LayerView([str(bottom), str(middle), str(top)])


def test_topmost_layer_wins_and_whiteouts_hide(stack) -> None:
    assert stack.read_text("etc/passwd").startswith("app:")
    assert stack.read_text("etc/group") == "root:x:0:\n"
    assert stack.find("gone") is None and not stack.exists("gone")
    assert stack.listdir("") == ["bin", "etc", "link", "tmp"]


def test_opaque_dir_hides_everything_below(stack) -> None:
    assert stack.listdir("tmp") == ["new"]
    assert stack.find("tmp/old") is None and stack.find("tmp/mid") is None


def test_symlinks_resolve_inside_the_root(stack) -> None:
    assert stack.resolve("/link/passwd") == "etc/passwd"
    assert stack.resolve("/../../link/../etc/./group") == "etc/group"
    assert stack.read_text("link/passwd").startswith("app:")


def test_copy_out_merges_the_tree(stack, tmp_path) -> None:
    stack.copy_out("etc", str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["group", "passwd"]
    assert (tmp_path / "out" / "passwd").read_text().startswith("app:")


def test_top_first_order_gives_the_same_view(stack) -> None:
    same = LayerView.from_top(stack.top_first)
    assert same.listdir("") == stack.listdir("")
