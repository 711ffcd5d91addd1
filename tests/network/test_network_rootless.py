"""Networks for an unprivileged user: the default network is slirp4netns (the way out to the
test's outside host, ``-p`` above 1024, as Podman's); user-defined networks, which need
root, are refused in one line."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from ipydock.models import RunOptions
from tests.conftest import require
from tests.containers.test_rootless_run import NOBODY, as_user, user_root  # noqa: F401
from tests.network.test_bridge import SERVE
from tests.network.test_ports import free_port

pytestmark = pytest.mark.root


def test_rootless_default_network_goes_out_and_publishes(user_root: str, outside) -> None:  # noqa: F811
    require(shutil.which("slirp4netns") is not None, "slirp4netns is not installed")
    outside.serve_peer(8094)
    port, low = free_port(), 80

    def work() -> dict[str, Any]:
        import urllib.request

        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import IPyDockError

        backend = BundledBackend(Store(os.path.join(user_root, "store")), warm=False)
        backend.import_image(os.path.join(user_root, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        lines: list[str] = []
        script = f"ip -o link | cut -d: -f2 && nc -w 5 {outside.ip} 8094"
        result = backend.run(RunOptions("busybox", ("sh", "-c", script), auto_remove=True),
                             output=lambda _s, text: lines.append(text))  # fmt: skip
        out: dict[str, Any] = {"code": result.exit_code, "out": "".join(lines)}
        cid = backend.run(RunOptions("busybox", SERVE, publish=(f"{port}:8081",)),
                          detach=True).id  # fmt: skip
        probe = ["sh", "-c", "until wget -qO- http://127.0.0.1:8081/srv.txt; do :; done"]
        with open(os.devnull, "w") as null:
            backend.exec(cid, probe, stdout=null)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/srv.txt", timeout=10) as r:
            out["published"] = [cid[:12], r.read().decode().strip()]
        out["ports"] = [str(p) for p in backend.containers()[0].ports]
        backend.remove_container(cid, force=True)
        for name, opts in {
            "low": RunOptions("busybox", ("true",), publish=(f"{low}:80",)),
            "named": RunOptions("busybox", ("true",), network="ipdn-r"),
        }.items():
            try:
                backend.run(opts)
            except IPyDockError as exc:
                out[name] = str(exc)
        try:
            backend.create_network("ipdn-r")
        except IPyDockError as exc:
            out["create"] = str(exc)
        out["left"] = [c.id for c in backend.containers(all=True) if c.status == "running"]
        for c in backend.containers(all=True):  # a failed start leaves it created, as docker
            backend.remove_container(c.id, force=True)
        return out

    found = as_user(NOBODY, work, preload=("encodings.idna",))  # urllib's, unreadable later
    assert found["code"] == 0, found["out"]
    words = found["out"].split()
    assert words[:2] == ["lo", "tap0"] and words[-1] == outside.host_ip, found["out"]
    assert found["published"][0] == found["published"][1]
    assert found["ports"] == [f"0.0.0.0:{port}->8081/tcp"]
    assert "ports below 1024 need root" in found["low"]
    for name in ("named", "create"):
        assert "user-defined networks need root" in found[name], found
    assert found["left"] == []
