"""``ipydock system service``: the Docker Engine API on a socket, as ``podman system service``."""

from __future__ import annotations

import argparse
import sys
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import arg, command
from ipydock.cli.registry import arguments as _args


def _service_call(backend: Backend, a: argparse.Namespace) -> None:
    """Serve until stopped (SIGTERM, Ctrl-C) or ``--time`` seconds without a request."""
    from ipydock.backends import BundledBackend
    from ipydock.errors import UsageError
    from ipydock.service import serve

    if not isinstance(backend, BundledBackend):
        raise UsageError("system service serves the bundled engine only")
    if a.time < 0:
        raise UsageError("--time must be 0 (serve until stopped) or more seconds")

    def ready(uri: str) -> None:
        print(f"serving the Docker Engine API on {uri} (DOCKER_HOST={uri})", file=sys.stderr,
              flush=True)  # fmt: skip

    # a warm helper forks the containers' supervisors: `docker run` starts in milliseconds
    serve(BundledBackend(backend.store, warm=True), a.uri, idle=a.time, ready=ready)


@command("system", "service", "Serve the Docker Engine API (docker CLI, SDK, compose)",
         call=_service_call)  # fmt: skip
@_args(
    arg("-t", "--time", type=float, default=5,
        help="seconds without a request before it leaves (default 5; 0: serve until stopped)"),
    arg("uri", nargs="?", metavar="URI",
        help="unix:///PATH or tcp://127.0.0.1:PORT (default: /run/ipydock/docker.sock for root, "
             "$XDG_RUNTIME_DIR/ipydock/docker.sock otherwise)"),
)  # fmt: skip
def system_service(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    _service_call(backend, a)
    return 0
