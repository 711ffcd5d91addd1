"""A real CNCF distribution registry (Debian's ``docker-registry``) on 127.0.0.1, for tests.

Config, storage and (with ``users``) an htpasswd file live in a temp dir named ``ipdr-…``; the
port is picked free at start; :meth:`stop` kills the process and removes the dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import httpx

BINARY = "/usr/bin/docker-registry"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    def __init__(
        self, users: dict[str, str] | None = None, auth_yaml: str = "", netns: str = ""
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="ipdr-registry-")
        self.netns = netns  # /proc/PID/ns/net: serve inside that network namespace
        self.users = users or {}
        self.auth_yaml = auth_yaml  # e.g. token auth: see token_issuer.py
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        auth = self.auth_yaml
        if self.users:
            htpasswd = os.path.join(self.dir, "htpasswd")
            for i, (user, password) in enumerate(self.users.items()):
                flags = "-Bbc" if i == 0 else "-Bb"
                subprocess.run(["htpasswd", flags, htpasswd, user, password], check=True,
                               capture_output=True)  # fmt: skip
            auth = f"auth:\n  htpasswd:\n    realm: ipdr\n    path: {htpasswd}\n"
        for _ in range(5):  # another process may take the free port first: try another
            self.port = _free_port()
            config = os.path.join(self.dir, "config.yml")
            with open(config, "w") as f:
                f.write(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}"
                )
            log = open(os.path.join(self.dir, "log"), "wb")  # noqa: SIM115
            wrapper = ["nsenter", f"--net={self.netns}", "--"] if self.netns else []
            command = [*wrapper, BINARY, "serve", config]
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
            log.close()
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"docker-registry did not start: {self.log()}")

    def _wait_ready(self, timeout: float = 20.0) -> bool:
        """Until GET /v2/ answers (200, or 401 with auth), or the process dies."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.netns:  # not reachable from here: its log says when it listens
                if f"listening on 127.0.0.1:{self.port}" in self.log():
                    return True
                time.sleep(0.05)
                continue
            try:
                r = httpx.get(f"http://{self.host}/v2/", timeout=1.0)
                if r.status_code in (200, 401):
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def blob_path(self, digest: str) -> str:
        """Where the registry keeps a blob's bytes (tests tamper with it)."""
        hexpart = digest.removeprefix("sha256:")
        return os.path.join(
            self.dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexpart[:2],
            hexpart, "data",
        )  # fmt: skip

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)
