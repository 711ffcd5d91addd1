"""Benchmark: ``image ls`` and ``image history`` with 1,000 images, beside ``docker``.

Loads the same 1,000 images (a shared busybox base layer plus one small layer each) into a fresh
ipydock store and into a private dockerd (started here, removed afterwards), then times, as the
median of several runs on this machine in this run:

* ``ipydock image ls`` and ``docker images`` (CLI, a new process each time; ipydock's with its
  warm command server, as users get it after their first command, and without it);
* ``image ls`` from a warm Python process (the way a notebook calls it);
* ``ipydock image history`` and ``docker history``.

A second table is the per-byte and per-file cost: ``image import`` of a Debian minbase root
(mmdebstrap, this host's suite, ~170 MB in ~8,700 entries; or ``--debian-tar``) and ``image
load`` of the docker-archive ``docker save`` makes of it, through the CLI on both sides (ipydock
with its command server), each into a store that holds no copy (the image removed after each
run on both sides), median of ``--root-runs``, with each side's user and system CPU (target:
<= 0.5x docker). See ``root_rows`` for why the runs alternate after each other's removal.

Run as root: ``python bench/bench_images.py [--images 1000] [--runs 15] [--root-runs 3]
[--debian-tar PATH] [--settle SECONDS] [--only-root]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.testing import CommandServer, Dockerd, busybox_tarball, layer_tar

DOCKER = shutil.which("docker", path="/usr/bin") or "docker"  # the client Dockerd.run uses


def many_images_archive(path: str, count: int, base_tgz: str) -> None:
    """One docker-archive with ``count`` images sharing the busybox base layer."""
    import gzip

    with gzip.open(base_tgz, "rb") as f:
        base = f.read()
    base_id = "sha256:" + hashlib.sha256(base).hexdigest()
    entries = []
    with tarfile.open(path, "w") as tf:
        _add(tf, "base/layer.tar", base)
        for i in range(count):
            layer = layer_tar({f"data/{i}": str(i).encode()})
            diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    "config": {"Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": [base_id, diff_id]},
                    "history": [
                        {"created": "2026-01-01T00:00:00Z", "comment": "Imported from -"},
                        {
                            "created": "2026-01-01T00:00:01Z",
                            "created_by": f"/bin/sh -c echo {i} > /data/{i}",
                        },
                    ],
                }
            ).encode()
            name = hashlib.sha256(config).hexdigest()
            _add(tf, f"{name}.json", config)
            _add(tf, f"l{i}/layer.tar", layer)
            entries.append(
                {
                    "Config": f"{name}.json",
                    "RepoTags": [f"bench/img:{i}"],
                    "Layers": ["base/layer.tar", f"l{i}/layer.tar"],
                }
            )
        _add(tf, "manifest.json", json.dumps(entries).encode())


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def root_rows(work: str, runs: int, d: Dockerd, server: CommandServer, ours: list[str],
              debian_tar: str = "", settle: float = 0) -> None:  # fmt: skip
    """``image import`` and ``image load`` of a Debian root, both engines, in turn.

    Fair on a filesystem that remembers deletions: on ext4 without a journal the kernel skips
    inodes freed in the last 30-330 s when it allocates new ones (``recently_deleted``), so
    every file created right after a large ``rm -rf`` costs ~0.5 ms of system time instead
    of ~20 us. Both engines keep one store and remove the image after each run (``image rm``,
    ``docker rmi``), the sides alternate (ABBA), and each timed run comes right after the
    removal of the other's 8,700 entries: the same deletions before each. ``--settle S``
    waits S seconds before each run instead (S > 330: a quiet filesystem). User and system
    CPU are shown for both sides: the client plus ``dockerd`` (with the layer applier it
    re-executes) or the command server's worker, read from ``/proc/PID/stat`` around the run.
    """
    if debian_tar:
        tar = debian_tar
    else:
        from bench_rootless import debian_root  # bench/ is on sys.path: this script's directory

        if not debian_root(work):
            print("\nno mmdebstrap: the import/load table is left out")
            return
        tar = os.path.join(work, "debian.tar")
    saved = os.path.join(work, "debian-save.tar")
    d.run("import", tar, "deb:1")
    d.run("save", "-o", saved, "deb:1")
    d.run("rmi", "deb:1")
    root = os.path.join(work, "root-store")
    ipd = [*ours, "--root", root]
    # the store made and its snapshot driver chosen (once per store, not part of a run)
    for words in (["image", "import", tar, "deb:1"], ["image", "rm", "deb:1"]):
        subprocess.run([*ipd, *words], env=server.env, stdout=subprocess.DEVNULL, check=True)
    with tarfile.open(tar) as tf:
        entries = sum(1 for _ in tf)
    print(f"\nDebian minbase root: {os.path.getsize(tar) / 1e6:.0f} MB, {entries} entries; "
          f"median of {runs} runs, sides alternating, each after the other's removal"
          + (f" and {settle:.0f} s of rest" if settle else "") + "\n")  # fmt: skip
    print(f"{'operation':<14} {'ipydock s':>9} {'docker s':>9} {'ratio':>6}  "
          f"{'ipydock usr+sys':>15}  {'docker usr+sys':>14}  target")  # fmt: skip
    for label, ours_args, docker_args in (
        ("image import", ["image", "import", tar, "deb:1"], ["import", tar, "deb:1"]),
        ("image load", ["image", "load", "-i", saved], ["load", "-q", "-i", saved]),
    ):
        ipd_run = Timed(server.proc.pid if server.proc else 0, [*ipd, *ours_args], server.env)
        ipd_rm = [*ipd, "image", "rm", "deb:1"]
        dk_run = Timed(d.proc.pid if d.proc else 0, [DOCKER, *docker_args], d.env())
        for i in range(runs):
            sides = [(ipd_run, ipd_rm, server.env), (dk_run, [DOCKER, "rmi", "deb:1"], d.env())]
            for timed, remove, env in sides if i % 2 == 0 else sides[::-1]:
                if settle:
                    time.sleep(settle)
                timed.once()
                subprocess.run(remove, env=env, stdout=subprocess.DEVNULL, check=True)
        a, b = ipd_run.median(), dk_run.median()
        ok = "ok" if a / b <= 0.5 else "MISSED"
        print(f"{label:<14} {a:>9.2f} {b:>9.2f} {a / b:>5.2f}x  {ipd_run.cpu():>15}  "
              f"{dk_run.cpu():>14}  <= 0.5 {ok}")  # fmt: skip
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


class Timed:
    """A command run and timed, with its CPU: the client's, and the server's (``pid``: the
    command server, whose worker it reaps, or dockerd) from ``/proc/PID/stat``."""

    def __init__(self, pid: int, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.argv, self.env = pid, argv, env
        self.walls: list[float] = []
        self.user: list[float] = []
        self.system: list[float] = []

    def once(self) -> None:
        before, kids = _server_cpu(self.pid), os.times()
        t0 = time.perf_counter()
        subprocess.run(self.argv, env=self.env, stdout=subprocess.DEVNULL, check=True)
        self.walls.append(time.perf_counter() - t0)
        after, kids_after = _server_cpu(self.pid), os.times()
        self.user.append(after[0] - before[0] + kids_after.children_user - kids.children_user)
        self.system.append(after[1] - before[1] + kids_after.children_system - kids.children_system)

    def median(self) -> float:
        return statistics.median(self.walls)

    def cpu(self) -> str:
        return f"{statistics.median(self.user):.2f}+{statistics.median(self.system):.2f}"


def _server_cpu(pid: int) -> tuple[float, float]:
    """(user, system) seconds of ``pid`` and the children it reaped."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[13])) / tick, (int(fields[12]) + int(fields[14])) / tick


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm caches once
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def cli(*args: str, env: dict[str, str] | None = None) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(args, env=env, stdout=subprocess.DEVNULL, check=True)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--root-runs", type=int, default=3, help="0 leaves the Debian table out")
    ap.add_argument("--debian-tar", default="", help="a Debian root tar (default: mmdebstrap)")
    ap.add_argument("--settle", type=float, default=0, help="seconds of rest before each "
                    "import/load run (> 330: past ext4's memory of deleted inodes)")  # fmt: skip
    ap.add_argument("--only-root", action="store_true", help="only the import/load table")
    opts = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ipydock-bench-")
    # The command as users run it (the venv's: native after setup, else pip's script): it
    # finds CommandServer's server (the socket key is the installation's, not the
    # interpreter's path), and the worker's CPU is then the CommandServer's reaped children's.
    script = os.path.join(os.path.dirname(sys.executable), "ipydock")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]
    try:
        with Dockerd() as d, CommandServer() as server:
            if not opts.only_root:
                many_rows(work, opts.images, opts.runs, d, server, command)
            if opts.root_runs:
                root_rows(work, opts.root_runs, d, server, command, opts.debian_tar,
                          opts.settle)  # fmt: skip
        print("\nratio = ipydock / docker; below 1.00x is faster than docker")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def many_rows(work: str, images: int, runs: int, d: Dockerd, server: CommandServer,
              command: list[str]) -> None:  # fmt: skip
    """The ``image ls``/``history`` table over ``images`` images."""
    base = busybox_tarball(os.path.join(work, "busybox.tar.gz"))
    archive = os.path.join(work, "many.tar")
    many_images_archive(archive, images, base)
    root = os.path.join(work, "store")
    t0 = time.perf_counter()
    BundledBackend(Store(root)).load(archive)
    load_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    d.run("load", "-q", "-i", archive)
    load_docker = time.perf_counter() - t0
    ours = [*command, "--root", root]
    warm = BundledBackend(Store(root))
    cold = {**os.environ, "IPYDOCK_SERVER": "0"}
    rows = [
        (
            "image ls (CLI)",
            cli(*ours, "image", "ls", env=server.env),
            cli(DOCKER, "images", env=d.env()),
        ),
        (
            "image ls (CLI, no server)",
            cli(*ours, "image", "ls", env=cold),
            cli(DOCKER, "images", env=d.env()),
        ),
        (
            "image ls (warm Python)",
            lambda: warm.images(),
            cli(DOCKER, "images", env=d.env()),
        ),
        (
            "image history (CLI)",
            cli(*ours, "image", "history", "bench/img:7", env=server.env),
            cli(DOCKER, "history", "bench/img:7", env=d.env()),
        ),
        (
            "image history (CLI, no server)",
            cli(*ours, "image", "history", "bench/img:7", env=cold),
            cli(DOCKER, "history", "bench/img:7", env=d.env()),
        ),
        (
            "image history (warm Python)",
            lambda: warm.history("bench/img:7"),
            cli(DOCKER, "history", "bench/img:7", env=d.env()),
        ),
    ]
    print(f"{images} images, median of {runs} runs, this machine, this run\n")
    print(f"{'operation':<28} {'ipydock ms':>11} {'docker ms':>10} {'ratio':>7}")
    for label, ours_fn, docker_fn in rows:
        a = median_ms(ours_fn, runs)
        b = median_ms(docker_fn, runs)
        print(f"{label:<28} {a:>11.1f} {b:>10.1f} {a / b:>6.2f}x")
    print(
        f"{'image load (once)':<28} {load_ours * 1000:>11.0f} "
        f"{load_docker * 1000:>10.0f} {load_ours / load_docker:>6.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
