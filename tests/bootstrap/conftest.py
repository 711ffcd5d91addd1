"""``image bootstrap`` with the real mmdebstrap: one minbase root per session (about 30 s, from
the distribution's mirror), local mirrors that fail on purpose, and the small fast variant
(``extract`` of busybox-static: one package) for the front doors."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.models import TransferEvent
from tests.conftest import require
from tests.rootless.conftest import nobody_dir, ranged_user  # noqa: F401 - fixtures used here

PREFIX = "ipdb-"  # this suite's host objects: temp dirs
EPOCH = "1700000000"
TINY = {"variant": "extract", "include": ["busybox-static"]}  # one package: seconds


def need_mmdebstrap() -> None:
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap is not installed")
    require(os.geteuid() == 0, "the suite runs mmdebstrap as root (and an ordinary user)")


@dataclass
class Bootstrapped:
    backend: BundledBackend
    image_id: str
    events: list[TransferEvent]


@pytest.fixture(scope="session")
def minbase() -> Iterator[Bootstrapped]:
    """``image bootstrap deb:minbase --include python3-minimal`` as root, SOURCE_DATE_EPOCH set."""
    need_mmdebstrap()
    base = tempfile.mkdtemp(prefix=PREFIX + "minbase-")
    backend = BundledBackend(Store(os.path.join(base, "store")), warm=False)
    events: list[TransferEvent] = []
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        image_id = backend.bootstrap("deb:minbase", include=["python3-minimal"],
                                     progress=events.append)  # fmt: skip
        yield Bootstrapped(backend, image_id, events)
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
        backend.close()
        shutil.rmtree(base)


class _NoSuchSuite(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_mirror() -> Iterator[str]:
    """A mirror on 127.0.0.1 that has no suite at all (404 for every file)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoSuchSuite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def dead_mirror() -> Iterator[str]:
    """A mirror URL on a port of 127.0.0.1 that is bound but not listening: refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/debian"
    finally:
        sock.close()
