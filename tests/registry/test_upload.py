"""``Registry.upload``: a blob over SMALL streams in one PATCH (POST, PATCH, PUT ?digest=), a
config goes in the closing PUT; a PATCH that fails with a 5xx starts a new upload."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from ipydock.engine.registry.client import SMALL, Registry
from ipydock.errors import RegistryError
from ipydock.testing import LocalRegistry


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pieces(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 1 << 20):
        yield data[i : i + (1 << 20)]


@pytest.mark.parametrize("size", [1000, SMALL + 1, 3 * SMALL + 5])
def test_a_blob_uploads_and_reads_back(registry: LocalRegistry, repo: str, size: int) -> None:
    blob = os.urandom(size)
    name = repo.split("/", 1)[1]
    with Registry(registry.host) as reg:
        reg.upload(name, _sha(blob), len(blob), lambda: _pieces(blob))
        assert reg.blob_size(name, _sha(blob)) == size
        resp = reg.open_blob(name, _sha(blob))
        try:
            assert resp.read() == blob
        finally:
            resp.close()


class _Flaky:
    """Answers uploads as distribution does; the first PATCH (its body read) fails with
    ``status``, or every PATCH with ``always``."""

    def __init__(self, status: int, always: bool = False) -> None:
        self.log: list[str] = []
        self.received = b""
        self.failures = 0
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, location: str = "") -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                flaky.log.append("GET " + self.path)
                self._answer(200)

            def do_POST(self) -> None:  # noqa: N802
                flaky.log.append("POST")
                self._answer(202, f"/v2/x/blobs/uploads/u{len(flaky.log)}")

            def do_PATCH(self) -> None:  # noqa: N802
                body = self._chunked()
                flaky.log.append("PATCH")
                if always or not flaky.failures:
                    flaky.failures += 1
                    self._answer(status)
                    return
                flaky.received = body
                self._answer(202, self.path)

            def do_PUT(self) -> None:  # noqa: N802
                flaky.log.append("PUT " + unquote(self.path.split("?")[1]))
                self._answer(201)

            def _chunked(self) -> bytes:
                assert self.headers.get("Transfer-Encoding") == "chunked"
                out = b""
                while size := int(self.rfile.readline().strip(), 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return out

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_failed_patch_starts_a_new_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipydock.engine.registry.client.time.sleep", lambda s: None)
    blob = os.urandom(SMALL + 10)
    flaky = _Flaky(503)
    try:
        with Registry(flaky.host) as reg:
            reg.upload("x", _sha(blob), len(blob), lambda: _pieces(blob))
    finally:
        flaky.close()
    assert flaky.log == ["GET /v2/", "POST", "PATCH", "POST", "PATCH", f"PUT digest={_sha(blob)}"]
    assert flaky.received == blob


def test_a_patch_refused_for_good_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipydock.engine.registry.client.time.sleep", lambda s: None)
    blob = os.urandom(SMALL + 10)
    flaky = _Flaky(503, always=True)
    try:
        with Registry(flaky.host) as reg, pytest.raises(RegistryError) as err:
            reg.upload("x", _sha(blob), len(blob), lambda: _pieces(blob))
    finally:
        flaky.close()
    assert err.value.status == 503
    assert flaky.log.count("PATCH") == 4 and "PUT" not in " ".join(flaky.log)
