"""Benchmark: Debian's docker client against ``ipydock system service`` and against dockerd.

Two rows, the same docker client (``/usr/bin/docker``, 20.10) timed as a new process each run:

* ``docker run --rm --network none busybox true`` (create, attach, wait, start, removal);
* ``docker images`` with 1,000 images (the same docker-archive loaded into both, with
  ``docker load`` through each engine's API).

The service runs on a fresh store with its warm helper (as ``ipydock system service`` starts
it); dockerd is a private one (``ipydock.testing.Dockerd``: own data root, own network
namespace). Rows are measured in interleaved rounds and each figure is the median of all its
runs, so both sides see the same machine. Targets (issue 13): run ≤ 0.5× dockerd, images ≤ 1×.

Run as root: ``python bench/bench_service.py [-n 30] [--images 1000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))

from bench_images import many_images_archive  # noqa: E402

from ipydock.testing import Dockerd, ServiceProcess, busybox_tarball  # noqa: E402

DOCKER = "/usr/bin/docker"


def timed(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([DOCKER, *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=30, help="runs of each row")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ipydock-bench-service-") as tmp:
        tgz = busybox_tarball(os.path.join(tmp, "busybox.tar.gz"))
        archive = os.path.join(tmp, "many.tar")
        many_images_archive(archive, a.images, tgz)
        svc = ServiceProcess(os.path.join(tmp, "store"))
        with svc, Dockerd() as dockerd:
            envs = {"ipydock": svc.env(), "dockerd": dockerd.env()}
            for env in envs.values():
                subprocess.run([DOCKER, "import", "--change", 'CMD ["sh"]', tgz, "busybox"],
                               env=env, check=True, capture_output=True)  # fmt: skip
                timed(env, "run", "--rm", "--network", "none", "busybox", "true")  # warm up
            run = ("run", "--rm", "--network", "none", "busybox", "true")
            samples: dict[tuple[str, str], list[float]] = {}
            per_round = max(1, a.n // a.rounds)
            for _ in range(a.rounds):
                for name, env in envs.items():
                    for _ in range(per_round):
                        samples.setdefault(("run", name), []).append(timed(env, *run))
            for env in envs.values():
                subprocess.run([DOCKER, "load", "-i", archive], env=env, check=True,
                               capture_output=True)  # fmt: skip
                listed = subprocess.run([DOCKER, "images", "-q"], env=env, check=True,
                                        capture_output=True, text=True).stdout  # fmt: skip
                count = listed.count("\n")
                assert count >= a.images, count
            for _ in range(a.rounds):
                for name, env in envs.items():
                    for _ in range(per_round):
                        samples.setdefault(("images", name), []).append(timed(env, "images"))
    rows = [("docker run --rm busybox true", "run", 0.5),
            (f"docker images ({a.images} images)", "images", 1.0)]  # fmt: skip
    print(f"{'command (median ms)':<34} {'service':>9} {'dockerd':>9} {'ratio':>7} {'target':>7}")
    for label, key, target in rows:
        ours = statistics.median(samples[(key, "ipydock")])
        theirs = statistics.median(samples[(key, "dockerd")])
        ratio = ours / theirs
        mark = "ok" if ratio <= target else "MISSED"
        print(f"{label:<34} {ours:>9.0f} {theirs:>9.0f} {ratio:>6.2f}x {target:>5.1f}x {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
