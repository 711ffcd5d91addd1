"""Benchmark: ``ipydock build`` beside ``docker build`` (20.10, legacy builder), same machine.

The reference Dockerfile copies 200 small files, runs a few commands and sets some metadata, on
the busybox test image (imported into both engines). Timed, as the median of several runs, each
through the CLI in a new process, the way a user runs it (``ipydock`` with its warm command
server, as after a user's first command; the last rows without it and from a warm process):

* cold: a build with ``--no-cache`` (every step made again; the base image is present);
* cached: a rebuild with everything in the cache.

A second table is the cost that grows with the work: a cold build whose one ``COPY`` brings a
context of 20,000 files (80 MB, in 100 directories; a ``.dockerignore`` leaves the Dockerfile
out), through the CLI on both sides, median of ``--large-runs``.

Prints the times and the ratios ipydock/docker (targets: cold <= 0.5, cached <= 0.33, the
large context <= 0.3). Run as root: ``python bench/bench_build.py [--runs 5] [--large-runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from ipydock.testing import CommandServer, Dockerd, busybox_tarball

DOCKERFILE = """\
FROM busybox
LABEL org.example.bench=build
ENV APP=/app LANG=C.UTF-8
WORKDIR /app
COPY files/ /app/files/
RUN mkdir -p /app/out && cat /app/files/* | wc -c > /app/out/bytes
RUN ls /app/files | wc -l > /app/out/count && rm -f /app/files/f000.txt
RUN echo done > /app/out/done
EXPOSE 8080
USER nobody
CMD ["cat", "/app/out/bytes"]
"""


def make_context(path: str, files: int = 200) -> None:
    os.makedirs(os.path.join(path, "files"))
    for i in range(files):
        with open(os.path.join(path, "files", f"f{i:03d}.txt"), "w") as f:
            f.write(f"file {i}\n" * (1 + i % 16))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)


LARGE_DOCKERFILE = "FROM busybox\nCOPY . /app/\n"


def make_large_context(path: str, files: int = 20_000, size: int = 4096) -> int:
    """``files`` files of ``size`` bytes (each its own content) in directories of 200, the
    Dockerfile and a ``.dockerignore``; returns the bytes in the files."""
    for d in range(-(-files // 200)):
        sub = os.path.join(path, "src", f"d{d:03d}")
        os.makedirs(sub)
        for i in range(min(200, files - d * 200)):
            with open(os.path.join(sub, f"f{i:03d}.dat"), "wb") as f:
                f.write((b"%05d-%03d " % (d, i)) * (size // 10) + b"\n" * (size % 10))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(LARGE_DOCKERFILE)
    with open(os.path.join(path, ".dockerignore"), "w") as f:
        f.write("Dockerfile\n")
    return files * size


def median_times(fns: list[Callable[[], object]], runs: int) -> list[float]:
    """Each ``fn`` ``runs`` times, in turn (one run of each per round: this machine's speed
    drifts, and alternating lets every side see the same); their median times."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _warm_cached(root: str, ctx: str, runs: int) -> float:
    """A fully cached rebuild from a live Python process (the notebook's case)."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store

    backend = BundledBackend(Store(root))
    backend.build(ctx, tags=["bench:1"])
    return median_time(lambda: backend.build(ctx, tags=["bench:1"]), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--large-runs", type=int, default=3, help="0 leaves the table out")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (RUN steps need namespaces; dockerd needs root)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="ipydock-bench-build-")
    try:
        ctx, root = os.path.join(work, "ctx"), os.path.join(work, "store")
        make_context(ctx)
        large = os.path.join(work, "large")
        large_bytes = make_large_context(large) if args.large_runs else 0
        tgz = busybox_tarball(os.path.join(work, "busybox.tgz"))
        script = os.path.join(os.path.dirname(sys.executable), "ipydock")  # as users run it
        command = [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]
        ipd = [*command, "--root", root]
        server = CommandServer()  # started below, with dockerd
        env = {**os.environ, "IPYDOCK_SERVER": "0"}
        subprocess.run([*ipd, "image", "import", "-c", 'CMD ["sh"]', tgz, "busybox"], check=True,
                       capture_output=True, env=env)  # fmt: skip
        env = server.env

        def ours(*flags: str) -> None:
            subprocess.run([*ipd, "build", "-q", *flags, "-t", "bench:1", ctx], check=True,
                           capture_output=True, env=env)  # fmt: skip

        with Dockerd() as dockerd, server:
            dockerd.run("import", "-c", 'CMD ["sh"]', tgz, "busybox")

            def theirs(*flags: str) -> None:
                dockerd.run("build", "-q", *flags, "-t", "bench:1", ctx)

            rows = []
            for label, flags in (("cold (--no-cache)", ("--no-cache",)), ("cached", ())):
                ours(*flags), theirs(*flags)  # warm up: page cache, cache entries
                t_ours, t_docker = median_times(
                    [lambda f=flags: ours(*f), lambda f=flags: theirs(*f)], args.runs
                )
                rows.append((label, t_ours, t_docker))
            large_row = None
            if args.large_runs:
                large_row = median_times(
                    [
                        lambda: subprocess.run([*ipd, "build", "-q", "--no-cache", "-t", "big:1",
                                                large], check=True, capture_output=True, env=env),
                        lambda: dockerd.run("build", "-q", "--no-cache", "-t", "big:1", large),
                    ],
                    args.large_runs,
                )  # fmt: skip
            env = {**os.environ, "IPYDOCK_SERVER": "0"}
            no_server = median_time(ours, args.runs)
        warm = _warm_cached(root, ctx, args.runs)
        print(f"reference build: 200 files, {DOCKERFILE.count(chr(10))} instructions, "
              f"median of {args.runs} runs")  # fmt: skip
        print(f"{'':20} {'ipydock':>10} {'docker':>10} {'ratio':>8}  target")
        for (label, a, b), target in zip(rows, (0.5, 0.33), strict=True):
            ok = "ok" if a / b <= target else "MISSED"
            print(f"{label:20} {a:9.3f}s {b:9.3f}s {a / b:8.2f}  <= {target} {ok}")
        print(
            f"{'cached, no server':20} {no_server:9.3f}s {'':>10} "
            f"{no_server / rows[1][2]:8.2f}  (a new Python process, IPYDOCK_SERVER=0)"
        )
        print(f"{'cached, warm process':20} {warm:9.3f}s {'':>10} {warm / rows[1][2]:8.2f}  "
              "(as from a notebook: no interpreter start-up)")  # fmt: skip
        if large_row is not None:
            a, b = large_row
            ok = "ok" if a / b <= 0.3 else "MISSED"
            print(
                f"\nlarge context: 20,000 files ({large_bytes / 1e6:.0f} MB), "
                f"`{LARGE_DOCKERFILE.splitlines()[1]}`, median of {args.large_runs} runs"
            )
            print(f"{'':20} {'ipydock':>10} {'docker':>10} {'ratio':>8}  target")
            print(f"{'cold (--no-cache)':20} {a:9.3f}s {b:9.3f}s {a / b:8.2f}  <= 0.3 {ok}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        from ipydock.engine.runtime import cgroups

        cgroups.remove_parent("ipydock-build")  # made by the RUN steps, if empty now


if __name__ == "__main__":
    sys.exit(main())
