"""Benchmark: ``image ls`` and ``image history`` with 1,000 images, beside ``docker``.

Loads the same 1,000 images (a shared busybox base layer plus one small layer each) into a fresh
ipydock store and into a private dockerd (started here, removed afterwards), then times, as the
median of several runs on this machine in this run:

* ``ipydock image ls`` and ``docker images`` (CLI, a new process each time; ipydock's with its
  warm command server, as users get it after their first command, and without it);
* ``image ls`` from a warm Python process (the way a notebook calls it);
* ``ipydock image history`` and ``docker history``.

A second table is the per-byte and per-file cost: ``image import`` of a Debian minbase root
(mmdebstrap, this host's suite, ~170 MB in ~8,700 entries) and ``image load`` of the
docker-archive ``docker save`` makes of it, through the CLI on both sides (ipydock with its
command server), each run into an empty store (ipydock: a new root; docker: the image removed
after each run), median of ``--root-runs`` (target: <= 0.5x docker).

Run as root: ``python bench/bench_images.py [--images 1000] [--runs 15] [--root-runs 3]``.
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


def root_rows(work: str, runs: int, d: Dockerd, server: CommandServer, ours: list[str]) -> None:
    """``image import`` and ``image load`` of a Debian root, both engines, in turn."""
    from bench_rootless import debian_root  # bench/ is on sys.path: this script's directory

    if not debian_root(work):
        print("\nno mmdebstrap: the import/load table is left out")
        return
    tar = os.path.join(work, "debian.tar")
    saved = os.path.join(work, "debian-save.tar")
    d.run("import", tar, "deb:1")
    d.run("save", "-o", saved, "deb:1")
    d.run("rmi", "deb:1")
    with tarfile.open(tar) as tf:
        entries = sum(1 for _ in tf)
    print(f"\nDebian minbase root: {os.path.getsize(tar) / 1e6:.0f} MB, {entries} entries; "
          f"median of {runs} runs, each into an empty store\n")  # fmt: skip
    print(f"{'operation':<28} {'ipydock s':>11} {'docker s':>10} {'ratio':>7}  target")
    for label, ours_args, docker_args in (
        ("image import", ["image", "import", tar, "deb:1"], ["import", tar, "deb:1"]),
        ("image load", ["image", "load", "-i", saved], ["load", "-q", "-i", saved]),
    ):
        times: list[list[float]] = [[], []]
        for i in range(runs):
            root = os.path.join(work, f"root-store-{i}")
            t0 = time.perf_counter()
            subprocess.run([*ours, "--root", root, *ours_args], env=server.env,
                           stdout=subprocess.DEVNULL, check=True)  # fmt: skip
            times[0].append(time.perf_counter() - t0)
            shutil.rmtree(root)
            t0 = time.perf_counter()
            d.run(*docker_args)
            times[1].append(time.perf_counter() - t0)
            d.run("rmi", "deb:1")
        a, b = statistics.median(times[0]), statistics.median(times[1])
        ok = "ok" if a / b <= 0.5 else "MISSED"
        print(f"{label:<28} {a:>11.2f} {b:>10.2f} {a / b:>6.2f}x  <= 0.5 {ok}")


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
    opts = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ipydock-bench-")
    try:
        base = busybox_tarball(os.path.join(work, "busybox.tar.gz"))
        archive = os.path.join(work, "many.tar")
        many_images_archive(archive, opts.images, base)
        root = os.path.join(work, "store")
        t0 = time.perf_counter()
        BundledBackend(Store(root)).load(archive)
        load_ours = time.perf_counter() - t0
        with Dockerd() as d, CommandServer() as server:
            t0 = time.perf_counter()
            d.run("load", "-q", "-i", archive)
            load_docker = time.perf_counter() - t0
            docker = shutil.which("docker", path="/usr/bin") or "docker"
            script = os.path.join(os.path.dirname(sys.executable), "ipydock")  # as users run it
            command = [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]
            ours = [*command, "--root", root]
            warm = BundledBackend(Store(root))
            cold = {**os.environ, "IPYDOCK_SERVER": "0"}
            rows = [
                (
                    "image ls (CLI)",
                    cli(*ours, "image", "ls", env=server.env),
                    cli(docker, "images", env=d.env()),
                ),
                (
                    "image ls (CLI, no server)",
                    cli(*ours, "image", "ls", env=cold),
                    cli(docker, "images", env=d.env()),
                ),
                (
                    "image ls (warm Python)",
                    lambda: warm.images(),
                    cli(docker, "images", env=d.env()),
                ),
                (
                    "image history (CLI)",
                    cli(*ours, "image", "history", "bench/img:7", env=server.env),
                    cli(docker, "history", "bench/img:7", env=d.env()),
                ),
                (
                    "image history (CLI, no server)",
                    cli(*ours, "image", "history", "bench/img:7", env=cold),
                    cli(docker, "history", "bench/img:7", env=d.env()),
                ),
                (
                    "image history (warm Python)",
                    lambda: warm.history("bench/img:7"),
                    cli(docker, "history", "bench/img:7", env=d.env()),
                ),
            ]
            print(f"{opts.images} images, median of {opts.runs} runs, this machine, this run\n")
            print(f"{'operation':<28} {'ipydock ms':>11} {'docker ms':>10} {'ratio':>7}")
            for label, ours_fn, docker_fn in rows:
                a = median_ms(ours_fn, opts.runs)
                b = median_ms(docker_fn, opts.runs)
                print(f"{label:<28} {a:>11.1f} {b:>10.1f} {a / b:>6.2f}x")
            print(
                f"{'image load (once)':<28} {load_ours * 1000:>11.0f} "
                f"{load_docker * 1000:>10.0f} {load_ours / load_docker:>6.2f}x"
            )
            if opts.root_runs:
                root_rows(work, opts.root_runs, d, server, command)
        print("\nratio = ipydock / docker; below 1.00x is faster than docker")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
