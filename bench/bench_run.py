"""Median latency of starting ``true`` in a container: ipydock beside ``crun run`` and docker.

Two tables: the low-level runtime (spawn, ``Runtime.run``) against ``crun run``, and whole
containers (``run --rm busybox true``: record, supervisor, cgroup, logs, removal) from a warm
Python process through the backend and from the CLI, against ``docker run --rm`` on a private
dockerd (``ipydock.testing.Dockerd``, busybox loaded with ``docker import``).

Each run starts after ``--gap`` ms of idle (default 50): a run's latency as one command or one
notebook cell sees it. Work a run leaves for after its result (ipydock deletes a ``--rm``
container's files, cgroup and mounts after the caller has the exit code; crun and docker do
theirs before they return) would otherwise fall on the next run: ``--gap 0`` measures back to
back, which is throughput rather than latency.

Run as root: ``python bench/bench_run.py [-n 50] [--rounds 5] [--gap 50]``. Both sides use the same
busybox root and network "none" (a new, empty network namespace) unless a row names another;
ipydock is timed from a warm Python process, as a notebook calls it, crun by ``subprocess.run``
from a warm Python process. The speed of a shared machine drifts by tens of percent over a
minute, so the rows are measured in interleaved rounds (n/rounds runs of every row per round)
and each row's figure is the median of all its runs: every row sees the same conditions.

crun 1.8 refuses hybrid cgroup hosts (v1 controllers plus an empty ``/sys/fs/cgroup/unified``),
so its timings are taken by a worker in a private mount namespace with that mount removed; this
changes nothing crun measures. Rows "no cgroup" compare the namespace/mount/exec path alone
(crun ``--cgroup-manager=disabled``), the "cgroup" rows include creating and removing one.
ipydock's rows load Docker's seccomp profile, as docker's do; ``crun spec``'s config has none,
so one crun row gets that profile (``linux.seccomp``, the rules moby hands runc) and the
ipydock spawn rows are compared with it; "no seccomp" rows against plain crun.
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))
# the default-bridge row uses a bridge of its own, removed at the end (a running ipydock's
# ipydock0 is not touched)
os.environ.setdefault("IPYDOCK_LINK_PREFIX", "ipdnr")
os.environ.setdefault("IPYDOCK_DEFAULT_BRIDGE", "ipdnr0")

from ipydock.engine.runtime import Rootfs, Runtime, Spec, build_plan, cgroups  # noqa: E402
from ipydock.testing import Dockerd, busybox_tarball  # noqa: E402

APPLETS = ("sh", "true", "echo", "ls", "cat")


def make_rootfs(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/busybox", path / "bin" / "busybox")
    for applet in APPLETS:
        (path / "bin" / applet).symlink_to("busybox")
    return path


def docker_seccomp() -> dict[str, Any]:
    """Docker's default profile as ``linux.seccomp`` of an OCI config (what moby hands runc
    for a default container): the rules of ipydock's copy that apply to Docker's caps."""
    from ipydock.engine.runtime import seccomp
    from ipydock.engine.runtime.caps import DOCKER_DEFAULT_CAPS

    profile = seccomp.parse(seccomp.default_profile_text())
    arches = next([a, *subs] for a, subs in profile.arch_map if a == "SCMP_ARCH_X86_64")
    rules = seccomp.rules_for(profile, DOCKER_DEFAULT_CAPS)
    syscalls = [
        {"names": list(r.names), "action": r.action,
         **({"errnoRet": r.errno} if r.errno is not None else {}),
         "args": [{"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
                  for a in r.args]}
        for r in rules
    ]  # fmt: skip
    return {"defaultAction": profile.default_action, "defaultErrnoRet": profile.default_errno,
            "architectures": arches, "syscalls": syscalls}  # fmt: skip


def make_bundle(bundle: Path, rootfs: Path, seccomp: dict[str, Any] | None = None) -> Path:
    """An OCI bundle for crun: ``crun spec``'s default config, running ``true`` (with
    ``seccomp`` as its ``linux.seccomp``: ``crun spec`` has none)."""
    bundle.mkdir()
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["true"], env=["PATH=/bin"])
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != "cgroup"
    ]
    if seccomp is not None:
        config["linux"]["seccomp"] = seccomp
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


Sample = Callable[[int], None]


class Rows:
    """Named ways to run ``true`` once; :meth:`round` times each ``k`` times, in turn, each
    after ``gap`` seconds of idle."""

    gap = 0.0

    def __init__(self) -> None:
        self.runs: dict[str, Sample] = {}
        self.samples: dict[str, list[float]] = {}
        self.counter = 0

    def add(self, name: str, once: Sample) -> None:
        once(-1 - len(self.runs))  # warm up
        self.runs[name] = once
        self.samples[name] = []

    def round(self, k: int) -> None:
        for name, once in self.runs.items():
            for _ in range(k):
                self.counter += 1
                time.sleep(self.gap)
                start = time.perf_counter()
                once(self.counter)
                self.samples[name].append(time.perf_counter() - start)

    def medians(self) -> dict[str, float]:
        return {n: statistics.median(v) * 1000 for n, v in self.samples.items() if v}


def fresh_layer(base: Path, i: int) -> Rootfs:
    """A new writable layer per run, as ``docker run`` makes one per container."""
    dirs = [base / f"{i}" / d for d in ("upper", "work", "merged")]
    for d in dirs:
        d.mkdir(parents=True)
    return Rootfs.overlay([str(base / "lower")], *map(str, dirs))


def runtime_rows(rows: Rows, runtime: Runtime, work: Path) -> None:
    lower = work / "lower"
    base = Spec(rootfs=Rootfs.directory(str(lower)), args=("true",), env=("PATH=/bin",))
    server = runtime.forkserver

    def spawn_dir(_i: int) -> None:
        server.spawn(build_plan(base)).wait()

    unconfined = Spec(rootfs=base.rootfs, args=base.args, env=base.env, seccomp="unconfined")

    def spawn_dir_unconfined(_i: int) -> None:
        server.spawn(build_plan(unconfined)).wait()

    def spawn_overlay(i: int) -> None:
        rootfs = fresh_layer(work, 100000 + i)
        server.spawn(build_plan(Spec(rootfs, ("true",), ("PATH=/bin",)))).wait()
        shutil.rmtree(work / f"{100000 + i}")

    def run_full(i: int) -> None:
        rootfs = fresh_layer(work, 200000 + i)
        with runtime.run(Spec(rootfs, ("true",), ("PATH=/bin",))) as running:
            running.wait()
        shutil.rmtree(work / f"{200000 + i}")

    rows.add("ipydock spawn, dir root, no cgroup", spawn_dir)
    rows.add("ipydock spawn, dir root, no cgroup, no seccomp", spawn_dir_unconfined)
    rows.add("ipydock spawn, new overlay layer, no cgroup", spawn_overlay)
    rows.add("ipydock Runtime.run, new overlay layer + cgroup", run_full)


class CrunWorker:
    """crun timed by a worker whose mount namespace hides the hybrid v2 mount (crun 1.8
    refuses hybrid hosts; this changes nothing crun measures); it runs k of each on request."""

    NAMES = ("crun run, no cgroup", "crun run, cgroup", "crun run, no cgroup, docker's seccomp")

    def __init__(self, work: Path, gap: float) -> None:
        script = (
            "umount /sys/fs/cgroup/unified 2>/dev/null; "
            f'exec "{sys.executable}" "{__file__}" --crun-worker --work "{work}" --gap {gap}'
        )
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def round(self, k: int) -> dict[str, list[float]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{k}\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def crun_worker(work: Path, gap: float) -> None:
    plain = str(make_bundle(work / "bundle", work / "lower"))
    filtered = str(make_bundle(work / "bundle-seccomp", work / "lower", docker_seccomp()))
    count = 0

    def crun(*flags: str, bundle: str = plain) -> list[float]:
        nonlocal count
        count += 1
        name = f"ipydock-bench-{os.getpid()}-{count}"
        time.sleep(gap)
        start = time.perf_counter()
        subprocess.run(["crun", *flags, "run", "--bundle", bundle, name], check=True)
        return [time.perf_counter() - start]

    crun("--cgroup-manager=disabled"), crun()  # warm up
    crun("--cgroup-manager=disabled", bundle=filtered)
    for line in sys.stdin:
        k = int(line)
        out: dict[str, list[float]] = {name: [] for name in CrunWorker.NAMES}
        for _ in range(k):
            out["crun run, no cgroup"] += crun("--cgroup-manager=disabled")
        for _ in range(k):
            out["crun run, cgroup"] += crun()
        for _ in range(k):
            out["crun run, no cgroup, docker's seccomp"] += crun(
                "--cgroup-manager=disabled", bundle=filtered
            )
        print(json.dumps(out), flush=True)


def ipydock_command() -> list[str]:
    """The ``ipydock`` command as users run it (the venv's script), else ``python -m``."""
    script = os.path.join(os.path.dirname(sys.executable), "ipydock")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]


