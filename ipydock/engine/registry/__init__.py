"""Image references and the OCI distribution client: pull, push, login.

::

    "busybox"  --parse-->  Reference(domain="docker.io", path="library/busybox", tag="latest")
                              |-- .full      docker.io/library/busybox:latest   (stored)
                              '-- .familiar  busybox:latest                      (shown)

    pull/push ──> client.Registry (httpx; ping, auth challenge, tokens per scope)
                     ├── auth      ~/.docker/config.json, credential helpers, challenges
                     ├── meta      which compressed blob each layer was, where (push skips)
                     └── store     blobs, layers, index (ipydock.engine.store)

Modules load on use: ``reference`` is imported by every command; the client imports httpx.
"""
