"""Networks: median latency of ``run --rm busybox true`` per network mode and of
``network create`` + ``network rm``, ipydock (a warm Python process, as a notebook calls it)
beside docker on a private dockerd in a network namespace of its own (``Dockerd(own_network=
True)``: its bridges and rules never touch the host), with docker's own defaults: its default
bridge and its iptables rules (isolation, NAT), as ipydock's networks have theirs.
``--docker-no-iptables`` starts it with ``--iptables=false --bridge=none`` instead (docker's
create + rm then adds no rule at all; its "user-defined" row stands for both bridge rows).

Run as root: ``python bench/bench_network.py [-n 30] [--rounds 3] [--gap 50]``. Each run starts
after ``--gap`` ms of idle (default 50; see bench_run.py: latency, not back-to-back throughput,
``--gap 0`` for that); rows are measured in
interleaved rounds (every row n/rounds times per round) and each figure is the median of all
its runs, so every row sees the same machine. ipydock's links are named ``ipdnb…`` and its
default bridge ``ipdnb0`` (removed at the end), so a running ipydock is not disturbed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("IPYDOCK_LINK_PREFIX", "ipdnb")
os.environ.setdefault("IPYDOCK_DEFAULT_BRIDGE", "ipdnb0")

from ipydock.backends import BundledBackend  # noqa: E402
from ipydock.engine.network.bridge import drop_default_bridge  # noqa: E402
from ipydock.engine.store import Store  # noqa: E402
from ipydock.models import RunOptions  # noqa: E402
from ipydock.testing import Dockerd, busybox_tarball  # noqa: E402

Sample = Callable[[int], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=30, help="runs per row (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker rows")
    parser.add_argument("--gap", type=float, default=50,
                        help="idle ms before each run (default 50; 0: back to back)")  # fmt: skip
    parser.add_argument("--docker-no-iptables", action="store_true",
                        help="docker without its rules and default bridge")  # fmt: skip
    args = parser.parse_args()
    rows: dict[str, Sample] = {}
    times: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ipdn-bench-"))
        tgz = busybox_tarball(os.path.join(tmp, "busybox.tar.gz"))
        b = BundledBackend(Store(os.path.join(tmp, "store")))
        stack.callback(drop_default_bridge)
        stack.callback(b.close)
        b.import_image(tgz, "busybox", changes=['CMD ["sh"]'])
        b.create_network("ipdn-bench")
        stack.callback(b.remove_network, "ipdn-bench")

        def ours(network: str) -> Sample:
            opts = RunOptions("busybox", ("true",), network=network, auto_remove=True)
            return lambda _i: b.run(opts) and None

        rows["ipydock run --rm --network none"] = ours("none")
        rows["ipydock run --rm (default bridge)"] = ours("default")
        rows["ipydock run --rm --network user-defined"] = ours("ipdn-bench")

        def create_rm(i: int) -> None:
            b.create_network(f"ipdn-b{i}")
            b.remove_network(f"ipdn-b{i}")

        rows["ipydock network create + rm"] = create_rm
        if not args.no_docker:
            flags = None if args.docker_no_iptables else ()
            d = stack.enter_context(Dockerd(own_network=True, flags=flags))
            d.run("import", "-c", 'CMD ["sh"]', tgz, "busybox")
            d.run("network", "create", "bench")
            stack.callback(d.run, "network", "rm", "bench")

            def docker(*flags: str) -> Sample:
                return lambda _i: d.run("run", "--rm", *flags, "busybox", "true") and None

            rows["docker run --rm --network none"] = docker("--network", "none")
            if not args.docker_no_iptables:
                rows["docker run --rm (default bridge)"] = docker()
            rows["docker run --rm --network user-defined"] = docker("--network", "bench")

            def docker_create_rm(i: int) -> None:
                d.run("network", "create", f"b{i}")
                d.run("network", "rm", f"b{i}")

            rows["docker network create + rm"] = docker_create_rm
        k = max(1, args.n // args.rounds)
        for sample in rows.values():  # warm-up
            sample(10_000)
        for r in range(args.rounds):
            for name, sample in rows.items():
                for i in range(k):
                    time.sleep(args.gap / 1000)
                    start = time.perf_counter()
                    sample(r * k + i)
                    times.setdefault(name, []).append(time.perf_counter() - start)
    medians = {name: statistics.median(ts) * 1000 for name, ts in times.items()}
    idle = f"each after {args.gap:g} ms idle" if args.gap else "back to back"
    print(f"median of {k * args.rounds} runs, {idle}")
    print(f"{'what':<44}{'ms':>9}{'vs docker':>11}")
    for name, ms in medians.items():
        ref = {"none": "docker run --rm --network none",
               "default": "docker run --rm (default bridge)",
               "create": "docker network create + rm"}  # fmt: skip
        key = next((k for k in ref if k in name), "")
        user = "docker run --rm --network user-defined"
        other = medians.get(ref.get(key, user), medians.get(user))
        ratio = f"{ms / other:.2f}x" if other and not name.startswith("docker") else ""
        print(f"{name:<44}{ms:>9.1f}{ratio:>11}")


if __name__ == "__main__":
    main()
