"""``%image pull`` / ``%image push`` in a real InteractiveShell: docker's lines on a terminal, a
widget in a notebook, the result as a value."""

from __future__ import annotations

from ipydock.backends import BundledBackend
from ipydock.models import PullResult, PushResult, TransferEvent
from tests.notebook.conftest import ip, shown  # noqa: F401 - the shell fixture

__all__ = ["ip"]


def test_image_push_and_pull_magics(ip, backend: BundledBackend, busybox: str, repo: str) -> None:  # noqa: F811
    backend.tag("busybox", f"{repo}:nb")
    result, printed = shown(ip, f"r = %image push {repo}:nb")
    assert result.success
    pushed = ip.user_ns["r"]
    assert isinstance(pushed, PushResult) and pushed.tag == "nb"
    assert printed.splitlines()[0] == f"The push refers to repository [{repo}]"
    assert f"nb: digest: {pushed.digest} size: {pushed.size}" in printed

    backend.remove_image(f"{repo}:nb")
    result, printed = shown(ip, f"p = %image pull {repo}:nb")
    pulled = ip.user_ns["p"]
    assert isinstance(pulled, PullResult) and pulled.id == busybox
    assert f"Status: Downloaded newer image for {repo}:nb" in printed
    assert ": Already exists" in printed  # busybox:latest still holds the layer

    _, printed = shown(ip, f"q = %image pull -q {repo}:nb")
    assert printed == "" and ip.user_ns["q"].status.startswith("Image is up to date")
    _, printed = shown(ip, f"%image pull {repo}:missing")
    assert "manifest for" in printed and "Traceback" not in printed


def test_the_progress_widget_shows_a_row_per_layer() -> None:
    from ipydock.display.transfer import TransferProgress

    w = TransferProgress("pull x")
    w.handle(TransferEvent("", "", text="1: Pulling from x"))
    w.handle(TransferEvent("abc", "Pulling fs layer"))
    w.handle(TransferEvent("abc", "Downloading", 512, 1024))
    label, bar = w.rows["abc"]
    assert "Downloading" in label.value and (bar.value, bar.max) == (512, 1024)
    w.handle(TransferEvent("abc", "Pull complete"))
    assert "✔ Pull complete" in label.value
    assert "Pulling from x" in w.header.value
    assert len(w.children) == 2


def test_login_magic_asks_for_the_password(ip, auth_registry, monkeypatch) -> None:  # noqa: F811
    import getpass

    from tests.registry.conftest import PASSWORD, USER

    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or PASSWORD)
    _, printed = shown(ip, f"r = %ipydock login -u {USER} {auth_registry.host}")
    assert ip.user_ns["r"] == "Login Succeeded" and asked == ["Password: "]
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "wrong")
    _, printed = shown(ip, f"%ipydock login -u {USER} {auth_registry.host}")
    assert "wrong username or password" in printed and "Traceback" not in printed
    assert shown(ip, f"%ipydock logout {auth_registry.host}")[0].success
