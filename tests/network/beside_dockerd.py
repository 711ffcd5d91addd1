"""ipydock's side of ``test_dockerd_networks_and_ours_do_not_reach_each_other``: run in the
network namespace of a dockerd that has its bridges and rules there (``nsenter --net``, with a
mount namespace of its own whose /sys shows that network namespace's links).

``python -m tests.network.beside_dockerd STORE BUSYBOX_TGZ OUTSIDE_IP:PORT DOCKER_IP...``
makes a user-defined network with a web server on it (and then a docker network with
one), then tries every way between it and the
dockerd's containers (``DOCKER_IP``: a web server on port 8080 each, on docker0 and on a
user-defined docker network), and the way out to the test's outside host; prints one JSON
object of what answered, and removes what it made.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.models import RunOptions

SERVE = ("httpd", "-f", "-p", "8080", "-h", "/etc")


def reaches(ip: str, port: int = 8080) -> bool:
    """This network namespace itself (no container) connects to ``ip:port``."""
    try:
        socket.create_connection((ip, port), timeout=5).close()
        return True
    except OSError:
        return False


def docker(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    return proc.stdout.strip()


def main() -> None:
    store, tgz, outside, *docker_ips = sys.argv[1:]
    b = BundledBackend(Store(store))
    found: dict[str, object] = {}
    late = ""
    try:
        b.import_image(tgz, "busybox", changes=['CMD ["sh"]'])
        b.create_network("ipdn-beside-iso")
        cid = b.run(RunOptions("busybox", SERVE, network="ipdn-beside-iso"), detach=True).id
        with open(os.devnull, "w") as null:
            probe = ["sh", "-c", "until wget -qO- http://127.0.0.1:8080/hostname; do :; done"]
            assert b.exec(cid, probe, stdout=null) == 0
        with open(os.path.join(store, "ip.txt"), "w+") as f:
            b.exec(cid, ["sh", "-c", "ip -o -4 addr show eth0"], stdout=f)
            f.seek(0)
            ours = f.read().split("inet ")[1].split("/")[0]
        found["ours"] = ours
        # a docker network made after ours: dockerd puts its rules above our jumps then
        docker("network", "create", "ipdn-beside-late")
        late = docker("run", "-d", "--network", "ipdn-beside-late", "ipdn-beside-busybox", *SERVE)
        docker_ips.append(docker("inspect", "-f", "{{range .NetworkSettings.Networks}}"
                                 "{{.IPAddress}}{{end}}", late))  # fmt: skip

        def from_ours(ip: str, port: str = "8080") -> str | None:
            """What the server at ``ip:port`` answered a container of ours, None if nothing."""
            out: list[str] = []
            opts = RunOptions("busybox", ("nc", "-w", "3", ip, port), network="ipdn-beside-iso",
                              auto_remove=True)  # fmt: skip
            code = b.run(opts, output=lambda _s, text: out.append(text)).exit_code
            return "".join(out).strip() if code == 0 else None

        def from_docker(network: str) -> bool:
            proc = subprocess.run(["docker", "run", "--rm", "--network", network,
                                   "ipdn-beside-busybox", "nc", "-w", "3", ours, "8080"],
                                  capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
            return proc.returncode == 0

        host, port = outside.split(":")
        found["host to ours"] = reaches(ours)
        found["host to docker"] = [reaches(ip) for ip in docker_ips]
        found["ours to docker"] = [from_ours(ip) is not None for ip in docker_ips]
        nets = ("bridge", "ipdn-beside-d", "ipdn-beside-late")
        found["docker to ours"] = [from_docker(n) for n in nets]
        found["ours to outside"] = from_ours(host, port)
        found["docker to outside"] = subprocess.run(
            ["docker", "run", "--rm", "ipdn-beside-busybox", "nc", "-w", "3", host, port],
            capture_output=True, stdin=subprocess.DEVNULL).returncode == 0  # fmt: skip
    finally:
        docker("rm", "-f", late) if late else None
        docker("network", "rm", "ipdn-beside-late")
        for c in b.containers(all=True):
            b.remove_container(c.id, force=True)
        b.prune_networks()
        b.close()
    print(json.dumps(found))


if __name__ == "__main__":
    main()
