"""Median latency of starting ``true`` in a container: ipydock beside ``crun run`` and docker.

Two tables: the low-level runtime (spawn, ``Runtime.run``) against ``crun run``, and whole
containers (``run --rm busybox true``: record, supervisor, cgroup, logs, removal) from a warm
Python process through the backend and from the CLI, against ``docker run --rm`` on a private
dockerd (``ipydock.testing.Dockerd``, busybox loaded with ``docker import``).

Run as root: ``python bench/bench_run.py [-n 50]``. Both sides use the same busybox root and
network "none" (a new, empty network namespace); ipydock is timed from a warm Python process, as
a notebook calls it, crun by ``subprocess.run`` from a warm Python process.

crun 1.8 refuses hybrid cgroup hosts (v1 controllers plus an empty ``/sys/fs/cgroup/unified``),
so its timings are taken by a worker in a private mount namespace with that mount removed; this
changes nothing crun measures. Rows "no cgroup" compare the namespace/mount/exec path alone
(crun ``--cgroup-manager=disabled``), the "cgroup" rows include creating and removing one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from ipydock.engine.runtime import Rootfs, Runtime, Spec, build_plan, cgroups  # noqa: E402
from ipydock.testing import Dockerd, busybox_tarball  # noqa: E402

APPLETS = ("sh", "true", "echo", "ls", "cat")


def make_rootfs(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/busybox", path / "bin" / "busybox")
    for applet in APPLETS:
        (path / "bin" / applet).symlink_to("busybox")
    return path


def make_bundle(bundle: Path, rootfs: Path) -> Path:
    """An OCI bundle for crun: ``crun spec``'s default config, running ``true``."""
    bundle.mkdir()
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["true"], env=["PATH=/bin"])
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != "cgroup"
    ]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def median_ms(n: int, once: Callable[[int], None]) -> float:
    once(-1)  # warm up
    samples = []
    for i in range(n):
        start = time.perf_counter()
        once(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def fresh_layer(base: Path, i: int) -> Rootfs:
    """A new writable layer per run, as ``docker run`` makes one per container."""
    dirs = [base / f"{i}" / d for d in ("upper", "work", "merged")]
    for d in dirs:
        d.mkdir(parents=True)
    return Rootfs.overlay([str(base / "lower")], *map(str, dirs))


def bench_ipydock(n: int, work: Path) -> dict[str, float]:
    lower = work / "lower"
    base = Spec(rootfs=Rootfs.directory(str(lower)), args=("true",), env=("PATH=/bin",))
    results = {}
    with Runtime(cgroup_parent="ipydock-bench") as runtime:
        server = runtime.forkserver

        def spawn_dir(_i: int) -> None:
            server.spawn(build_plan(base)).wait()

        def spawn_overlay(i: int) -> None:
            rootfs = fresh_layer(work, i + 1000)
            server.spawn(build_plan(Spec(rootfs, ("true",), ("PATH=/bin",)))).wait()
            shutil.rmtree(work / f"{i + 1000}")

        def run_full(i: int) -> None:
            rootfs = fresh_layer(work, i + 2000)
            with runtime.run(Spec(rootfs, ("true",), ("PATH=/bin",))) as running:
                running.wait()
            shutil.rmtree(work / f"{i + 2000}")

        results["ipydock spawn, dir root, no cgroup"] = median_ms(n, spawn_dir)
        results["ipydock spawn, new overlay layer, no cgroup"] = median_ms(n, spawn_overlay)
        results["ipydock Runtime.run, new overlay layer + cgroup"] = median_ms(n, run_full)
    cgroups.remove_parent("ipydock-bench")
    return results


def bench_crun(n: int, work: Path) -> dict[str, float]:
    """Run the crun timings in a worker whose mount namespace hides the hybrid v2 mount."""
    script = (
        "umount /sys/fs/cgroup/unified 2>/dev/null; "
        f'exec "{sys.executable}" "{__file__}" --crun-worker -n {n} --work "{work}"'
    )
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def crun_worker(n: int, work: Path) -> None:
    bundle = str(make_bundle(work / "bundle", work / "lower"))

    def crun(*flags: str) -> Callable[[int], None]:
        def once(i: int) -> None:
            name = f"ipydock-bench-{os.getpid()}-{i}"
            subprocess.run(["crun", *flags, "run", "--bundle", bundle, name], check=True)

        return once

    results = {
        "crun run, no cgroup": median_ms(n, crun("--cgroup-manager=disabled")),
        "crun run, cgroup": median_ms(n, crun()),
    }
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="iterations per row (default 50)")
    parser.add_argument("--crun-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-docker", action="store_true", help="skip the docker rows")
    args = parser.parse_args()
    if args.crun_worker:
        crun_worker(args.n, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="ipydock-bench-") as tmp:
        work = Path(tmp)
        make_rootfs(work / "lower")
        ours = bench_ipydock(args.n, work)
        theirs = bench_crun(args.n, work) if shutil.which("crun") else {}
        print_table(ours, theirs, args.n)
        tgz = busybox_tarball(str(work / "busybox.tar.gz"))
        containers = bench_containers(args.n, work / "store", tgz)
        docker = {} if args.no_docker else bench_docker(args.n, tgz)
    print_container_table(containers, docker, theirs, args.n)


