"""A hostile registry: a small HTTP server on 127.0.0.1 that serves one image (``ipdr/img:1``)
and, when told to, each fault a real registry or network can show.

``faults`` is a set of words, each consumed or permanent as documented in :meth:`_fault`:
``drop`` (the blob's connection closes half-way, once), ``500`` (the manifest fails once),
``429`` (always too many requests), ``endless`` (the blob never ends), ``bad-media`` (a
manifest of an unknown type), ``huge`` (a 5 MiB manifest), ``no-range`` (Range ignored),
``slow`` (the blob comes in 64 KiB pieces, 20 ms apart).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HostileRegistry:
    def __init__(self, layer_tar: bytes, *, diff_id: str = "", blob: bytes = b"") -> None:
        """Serves one image of one layer: ``layer_tar`` gzipped, or ``blob`` as the layer (a
        blob that is not what its diff ID says); the config names ``diff_id`` (else the
        tar's: the truth)."""
        self.layer = blob or gzip.compress(layer_tar, mtime=0)
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id or _sha(layer_tar)]},
        }).encode()  # fmt: skip
        self.manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.config), "digest": _sha(self.config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer), "digest": _sha(self.layer)}],
        }).encode()  # fmt: skip
        self.faults: set[str] = set()
        self.log: list[str] = []  # "GET /v2/... Range" per request
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                hostile._serve(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                hostile._serve(self, body=False)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def _fault(self, word: str, once: bool = True) -> bool:
        if word in self.faults:
            if once:
                self.faults.discard(word)
            return True
        return False

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None, send_body: bool = True) -> None:  # fmt: skip
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        if send_body:
            req.wfile.write(body)

    def _serve(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        path = req.path
        self.log.append(f"{req.command} {path} {req.headers.get('Range', '')}".strip())
        if self._fault("429", once=False):
            self._send(req, 429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                       "application/json", {"Retry-After": "0"}, body)  # fmt: skip
            return
        if path == "/v2/":
            self._send(req, 200, b"{}", "application/json", send_body=body)
        elif path == "/v2/ipdr/img/manifests/1":
            self._manifest(req, body)
        elif path == f"/v2/ipdr/img/blobs/{_sha(self.config)}":
            self._send(req, 200, self.config, "application/octet-stream", send_body=body)
        elif path == f"/v2/ipdr/img/blobs/{_sha(self.layer)}":
            self._layer(req, body)
        else:
            self._send(req, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}',
                       "application/json", send_body=body)  # fmt: skip

    def _manifest(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        media = "application/vnd.docker.distribution.manifest.v2+json"
        if self._fault("500"):
            self._send(req, 500, b"oops", "text/plain", send_body=body)
        elif self._fault("bad-media", once=False):
            self._send(req, 200, b'{"schemaVersion":1}', "application/x-strange", send_body=body)
        elif self._fault("huge", once=False):
            self._send(req, 200, b" " * (5 << 20), media, send_body=body)
        else:
            self._send(req, 200, self.manifest, media, send_body=body)

    def _layer(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        data = self.layer
        if self._fault("endless", once=False):
            req.send_response(200)
            req.send_header("Content-Type", "application/octet-stream")
            req.send_header("Connection", "close")
            req.end_headers()
            try:
                for _ in range(10_000):  # ~640 MB at most: the client must stop long before
                    req.wfile.write(b"\0" * 65536)
            except OSError:
                pass
            return
        start = 0
        rng = req.headers.get("Range", "")
        if rng.startswith("bytes=") and not self._fault("no-range", once=False):
            start = int(rng[6:].rstrip("-"))
        status = 206 if start else 200
        part = data[start:]
        if self._fault("drop"):
            req.send_response(status)
            req.send_header("Content-Type", "application/octet-stream")
            req.send_header("Content-Length", str(len(part)))
            req.end_headers()
            req.wfile.write(part[: len(part) // 2])
            req.wfile.flush()
            req.close_connection = True
            return
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        if self._fault("slow", once=False) and body:
            req.send_response(status)
            req.send_header("Content-Length", str(len(part)))
            req.end_headers()
            try:
                for i in range(0, len(part), 65536):
                    req.wfile.write(part[i : i + 65536])
                    time.sleep(0.02)
            except OSError:
                pass
            return
        self._send(req, status, part, "application/octet-stream", headers, body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