def container_rows(rows: Rows, backend: Any, root: Path, server_env: dict[str, str],
                   python_pid1: Any) -> None:  # fmt: skip
    """``run --rm busybox true`` through the backend (warm process) and through the CLI: with
    its warm command server (as users get it after the first command) and without;
    ``python_pid1``: a backend whose pid 1 is set up by Python (``IPYDOCK_NATIVE_PID1=0``)."""
    from ipydock.engine.containers import RunOptions

    # --network none as in the docker rows (the default is the bridge, as in docker)
    cli = [*ipydock_command(), "--root", str(root), "run", "--rm", "--network", "none",
           "busybox", "true"]  # fmt: skip
    cold = {**os.environ, "IPYDOCK_SERVER": "0"}

    def warm(network: str, engine: Any = backend) -> Sample:
        opts = RunOptions("busybox", ("true",), auto_remove=True, network=network)
        return lambda _i: engine.run(opts) and None

    rows.add("backend.run --rm busybox true (warm process)", warm("none"))
    rows.add("same, pid 1 set up by Python (IPYDOCK_NATIVE_PID1=0)", warm("none", python_pid1))
    rows.add("backend.run --rm --network host (warm process)", warm("host"))
    rows.add("backend.run --rm, the default bridge (warm process)", warm("default"))
    rows.add("ipydock run --rm busybox true (CLI)",
             lambda _i: subprocess.run(cli, check=True, env=server_env) and None)  # fmt: skip
    rows.add("same, IPYDOCK_SERVER=0 (new Python each time)",
             lambda _i: subprocess.run(cli, check=True, env=cold) and None)  # fmt: skip


