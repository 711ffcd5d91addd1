"""Memory and listing at scale: N idle detached containers, ipydock beside docker.

Two tables, measured in one run on the same machine:

* the private memory of what keeps a detached container alive: ipydock's supervisor (one
  process per container) against containerd's ``containerd-shim-runc-v2`` (one per container
  under docker), as PSS from ``/proc/PID/smaps_rollup`` (shared pages divided among the
  processes that map them, so N copies of one program count their code once), plus the
  private (unshared) bytes and RSS for reference; target (issue 17): PSS ≤ 1× the shim's;
* ``ipydock container ls -a`` (the CLI, through its warm command server, as users get it
  after the first command) against ``docker ps -a`` with those N containers, timed as a new
  process each run, in interleaved rounds, each figure the median of all its runs; target
  ≤ 0.5× docker. Both are timed with no containers first (what any command costs: the
  client's start and the round trip), and the engine's own part is timed apart
  (``list_containers`` from a warm process).

Both sides run ``busybox sleep`` with network none, started with ``run -d`` from their CLIs
(ipydock's through the command server), and are measured after every container has started.
dockerd is a private one (``ipydock.testing.Dockerd``: own data root, own network namespace).

Run as root: ``python bench/bench_memory.py [-n 100] [--runs 20]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from ipydock.testing import CommandServer, Dockerd, busybox_tarball  # noqa: E402

SLEEP = ("busybox", "sleep", "1000000")
#: The client ``Dockerd.run`` uses: Debian's, else the one on PATH.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def ipydock_command() -> list[str]:
    """The ``ipydock`` command as users run it (the venv's script), else ``python -m``."""
    script = os.path.join(os.path.dirname(sys.executable), "ipydock")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]


def smaps(pid: int) -> dict[str, int]:
    """``smaps_rollup`` of ``pid`` in bytes: Rss, Pss, Private_Clean, Private_Dirty, …"""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def memory_row(pids: list[int]) -> dict[str, float]:
    """Median MB per process of PSS, private and RSS; all read in one pass."""
    found = [smaps(pid) for pid in pids]
    mb = 1024 * 1024

    def med(key: str) -> float:
        return statistics.median(s.get(key, 0) for s in found) / mb

    private = statistics.median(s["Private_Clean"] + s["Private_Dirty"] for s in found) / mb
    return {"pss": med("Pss"), "private": private, "rss": med("Rss"), "count": len(found)}


def supervisors(root: Path) -> list[int]:
    """The live supervisor of every container of the store at ``root``."""
    pids = []
    for cid in os.listdir(root / "containers"):
        with open(root / "containers" / cid / "state.json") as f:
            pid = json.load(f).get("supervisor_pid", 0)
        if pid:
            pids.append(pid)
    return pids


