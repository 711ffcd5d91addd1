"""Terminals: ``run -it`` from launch to the shell's prompt and out again, and output
throughput through the terminal, ipydock's CLI beside ``docker`` on a private dockerd.

Each row runs the command on a pseudo-terminal this script opens (the session leader's
controlling terminal, as in a user's shell), as a user would:

- "prompt": ``run -it --rm busybox sh``, wait for ``/ # ``, type ``exit``, wait for the end;
- "8 MiB": ``run -t --rm busybox sh -c 'head -c 8388608 /dev/zero | tr "\\0" x'``, read it all
  from the terminal until the end (the container's pty, its supervisor, the CLI's copy);
- "200k lines": ``yes | head -n 200000`` the same way (one log entry per line).

Run as root: ``python bench/bench_tty.py [-n 20] [--rounds 4]``; rows are interleaved in rounds
(as ``bench_run.py``) and each figure is the median of its runs; network none on both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from ipydock.testing import Dockerd, busybox_tarball  # noqa: E402

BIG = 8 * 1024 * 1024
FLOOD = f"head -c {BIG} /dev/zero | tr '\\0' x"
LINES = "yes | head -n 200000"


def on_terminal(argv: list[str], env: dict[str, str], typed: bytes = b"",
                until: bytes = b"") -> int:  # fmt: skip
    """Run ``argv`` on a new pty; type ``typed`` once ``until`` shows; read to the end; the
    number of bytes seen."""
    master, slave = os.openpty()

    def ctty() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            preexec_fn=ctty, close_fds=True)  # fmt: skip
    os.close(slave)
    seen, total, typed_yet = b"", 0, not typed
    try:
        while True:
            if not select.select([master], [], [], 120)[0]:
                raise RuntimeError(f"{argv}: no output for 120 s")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command and its terminal are gone
                break
            if not chunk:
                break
            total += len(chunk)
            if not typed_yet:
                seen += chunk
                if until in seen:
                    os.write(master, typed)
                    typed_yet = True
    finally:
        os.close(master)
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv}: exit {proc.returncode}")
    return total


class Rows:
    def __init__(self) -> None:
        self.runs: dict[str, Callable[[], object]] = {}
        self.samples: dict[str, list[float]] = {}

    def add(self, name: str, once: Callable[[], object]) -> None:
        once()  # warm up
        self.runs[name] = once
        self.samples[name] = []

    def round(self, k: int) -> None:
        for name, once in self.runs.items():
            for _ in range(k):
                start = time.perf_counter()
                once()
                self.samples[name].append(time.perf_counter() - start)


def rows_for(rows: Rows, label: str, command: list[str], env: dict[str, str]) -> None:
    run = [*command, "run", "--rm", "--network", "none"]
    rows.add(
        f"{label} prompt",
        lambda: on_terminal([*run, "-it", "busybox", "sh"], env, b"exit\r", b"/ # "),
    )
    rows.add(f"{label} 8 MiB",
             lambda: on_terminal([*run, "-t", "busybox", "sh", "-c", FLOOD], env))  # fmt: skip
    rows.add(f"{label} 200k lines",
             lambda: on_terminal([*run, "-t", "busybox", "sh", "-c", LINES], env))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="runs per row (default 20)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    args = parser.parse_args()
    from ipydock.backends import BundledBackend
    from ipydock.engine.runtime import cgroups
    from ipydock.engine.store import Store
    from ipydock.testing import CommandServer

    k = max(1, args.n // args.rounds)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipydock-bench-")))
        tgz = busybox_tarball(str(work / "busybox.tar.gz"))
        root = work / "store"
        backend = BundledBackend(Store(str(root)), warm=False)
        stack.callback(cgroups.remove_parent, "ipydock")
        backend.import_image(tgz, "busybox", changes=['CMD ["sh"]'])
        server = stack.enter_context(CommandServer())
        rows = Rows()
        script = os.path.join(os.path.dirname(sys.executable), "ipydock")
        ours = [script] if os.path.exists(script) else [sys.executable, "-m", "ipydock"]
        rows_for(rows, "ipydock", [*ours, "--root", str(root)], server.env)
        dockerd = stack.enter_context(Dockerd())
        dockerd.run("import", "--change", 'CMD ["sh"]', tgz, "busybox:latest")
        rows_for(rows, "docker", ["docker"], dockerd.env())
        for _ in range(args.rounds):
            rows.round(k)
    medians = {n: statistics.median(v) * 1000 for n, v in rows.samples.items()}
    print(f"median of {k * args.rounds} runs, network none, on {os.uname().release}")
    print(f"{'what':<40}{'ms':>10}{'vs docker':>11}")
    for name, ms in medians.items():
        ref = medians.get(name.replace("ipydock", "docker", 1))
        ratio = f"{ms / ref:.2f}x" if ref and name.startswith("ipydock") else ""
        print(f"{name:<40}{ms:>10.1f}{ratio:>11}")


if __name__ == "__main__":
    main()
