"""Benchmark: the ``ipydock`` command's client, Python (pip's script) beside native, and docker.

Both clients hand the command to the same warm command server (``ipydock.launcher``,
``ipydock/launcher.c``); the difference is the client's own start: a CPython with the
launcher imported, or a small C program. Timed as a user runs them (a new process each time):

* ``image history busybox`` and ``docker history busybox``;
* ``container ls -a`` and ``docker ps -a`` with ``-n`` detached containers each side (busybox
  sleeping, network none);
* ``run --rm --network none busybox true`` and the same with docker (a private dockerd,
  ``ipydock.testing.Dockerd``; ``--no-docker`` leaves it out).

The machine's speed drifts by tens of percent over a minute, so every row's commands run in
interleaved rounds (``--runs`` / ``--rounds`` runs of each per round) and each figure is the
median of all its runs. The native client is compiled here from the sources (``cc``); the
Python client is a script as pip writes it, for this interpreter.

Run as root: ``python bench/bench_client.py [-n 100] [--runs 30] [--rounds 5] [--no-docker]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from ipydock import native_launcher  # noqa: E402
from ipydock.testing import CommandServer, Dockerd, busybox_tarball  # noqa: E402

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
SLEEP = ("busybox", "sleep", "1000000")
#: The issue's targets, as the largest ratio to docker.
TARGETS = {"history": 0.5, "ls": 0.5, "run": 0.1}
PIP_SCRIPT = """#!{python}
import sys
from ipydock.launcher import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def clients(work: Path) -> dict[str, list[str]]:
    """The Python client (pip's script for this interpreter) and the native one, built here."""
    script = work / "ipydock-py"
    script.write_text(PIP_SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    native = work / "ipydock"
    native_launcher.build(str(native))
    return {"python": [str(script)], "native": [str(native)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100, help="detached containers each side for ls -a")
    ap.add_argument("--runs", type=int, default=30, help="timed runs of each command")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-docker", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (containers, dockerd and cgroups need it)")
    load = os.getloadavg()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipydock-bench-cl-")))
        tgz = busybox_tarball(str(work / "busybox.tar.gz"))
        server = stack.enter_context(CommandServer())
        env = server.env
        ours = clients(work)
        root = ["--root", str(work / "store")]
        py = [*ours["python"], *root]
        subprocess.run([*py, "image", "import", "-c", 'CMD ["sh"]', tgz, "busybox"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        stack.callback(_remove_all, py, env)
        dockerd = None
        if not a.no_docker:
            dockerd = stack.enter_context(Dockerd())
            dockerd.run("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")
            stack.callback(_docker_remove_all, dockerd)
        for _ in range(a.n):
            subprocess.run([*py, "run", "-d", "--network", "none", *SLEEP], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            if dockerd is not None:
                dockerd.run("run", "-d", "--network", "none", *SLEEP)
        rows = {
            "history": ("image history busybox", ["image", "history", "busybox"],
                        ["history", "busybox"]),
            "ls": (f"container ls -a ({a.n})", ["container", "ls", "-a"], ["ps", "-a"]),
            "run": ("run --rm --network none busybox true",
                    ["run", "--rm", "--network", "none", "busybox", "true"],
                    ["run", "--rm", "--network", "none", "busybox", "true"]),
        }  # fmt: skip
        samples: dict[tuple[str, str], list[float]] = {}
        per_round = max(1, a.runs // a.rounds)
        for key, (_label, args, docker_args) in rows.items():
            commands = {name: ([*argv, *root, *args], env) for name, argv in ours.items()}
            if dockerd is not None:
                commands["docker"] = ([DOCKER, *docker_args], dockerd.env())
            for argv, cenv in commands.values():
                timed(argv, cenv)  # warm up
            for _ in range(a.rounds):
                for name, (argv, cenv) in commands.items():
                    for _ in range(per_round):
                        samples.setdefault((key, name), []).append(timed(argv, cenv))
    print_table(a, rows, samples, load, os.getloadavg())
    return 0


def print_table(
    a: argparse.Namespace, rows: dict[str, tuple[str, list[str], list[str]]],
    samples: dict[tuple[str, str], list[float]], before: tuple[float, ...],
    after: tuple[float, ...],
) -> None:  # fmt: skip
    per_round = max(1, a.runs // a.rounds)
    print(
        f"median of {per_round * a.rounds} runs in {a.rounds} interleaved rounds, ms, through"
        f" the command server; load average {before[0]:.2f} before, {after[0]:.2f} after"
    )
    print()
    print(f"{'command':<38} {'python':>7} {'native':>7} {'docker':>7} {'nat/py':>7} "
          f"{'py/dk':>6} {'nat/dk':>7}  target")  # fmt: skip
    for key, (label, _args, _docker) in rows.items():
        py, nat = (statistics.median(samples[key, n]) for n in ("python", "native"))
        line = f"{label:<38} {py:>7.1f} {nat:>7.1f}"
        if (key, "docker") in samples:
            dk = statistics.median(samples[key, "docker"])
            ok = "ok" if nat / dk <= TARGETS[key] else "MISSED"
            line += f" {dk:>7.1f} {nat / py:>6.2f}x {py / dk:>5.2f}x {nat / dk:>6.2f}x"
            line += f"  <= {TARGETS[key]}x {ok}"
        else:
            line += f" {'':>7} {nat / py:>6.2f}x"
        print(line)


def _remove_all(ours: list[str], env: dict[str, str]) -> None:
    listed = subprocess.run([*ours, "ps", "-aq"], env=env, capture_output=True, text=True)
    if listed.stdout.split():
        subprocess.run([*ours, "rm", "-f", *listed.stdout.split()], env=env, check=False,
                       stdout=subprocess.DEVNULL)  # fmt: skip


def _docker_remove_all(dockerd: Dockerd) -> None:
    listed = dockerd.run("ps", "-aq", check=False).stdout.decode().split()
    if listed:
        dockerd.run("rm", "-f", *listed, check=False)


if __name__ == "__main__":
    sys.exit(main())
