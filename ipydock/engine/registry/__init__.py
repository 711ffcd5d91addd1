"""Image references and (later) the OCI distribution client.

::

    "busybox"  --parse-->  Reference(domain="docker.io", path="library/busybox", tag="latest")
                              |-- .full      docker.io/library/busybox:latest   (stored)
                              '-- .familiar  busybox:latest                      (shown)
"""