def ipydock_command() -> list[str]:
    """The ``ipydock`` command as users run it (the venv's script), else ``python -m``."""
    script = os.path.join(os.path.dirname(sys.executable), "ipydock")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]


def bench_containers(n: int, root: Path, tgz: str) -> dict[str, float]:
    """``run --rm busybox true`` through the backend (warm process) and through the CLI: with
    its warm command server (as users get it after the first command) and without."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.containers import RunOptions
    from ipydock.engine.store import Store
    from ipydock.testing import CommandServer

    backend = BundledBackend(Store(str(root)))
    backend.import_image(tgz, "busybox", changes=['CMD ["sh"]'])
    words = ["--root", str(root), "run", "--rm", "busybox", "true"]
    cli = [*ipydock_command(), *words]

    def warm(network: str) -> Callable[[int], None]:
        opts = RunOptions("busybox", ("true",), auto_remove=True, network=network)
        return lambda _i: backend.run(opts) and None

    results = {
        "backend.run --rm busybox true (warm process)": median_ms(n, warm("none")),
        "backend.run --rm --network host (warm process)": median_ms(n, warm("host")),
    }
    with CommandServer() as server:
        results["ipydock run --rm busybox true (CLI)"] = median_ms(
            n, lambda _i: subprocess.run(cli, check=True, env=server.env) and None
        )
    cold = {**os.environ, "IPYDOCK_SERVER": "0"}
    results["same, IPYDOCK_SERVER=0 (new Python each time)"] = median_ms(
        n, lambda _i: subprocess.run(cli, check=True, env=cold) and None
    )
    cgroups.remove_parent("ipydock")
    return results


def bench_docker(n: int, tgz: str) -> dict[str, float]:
    try:
        dockerd = Dockerd().start()
    except (RuntimeError, OSError) as exc:
        print(f"(no docker rows: {exc})", file=sys.stderr)
        return {}
    try:
        dockerd.run("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")

        def docker(*flags: str) -> Callable[[int], None]:
            return lambda _i: dockerd.run("run", "--rm", *flags, "busybox", "true") and None

        return {
            "docker run --rm --network none busybox true": median_ms(
                n, docker("--network", "none")
            ),
            "docker run --rm --network host busybox true": median_ms(
                n, docker("--network", "host")
            ),
        }
    finally:
        dockerd.stop()


def print_container_table(ours: dict[str, float], docker: dict[str, float],
                          crun: dict[str, float], n: int) -> None:  # fmt: skip
    print(f"\nmedian of {n} runs of `run --rm busybox true`, network none unless named")
    crun_ref = crun.get("crun run, cgroup")
    print(f"{'what':<52}{'ms':>8}{'vs docker':>11}{'vs crun':>9}")
    for name, ms in {**docker, **ours}.items():
        host = "--network host" in name
        ref = docker.get(f"docker run --rm --network {'host' if host else 'none'} busybox true")
        vs_docker = f"{ms / ref:.2f}x" if ref and not name.startswith("docker") else ""
        vs_crun = f"{ms / crun_ref:.1f}x" if crun_ref else ""
        print(f"{name:<52}{ms:>8.2f}{vs_docker:>11}{vs_crun:>9}")


def print_table(ours: dict[str, float], theirs: dict[str, float], n: int) -> None:
    print(f"median of {n} runs of `true`, network none, on {os.uname().release}")
    print(f"{'what':<52}{'ms':>8}{'vs crun':>10}")
    for name, ms in {**theirs, **ours}.items():
        ref = theirs.get("crun run, cgroup" if "+ cgroup" in name else "crun run, no cgroup")
        ratio = f"{ms / ref:.2f}x" if ref and not name.startswith("crun") else ""
        print(f"{name:<52}{ms:>8.2f}{ratio:>10}")


if __name__ == "__main__":
    main()