def shims(dockerd: Dockerd) -> list[int]:
    """The ``containerd-shim-runc-v2`` processes of this private dockerd (its containerd's
    socket, under the dockerd's own dir, is in their command line)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if argv[0].endswith(b"containerd-shim-runc-v2") and any(
                dockerd.base.encode() in a for a in argv
            ):
                pids.append(int(name))
    return pids


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100, help="detached containers on each side")
    ap.add_argument("--runs", type=int, default=20, help="timed `ls -a` / `ps -a` runs each")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (containers, dockerd and cgroups need it)")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipydock-bench-mem-")))
        tgz = busybox_tarball(str(tmp / "busybox.tar.gz"))
        root = tmp / "store"
        server = stack.enter_context(CommandServer())
        ours = [*ipydock_command(), "--root", str(root)]
        env = server.env
        subprocess.run([*ours, "image", "import", "-c", 'CMD ["sh"]', tgz, "busybox"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        stack.callback(_remove_all, ours, env)
        dockerd = stack.enter_context(Dockerd())
        dockerd.run("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")
        stack.callback(_docker_remove_all, dockerd)
        ls = [*ours, "container", "ls", "-a"]
        ps = [DOCKER, "ps", "-a"]
        samples: dict[str, list[float]] = {}
        per_round = max(1, a.runs // a.rounds)

        def measure(label: str) -> None:
            """Interleaved rounds of ls and ps: samples "ours LABEL" and "docker LABEL"."""
            timed(ls, env), timed(ps, dockerd.env())  # warm up
            for _ in range(a.rounds):
                for _ in range(per_round):
                    samples.setdefault(f"ours {label}", []).append(timed(ls, env))
                for _ in range(per_round):
                    samples.setdefault(f"docker {label}", []).append(timed(ps, dockerd.env()))

        measure("empty")  # what a command costs before it lists anything
        for _ in range(a.n):
            subprocess.run([*ours, "run", "-d", "--network", "none", *SLEEP], env=env,
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            dockerd.run("run", "-d", "--network", "none", *SLEEP)
        sup, shim = supervisors(root), shims(dockerd)
        assert len(sup) == a.n and len(shim) == a.n, (len(sup), len(shim))
        mem = {"ipydock supervisor": memory_row(sup), "containerd-shim-runc-v2": memory_row(shim)}
        listed = subprocess.run(ls, env=env, check=True, capture_output=True, text=True)
        assert listed.stdout.count("\n") == a.n + 1, listed.stdout
        measure("full")
        samples["engine"] = engine_list(root, a.runs)
    print_tables(a.n, mem, samples)


def engine_list(root: Path, runs: int) -> list[float]:
    """The engine's part of ``ls -a``: ``list_containers`` from a warm process (ms)."""
    from ipydock.engine.containers.views import list_containers
    from ipydock.engine.store import Store

    store = Store(str(root))
    list_containers(store, all=True)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        list_containers(store, all=True)
        out.append((time.perf_counter() - start) * 1000)
    return out
    return 0


def _remove_all(ours: list[str], env: dict[str, str]) -> None:
    ids = subprocess.run([*ours, "container", "ls", "-aq"], env=env, capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    if ids:
        subprocess.run([*ours, "rm", "-f", *ids], env=env, capture_output=True)


def _docker_remove_all(dockerd: Dockerd) -> None:
    ids = dockerd.run("ps", "-aq").stdout.decode().split()
    if ids:
        dockerd.run("rm", "-f", *ids, check=False)


def print_tables(n: int, mem: dict[str, dict[str, float]], samples: dict[str, list[float]]) -> None:
    print(f"{n} idle detached containers (busybox sleep, network none), MB per process (median)")
    print()
    print("| process | count | PSS | private | RSS | PSS vs shim | target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    shim = mem["containerd-shim-runc-v2"]["pss"]
    for name, row in mem.items():
        ratio = row["pss"] / shim
        target = "≤ 1.0x " + ("ok" if ratio <= 1.0 else "MISSED") if "ipydock" in name else ""
        print(f"| {name} | {row['count']:.0f} | {row['pss']:.2f} | {row['private']:.2f} "
              f"| {row['rss']:.2f} | {ratio:.2f}x | {target} |")  # fmt: skip
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratio = med["ours full"] / med["docker full"]
    print()
    print(f"listing {n} containers, median of {len(samples['ours full'])} runs, ms")
    print()
    print("| command | 0 containers | " + f"{n} containers | vs docker | target |")
    print("|---|---:|---:|---:|---:|")
    print(f"| docker ps -a | {med['docker empty']:.1f} | {med['docker full']:.1f} | | |")
    print(f"| ipydock container ls -a (CLI, command server) | {med['ours empty']:.1f} "
          f"| {med['ours full']:.1f} | {ratio:.2f}x "
          f"| ≤ 0.5x {'ok' if ratio <= 0.5 else 'MISSED'} |")  # fmt: skip
    print(f"| the engine's part (list_containers, warm process) | | {med['engine']:.1f} | | |")


if __name__ == "__main__":
    sys.exit(main())
