"""An OCI distribution API v2 client over ``httpx``: one :class:`Registry` per registry host.

::

    ping   GET /v2/  ──401 + WWW-Authenticate──> Basic: user:password on every request
                                               Bearer realm,service: GET realm?service&scope
                                               ──> token, cached per scope (repository:NAME:pull)
    https first (system CAs + /etc/docker/certs.d/HOST/*.crt, client NAME.cert/NAME.key);
    plain http only for localhost / 127.0.0.0/8 / ::1 and listed insecure hosts
    manifests  GET|HEAD|PUT /v2/NAME/manifests/REF         (Accept: OCI + Docker types)
    blobs      GET|HEAD /v2/NAME/blobs/DIGEST               (GET follows redirects, Range resumes)
    uploads    POST /v2/NAME/blobs/uploads/[?mount=D&from=REPO] -> PUT LOCATION?digest=D
               (streamed: POST -> PATCH LOCATION, body made while sent -> PUT ?digest=D)
               (chunked: POST -> PATCH LOCATION (Content-Range) ... -> PUT LOCATION?digest=D)

Every ``httpx`` error and every error status becomes a :mod:`ipydock.errors` class here, in
:func:`transport.transport_errors` and :meth:`Registry.check`, and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

# httpx, and what it imports only when its first Client is made (its transport: httpcore,
# h11, anyio, certifi; ~30 ms), are imported with this module: the command server loads it
# before any command, so a pull or push no longer pays that on its way to the first request.
import httpcore  # noqa: F401
import httpx

from ipydock.commands.credentials import Credentials, lookup
from ipydock.engine.registry import auth
from ipydock.engine.registry.transport import (
    is_insecure,
    is_loopback,
    offline,
    tls_context,
    transport_errors,
)
from ipydock.errors import (
    ManifestUnknown,
    RegistryAuthFailed,
    RegistryError,
    RegistryUnreachable,
)

__all__ = ["MANIFEST_TYPES", "Registry"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX)
MAX_MANIFEST = 4 << 20  # distribution's own limit for a manifest body
RETRIES = 3
SMALL = 1 << 20  # a blob uploaded in the closing PUT itself (see Registry.upload)


class Registry:
    """A session with one registry host; thread-safe for parallel blob transfers."""

    def __init__(
        self,
        domain: str,
        credentials: Credentials | None = None,
        *,
        use_stored_credentials: bool = True,
    ) -> None:
        self.domain = domain
        self.host = "registry-1.docker.io" if domain == "docker.io" else domain
        self.credentials = credentials
        if credentials is None and use_stored_credentials:
            self.credentials = lookup(domain)
        _large_reads()
        self.client = httpx.Client(
            timeout=httpx.Timeout(30.0, read=120.0),
            follow_redirects=True,
            headers={"User-Agent": "ipydock"},
            verify=tls_context(self.host),
        )
        self.base = ""
        self.challenge: auth.Challenge | None = None
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection and auth -------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/``: pick https or (loopback only) http and learn the auth challenge."""
        if self.base:
            return
        if offline(self.host):
            raise RegistryUnreachable(self.domain, "offline (IPYDOCK_OFFLINE is set)")
        # A loopback registry is asked in plain http first: a TLS one answers that with 400
        # (or drops it) and is asked again over TLS, and a plain one never costs a handshake.
        if is_loopback(self.host):
            schemes = ["http", "https"]
        else:
            schemes = ["https", "http"] if is_insecure(self.host) else ["https"]
        last: RegistryUnreachable | None = None
        for i, scheme in enumerate(schemes):
            more = i + 1 < len(schemes)
            try:
                with transport_errors(self.domain):
                    resp = self.client.get(f"{scheme}://{self.host}/v2/")
            except RegistryUnreachable as exc:
                refused = isinstance(exc.__cause__, httpx.ConnectError)
                if more and (scheme == "http" or refused):
                    last = exc
                    continue  # a plain-http registry refuses the TLS handshake, or vice versa
                raise
            if resp.status_code == 400 and scheme == "http" and more:
                continue  # plain http to a TLS registry: ask it over TLS
            if resp.status_code == 400 and last is not None:
                raise last  # plain http to a TLS registry: the TLS failure is the news
            if resp.status_code not in (200, 401):
                self.check(resp, "ping")
            self.base = f"{scheme}://{self.host}"
            header = resp.headers.get("www-authenticate", "")
            self.challenge = auth.parse_challenge(header) if resp.status_code == 401 else None
            return
        assert last is not None
        raise last

    def _auth_header(self, scope: str, fresh: bool = False) -> dict[str, str]:
        if self.challenge is None:
            return {}
        if self.challenge.scheme == "basic":
            if self.credentials is None:
                return {}
            import base64

            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.challenge.scheme == "bearer":
            token = None if fresh else self._tokens.get(scope)
            if token is None:
                token = self._tokens[scope] = self._fetch_token(scope)
            return {"Authorization": f"Bearer {token}"}
        raise RegistryError(self.domain, f"unsupported auth scheme {self.challenge.scheme!r}")

    def _fetch_token(self, scope: str) -> str:
        assert self.challenge is not None
        realm = self.challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(self.domain, f"bad token realm {realm!r} in its challenge")
        params = [("service", self.challenge.params.get("service", ""))]
        params += [("scope", s) for s in scope.split()]
        basic = None
        if self.credentials is not None and self.credentials.username != "<token>":
            basic = (self.credentials.username, self.credentials.password)
        with transport_errors(realm):
            resp = self.client.get(realm, params=params, auth=basic)  # type: ignore[arg-type]
        if resp.status_code in (401, 403):
            why = "wrong username or password" if basic else "the token service refused access"
            raise RegistryAuthFailed(self.domain, why, resp.status_code)
        self.check(resp, "token")
        try:
            doc = resp.json()
        except ValueError as exc:
            raise RegistryError(self.domain, "token service answered with no JSON") from exc
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError(self.domain, "token service answered without a token")
        return str(token)

    # -- requests ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base}{path}"

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | Callable[[], Iterator[bytes]] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """One request with auth, retried on 401 (fresh token), 429, 5xx and dropped links.

        ``content`` is bytes or a function giving a fresh iterator (a retry needs the body again).
        With ``stream`` the caller must close the response.
        """
        self.ping()
        fresh = False
        for attempt in range(RETRIES + 1):
            hdrs = {**(headers or {}), **self._auth_header(scope, fresh)}
            body = content() if callable(content) else content
            req = self.client.build_request(
                method, self.url(path), headers=hdrs, content=body, params=params
            )
            try:
                with transport_errors(self.domain):
                    resp = self.client.send(req, stream=stream)
            except RegistryUnreachable:
                if attempt == RETRIES or method in ("POST", "PATCH") or not retry:
                    raise
                time.sleep(0.2 * 2**attempt)
                continue
            if not retry:
                return resp
            if resp.status_code == 401 and not fresh and self._rechallenge(resp):
                resp.close()
                fresh = True
                continue
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt < RETRIES:
                resp.close()
                time.sleep(_retry_after(resp.headers.get("retry-after"), attempt))
                continue
            return resp
        raise AssertionError("unreachable")

    def _rechallenge(self, resp: httpx.Response) -> bool:
        """A 401 on a request: the registry may have asked for auth only now (or more scope)."""
        header = resp.headers.get("www-authenticate", "")
        challenge = auth.parse_challenge(header) if header else None
        if challenge is None:
            return False
        self.challenge = challenge
        return True

    def check(self, resp: httpx.Response, what: str, ref: str = "") -> None:
        """Raise the error an error status means; ``ref`` names a manifest for 404s."""
        status = resp.status_code
        if status < 400:
            return
        if resp.is_stream_consumed is False:
            with contextlib.suppress(Exception):
                resp.read()
        message = _error_message(resp)
        if status in (401, 403):
            why = message or ("authentication required" if status == 401 else "access denied")
            if status == 401 and self.credentials is not None:
                why = f"wrong username or password ({why})"
            raise RegistryAuthFailed(self.domain, f"{what}: {why}", status)
        if status == 404 and ref:
            raise ManifestUnknown(self.domain, ref)
        if status == 429:
            raise RegistryError(self.domain, f"{what}: too many requests; try again later", 429)
        raise RegistryError(
            self.domain, f"{what}: {status} {message or resp.reason_phrase}", status
        )

    # -- manifests -----------------------------------------------------------------------------

    def get_manifest(self, name: str, ref: str, shown: str) -> tuple[bytes, str]:
        """(body, media type) of a manifest or index; ``shown`` names it in errors."""
        resp = self.request(
            "GET",
            f"/v2/{name}/manifests/{ref}",
            f"repository:{name}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            stream=True,
        )
        try:
            self.check(resp, f"manifest {shown}", shown)
            body = bytearray()
            with transport_errors(self.domain):
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_MANIFEST:
                        raise RegistryError(self.domain, f"manifest {shown} is larger than 4 MiB")
        finally:
            resp.close()
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        if media not in MANIFEST_TYPES:
            with contextlib.suppress(ValueError):
                media = json.loads(body).get("mediaType") or media
        return bytes(body), media

    def put_manifest(self, name: str, ref: str, body: bytes, media_type: str) -> None:
        resp = self.request(
            "PUT",
            f"/v2/{name}/manifests/{ref}",
            f"repository:{name}:pull,push",
            headers={"Content-Type": media_type},
            content=body,
        )
        self.check(resp, f"manifest upload to {name}:{ref}")

    # -- blobs ---------------------------------------------------------------------------------

    def blob_size(self, name: str, digest: str, scope: str = "pull") -> int | None:
        """``HEAD`` a blob: its size, or None when the repository does not have it."""
        resp = self.request("HEAD", f"/v2/{name}/blobs/{digest}", f"repository:{name}:{scope}")
        if resp.status_code == 404:
            return None
        self.check(resp, f"blob {digest[:19]}")
        return int(resp.headers.get("content-length", 0))

    def open_blob(self, name: str, digest: str, offset: int = 0) -> httpx.Response:
        """A streamed ``GET`` of a blob from ``offset`` (status 206 when the Range was honoured);
        the caller closes it."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request(
            "GET",
            f"/v2/{name}/blobs/{digest}",
            f"repository:{name}:pull",
            headers=headers,
            stream=True,
        )
        if resp.status_code >= 400:
            try:
                self.check(resp, f"blob {digest[:19]} of {name}")
            finally:
                resp.close()
        return resp

    def mount(self, name: str, digest: str, source: str) -> bool:
        """Cross-repository mount; True if the registry mounted it (else nothing happened)."""
        resp = self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/",
            f"repository:{name}:pull,push repository:{source}:pull",
            params={"mount": digest, "from": source},
        )
        if resp.status_code == 201:
            return True
        if resp.status_code == 202:  # the registry started an upload instead: cancel it
            location = resp.headers.get("location")
            if location:
                with contextlib.suppress(RegistryError):
                    self.request("DELETE", location, f"repository:{name}:pull,push")
            return False
        if resp.status_code in (401, 403, 404):
            return False  # no access to the source: upload instead
        self.check(resp, f"mount of {digest[:19]} from {source}")
        return False

    def upload(
        self, name: str, digest: str, size: int, chunks: Callable[[], Iterator[bytes]]
    ) -> None:
        """Upload a blob whose digest is known. Up to SMALL bytes (a config): ``POST`` opens
        the upload, one ``PUT …?digest=`` sends the blob. Larger ones as docker and skopeo
        send them: ``POST``, one ``PATCH`` streaming the blob (chunked transfer encoding:
        distribution takes 55 MB in ~250 ms so, ~290 ms as a body with a Content-Length, in a
        PUT or a PATCH alike), then ``PUT ?digest=``. A dropped link or a 5xx answer to the
        PATCH starts a new upload (``chunks()`` gives the body again)."""
        scope = f"repository:{name}:pull,push"
        what = f"upload of {digest[:19]} to {name}"
        for attempt in range(RETRIES + 1):
            location = self._open_upload(name, scope, what)
            if size <= SMALL:
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                self._close_upload(location, scope, digest, what, headers=headers,
                                   content=chunks)  # fmt: skip
                return
            headers = {"Content-Type": "application/octet-stream"}
            try:
                resp = self.request("PATCH", location, scope, headers=headers, content=chunks(),
                                    retry=False)  # fmt: skip
            except RegistryUnreachable:
                if attempt == RETRIES:
                    raise
                time.sleep(0.2 * 2**attempt)
                continue
            if resp.status_code >= 500 and attempt < RETRIES:
                resp.close()
                time.sleep(_retry_after(resp.headers.get("retry-after"), attempt))
                continue
            self.check(resp, what)
            self._close_upload(resp.headers.get("location") or location, scope, digest, what)
            return

    def _open_upload(self, name: str, scope: str, what: str) -> str:
        """``POST`` a new upload; the URL it names for the rest."""
        resp = self.request("POST", f"/v2/{name}/blobs/uploads/", scope)
        self.check(resp, what)
        location = resp.headers.get("location")
        if not location:
            raise RegistryError(self.domain, "upload started without a Location header")
        return location

    def _close_upload(self, location: str, scope: str, digest: str, what: str,
                      **body: Any) -> None:  # fmt: skip
        """``PUT location?digest=``: the upload is complete (``body``: its last, or only, part;
        none by default)."""
        url = httpx.URL(self.url(location)).copy_merge_params({"digest": digest})
        body.setdefault("headers", {"Content-Length": "0"})
        self.check(self.request("PUT", str(url), scope, **body), what)

    def upload_stream(self, name: str, body: Iterator[bytes], digest: Callable[[], str]) -> str:
        """Streamed upload: ``POST``, one ``PATCH`` whose body is made as it is sent (chunked
        transfer encoding), then ``PUT ?digest=`` with the digest known only now. Not retried
        (the body cannot be replayed); returns the digest."""
        scope = f"repository:{name}:pull,push"
        location = self._open_upload(name, scope, f"upload to {name}")
        headers = {"Content-Type": "application/octet-stream"}
        resp = self.request("PATCH", location, scope, headers=headers, content=body, retry=False)
        self.check(resp, f"upload to {name}")
        done = digest()
        self._close_upload(resp.headers.get("location") or location, scope, done,
                           f"upload of {done[:19]} to {name}")  # fmt: skip
        return done

    def upload_chunked(self, name: str, digest: str, parts: Iterator[bytes]) -> None:
        """Chunked upload: ``POST``, one ``PATCH`` per part (``Content-Range``), then ``PUT
        ?digest=`` with no body. Each answer names the URL of the next request."""
        scope = f"repository:{name}:pull,push"
        what = f"upload of {digest[:19]} to {name}"
        resp = self.request("POST", f"/v2/{name}/blobs/uploads/", scope)
        self.check(resp, what)
        offset = 0
        for part in parts:
            location = resp.headers.get("location")
            if not location:
                raise RegistryError(self.domain, f"{what}: no Location header")
            end = offset + len(part) - 1
            resp = self.request(
                "PATCH",
                location,
                scope,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end}",
                    "Content-Length": str(len(part)),
                },
                content=part,
            )
            self.check(resp, what)
            offset = end + 1
        location = resp.headers.get("location")
        if not location:
            raise RegistryError(self.domain, f"{what}: no Location header")
        self._close_upload(location, scope, digest, what)


#: What httpcore asks the socket for at a time (its default is 64 KB).
READ_SIZE = 1 << 20


def _large_reads() -> None:
    """httpcore reads a response 64 KB at a time, every read copied through h11's buffer and
    handed up as a chunk: a blob's bytes cost ~35% less CPU read up to 1 MB at a time (the
    socket gives what it has; TLS gives a record at a time anyway). A class attribute of
    httpcore's HTTP/1.1 connection, so set there (only ever raised; left alone if it moves)."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # pragma: no cover - another httpcore layout: its default stays
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", READ_SIZE) < READ_SIZE:
        HTTP11Connection.READ_NUM_BYTES = READ_SIZE


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait before a retry: the server's Retry-After (seconds, at most 10), else
    exponential backoff from 0.2 s."""
    try:
        return min(max(float(header or ""), 0.0), 10.0)
    except ValueError:
        return 0.2 * 2**attempt


def _error_message(resp: httpx.Response) -> str:
    """The first message of a distribution error body (``{"errors": [{"code", "message"}]}``)."""
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        return ""
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("message") or first.get("code") or "")
    return ""
