"""Networks for an unprivileged user: containers get loopback (up) on the default network;
bridges, which need root, are refused in one line."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ipydock.models import RunOptions
from tests.containers.test_rootless_run import NOBODY, as_user, user_root  # noqa: F401


def test_rootless_default_network_is_loopback(user_root: str) -> None:  # noqa: F811
    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.errors import NotSupported

        backend = BundledBackend(Store(os.path.join(user_root, "store")), warm=False)
        backend.import_image(os.path.join(user_root, "busybox.tar.gz"), "busybox",
                             changes=['CMD ["sh"]'])  # fmt: skip
        lines: list[str] = []
        script = ("httpd -p 127.0.0.1:8083 -h /etc && wget -qO- http://127.0.0.1:8083/hostname"
                  " >/dev/null && ip -o link")  # fmt: skip
        result = backend.run(RunOptions("busybox", ("sh", "-c", script), auto_remove=True),
                             output=lambda _s, text: lines.append(text))  # fmt: skip
        out: dict[str, Any] = {"code": result.exit_code, "out": "".join(lines)}
        out["ls"] = [n.name for n in backend.networks()]
        named = RunOptions("busybox", ("true",), network="ipdn-r")
        calls = {"create": lambda: backend.create_network("ipdn-r"),
                 "run": lambda: backend.run(named)}  # fmt: skip
        for name, call in calls.items():
            try:
                call()
            except NotSupported as exc:
                out[name] = str(exc)
        return out

    found = as_user(NOBODY, work)
    assert found["code"] == 0, found["out"]
    links = [line.split(":")[1].strip() for line in found["out"].splitlines() if ": " in line]
    assert links == ["lo"]
    assert "bridge" not in found["ls"] and {"host", "none"} <= set(found["ls"])
    for name in ("create", "run"):
        assert "bridge networks need root" in found[name], found


pytestmark = pytest.mark.root
