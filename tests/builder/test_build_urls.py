"""http(s) URLs in builds, served by a local HTTP server on 127.0.0.1 that each test starts and
stops: ``ADD URL`` downloads without unpacking (mode 0600 unless ``--chmod``, mtime from
``Last-Modified``, a directory destination takes the URL's last path element), and a tarball
URL as the build context."""

from __future__ import annotations

import email.utils
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

MODIFIED = 1_600_000_000  # Last-Modified of every served file


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def served() -> Iterator[tuple[dict[str, bytes], str]]:
    """``(files, base URL)``: put bytes in ``files[path]``; the server lives for the test."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Last-Modified", email.utils.formatdate(MODIFIED, usegmt=True))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield files, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _layer(store, image: str, index: int) -> dict[str, tarfile.TarInfo | bytes]:
    """Members (and file bytes) of the image's ``index``-th layer."""
    rec = store.resolve(image)
    layer = store.layer_chain(rec)[index]
    out: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(store.blobs.path(layer.diff_id)) as tar:
        for m in tar.getmembers():
            out[m.name.rstrip("/")] = m
            if m.isreg():
                out[m.name + ":data"] = tar.extractfile(m).read()  # type: ignore[union-attr]
    return out


def test_add_url_downloads_without_unpacking(builder, store, served, tmp_path: Path) -> None:
    files, base = served
    archive = _tgz({"inside.txt": b"x\n"})
    files["/files/app.tar.gz"] = archive
    files["/files/plain.txt"] = b"plain\n"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"ADD {base}/files/app.tar.gz /dl/\n"
        f"ADD --chmod=644 {base}/files/plain.txt /named.txt\n"
    )
    result = builder.build(str(ctx), tags=["urls"])
    first = _layer(store, "urls", -2)
    member = first["dl/app.tar.gz"]
    assert isinstance(member, tarfile.TarInfo)
    assert member.mode & 0o7777 == 0o600 and (member.uid, member.gid) == (0, 0)
    assert int(member.mtime) == MODIFIED
    assert first["dl/app.tar.gz:data"] == archive  # not unpacked
    assert "dl/inside.txt" not in first
    second = _layer(store, "urls", -1)
    named = second["named.txt"]
    assert isinstance(named, tarfile.TarInfo) and named.mode & 0o7777 == 0o644
    assert second["named.txt:data"] == b"plain\n"
    # the URL is part of the cache key: a rebuild hits the cache
    again = builder.build(str(ctx), tags=["urls"])
    assert again.image_id == result.image_id and again.cached == 2


def test_url_context_is_a_tarball(builder, store, served) -> None:
    files, base = served
    dockerfile = b"FROM busybox\nCOPY . /ctx/\n"
    files["/context.tar.gz"] = _tgz({"Dockerfile": dockerfile, "a.txt": b"from the url\n"})
    builder.build(f"{base}/context.tar.gz", tags=["fromurl"])
    layer = _layer(store, "fromurl", -1)
    assert layer["ctx/a.txt:data"] == b"from the url\n"
    assert layer["ctx/Dockerfile:data"] == dockerfile


def test_url_context_not_found_is_a_context_error(builder, served) -> None:
    from ipydock.errors import BuildContextError

    _, base = served
    with pytest.raises(BuildContextError):
        builder.build(f"{base}/missing.tar.gz")