def docker_rows(rows: Rows, dockerd: Dockerd) -> None:
    def docker(*flags: str) -> Sample:
        return lambda _i: dockerd.run("run", "--rm", *flags, "busybox", "true") and None

    rows.add("docker run --rm --network none busybox true", docker("--network", "none"))
    rows.add("docker run --rm --network host busybox true", docker("--network", "host"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="runs per row (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--crun-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-docker", action="store_true", help="skip the docker rows")
    parser.add_argument("--gap", type=float, default=50,
                        help="idle ms before each run (default 50; 0: back to back)")  # fmt: skip
    args = parser.parse_args()
    if args.crun_worker:
        crun_worker(args.work, args.gap / 1000)
        return
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store
    from ipydock.testing import CommandServer

    k = max(1, args.n // args.rounds)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipydock-bench-")))
        make_rootfs(work / "lower")
        tgz = busybox_tarball(str(work / "busybox.tar.gz"))
        rows = Rows()
        Rows.gap = args.gap / 1000
        runtime = stack.enter_context(Runtime(cgroup_parent="ipydock-bench"))
        stack.callback(cgroups.remove_parent, "ipydock-bench")
        runtime_rows(rows, runtime, work)
        crun = CrunWorker(work, args.gap / 1000) if shutil.which("crun") else None
        if crun is not None:
            stack.callback(crun.close)
        root = work / "store"
        from ipydock.engine.network.bridge import drop_default_bridge

        stack.callback(drop_default_bridge)
        backend = BundledBackend(Store(str(root)))
        stack.callback(backend.close)
        stack.callback(cgroups.remove_parent, "ipydock")
        backend.import_image(tgz, "busybox", changes=['CMD ["sh"]'])
        python_pid1 = _python_pid1_backend(root)
        stack.callback(python_pid1.close)
        server = stack.enter_context(CommandServer())
        container_rows(rows, backend, root, server.env, python_pid1)
        if not args.no_docker:
            try:
                dockerd = stack.enter_context(Dockerd())
                dockerd.run("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")
                docker_rows(rows, dockerd)
            except (RuntimeError, OSError) as exc:
                print(f"(no docker rows: {exc})", file=sys.stderr)
        theirs: dict[str, list[float]] = {name: [] for name in CrunWorker.NAMES} if crun else {}
        for _ in range(args.rounds):
            rows.round(k)
            if crun is not None:
                for name, samples in crun.round(k).items():
                    theirs[name] += samples
        medians = rows.medians()
        crun_ms = {n: statistics.median(v) * 1000 for n, v in theirs.items() if v}
    n = k * args.rounds
    low_level = ("ipydock spawn", "ipydock Runtime.run")
    print_table({r: ms for r, ms in medians.items() if r.startswith(low_level)}, crun_ms, n)
    docker = {r: ms for r, ms in medians.items() if r.startswith("docker ")}
    ours = {r: ms for r, ms in medians.items() if not r.startswith((*low_level, "docker "))}
    print_container_table(ours, docker, crun_ms, n)


def _python_pid1_backend(root: Path) -> Any:
    """A backend on the same store whose helper (started here, by a first run) and its spares
    have ``IPYDOCK_NATIVE_PID1=0``: their pid 1 is set up by Python, as before ipydock-pid1."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.containers import RunOptions
    from ipydock.engine.store import Store

    os.environ["IPYDOCK_NATIVE_PID1"] = "0"
    try:
        backend = BundledBackend(Store(str(root)))
        backend.run(RunOptions("busybox", ("true",), auto_remove=True, network="none"))
    finally:
        del os.environ["IPYDOCK_NATIVE_PID1"]
    return backend


def _after_gap() -> str:
    return f", each after {Rows.gap * 1000:g} ms idle" if Rows.gap else ", back to back"


def print_container_table(ours: dict[str, float], docker: dict[str, float],
                          crun: dict[str, float], n: int) -> None:  # fmt: skip
    print(f"\nmedian of {n} runs of `run --rm busybox true`{_after_gap()}, network none unless "
          "named")  # fmt: skip
    crun_ref = crun.get("crun run, cgroup")
    print(f"{'what':<52}{'ms':>8}{'vs docker':>11}{'vs crun':>9}")
    for name, ms in {**docker, **ours}.items():
        host = "--network host" in name
        ref = docker.get(f"docker run --rm --network {'host' if host else 'none'} busybox true")
        if "bridge" in name:  # the private dockerd here has no default bridge to compare with
            ref = None
        vs_docker = f"{ms / ref:.2f}x" if ref and not name.startswith("docker") else ""
        vs_crun = f"{ms / crun_ref:.2f}x" if crun_ref else ""
        print(f"{name:<52}{ms:>8.2f}{vs_docker:>11}{vs_crun:>9}")


def print_table(ours: dict[str, float], theirs: dict[str, float], n: int) -> None:
    print(f"median of {n} runs of `true`{_after_gap()}, network none, on {os.uname().release}")
    print(f"{'what':<52}{'ms':>8}{'vs crun':>10}")
    for name, ms in {**theirs, **ours}.items():
        # with seccomp against crun with docker's seccomp (crun spec's default has none)
        same = (
            "crun run, no cgroup"
            if "no seccomp" in name
            else "crun run, no cgroup, docker's seccomp"
        )
        ref = theirs.get("crun run, cgroup" if "+ cgroup" in name else same) or theirs.get(
            "crun run, no cgroup"
        )
        ratio = f"{ms / ref:.2f}x" if ref and not name.startswith("crun") else ""
        print(f"{name:<52}{ms:>8.2f}{ratio:>10}")


if __name__ == "__main__":
    main()
