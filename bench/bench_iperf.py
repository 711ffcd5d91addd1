"""Network throughput: iperf3 (Debian's, copied with its libraries into a busybox image)
container to container on a user-defined bridge, and from the host through a port published
on 127.0.0.1, ipydock beside docker (a private dockerd in a network namespace of its own; its
published port is served by docker's default ``docker-proxy`` there, and the host-side
client runs in that namespace).

Run as root: ``python bench/bench_iperf.py [-t SECONDS] [--rounds N]``; each figure is the
median of the rounds, rows interleaved so that every row sees the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("IPYDOCK_LINK_PREFIX", "ipdni")
os.environ.setdefault("IPYDOCK_DEFAULT_BRIDGE", "ipdni0")

from ipydock.backends import BundledBackend  # noqa: E402
from ipydock.engine.network.bridge import drop_default_bridge  # noqa: E402
from ipydock.engine.store import Store  # noqa: E402
from ipydock.models import RunOptions  # noqa: E402
from ipydock.testing import Dockerd, busybox_rootfs, free_port  # noqa: E402

IPERF = "/usr/bin/iperf3"


def iperf_tarball(tmp: str) -> str:
    """busybox plus iperf3 and every library ``ldd`` names, at their own paths."""
    root = busybox_rootfs(os.path.join(tmp, "rootfs"))
    out = subprocess.run(["ldd", IPERF], capture_output=True, text=True, check=True).stdout
    files = [IPERF] + [w for line in out.splitlines() for w in line.split() if w.startswith("/")]
    for path in files:
        dest = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)
    tgz = os.path.join(tmp, "iperf.tar.gz")
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(root, arcname=".")
    return tgz


def gbits(report: str) -> float:
    data = json.loads(report[report.index("{") :])
    return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", type=int, default=3, help="seconds per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        sys.exit("iperf3 is not installed (apt-get install iperf3)")
    client = ["iperf3", "-J", "-t", str(args.t), "-c"]
    results: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ipdn-iperf-"))
        tgz = iperf_tarball(tmp)
        b = BundledBackend(Store(os.path.join(tmp, "store")))
        stack.callback(drop_default_bridge)
        stack.callback(b.close)
        b.import_image(tgz, "iperf", changes=['CMD ["sh"]'])
        b.create_network("ipdn-iperf")
        stack.callback(b.remove_network, "ipdn-iperf")
        ours_port = free_port()
        serve = RunOptions("iperf", ("iperf3", "-s"), network="ipdn-iperf",
                           publish=(f"127.0.0.1:{ours_port}:5201",))  # fmt: skip
        srv = b.run(serve, detach=True).id
        stack.callback(b.remove_container, srv, force=True)
        ours_ip = b.inspect_network("ipdn-iperf").containers[0].ipv4_address.split("/")[0]

        def ours_c2c() -> float:
            out: list[str] = []
            b.run(RunOptions("iperf", (*client, ours_ip), network="ipdn-iperf",
                             auto_remove=True), output=lambda _s, t: out.append(t))  # fmt: skip
            return gbits("".join(out))

        def ours_published() -> float:
            cmd = ["iperf3", "-J", "-t", str(args.t), "-c", "127.0.0.1", "-p", str(ours_port)]
            return gbits(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

        d = stack.enter_context(Dockerd(own_network=True))
        assert d.proc is not None
        from pyroute2 import IPRoute

        with IPRoute(netns=f"/proc/{d.proc.pid}/ns/net") as ns:  # its lo, for 127.0.0.1
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        d.run("import", "-c", 'CMD ["sh"]', tgz, "iperf")
        d.run("network", "create", "bench")
        stack.callback(d.run, "network", "rm", "bench")
        docker_port = free_port()
        d.run("run", "-d", "--name", "srv", "--network", "bench", "-p",
              f"127.0.0.1:{docker_port}:5201", "iperf", "iperf3", "-s")  # fmt: skip
        stack.callback(d.run, "rm", "-f", "srv")
        docker_ip = d.run("inspect", "-f", "{{.NetworkSettings.Networks.bench.IPAddress}}",
                          "srv").stdout.decode().strip()  # fmt: skip

        def docker_c2c() -> float:
            out = d.run("run", "--rm", "--network", "bench", "iperf", *client, docker_ip)
            return gbits(out.stdout.decode())

        def docker_published() -> float:
            cmd = ["nsenter", "-t", str(d.proc.pid), "-n", "iperf3", "-J", "-t", str(args.t),
                   "-c", "127.0.0.1", "-p", str(docker_port)]  # fmt: skip
            return gbits(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

        rows = {"ipydock container->container (user-defined)": ours_c2c,
                "docker container->container (user-defined)": docker_c2c,
                "ipydock published port on 127.0.0.1": ours_published,
                "docker published port on 127.0.0.1": docker_published}  # fmt: skip
        for _ in range(args.rounds):
            for name, measure in rows.items():
                results.setdefault(name, []).append(measure())
    medians = {name: statistics.median(v) for name, v in results.items()}
    print(f"{'what':<48}{'Gbit/s':>9}{'vs docker':>11}")
    for name, value in medians.items():
        other = medians.get(name.replace("ipydock", "docker"))
        ratio = f"{value / other:.2f}x" if name.startswith("ipydock") and other else ""
        print(f"{name:<48}{value:>9.2f}{ratio:>11}")


if __name__ == "__main__":
    main()
