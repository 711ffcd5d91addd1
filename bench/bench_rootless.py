"""Rootless beside root mode (and docker) on the same machine: run, a cold build, the disk.

Run as root: ``python bench/bench_rootless.py [-n 20] [--builds 5] [--user NAME] [--no-docker]``.
Without ``--user`` a throwaway user with a subordinate id range is made (and removed), as an
ordinary user set up as the README says has one: the reference build's ``USER nobody`` and the
disk build's ``chown 1000`` need the range. Each mode works in a forked process: root as it
is, the user after ``setresuid`` for good (as the rootless tests do; the helpers it starts use
the distribution's Python of this version, which any user may run). Both use the bundled
backend from a warm process (a notebook's case), a fresh store of their own and the default
driver (overlay for both where the kernel allows it). Measured:

* ``run --rm true``: the median of ``-n`` runs, busybox, ``--network none``;
* a cold reference build: bench_build.py's Dockerfile (200 files, 3 RUN steps, ``USER``),
  ``--no-cache``, the median of ``--builds`` builds;
* disk: a 3-step build on a Debian minbase root (mmdebstrap, ~190 MB) imported by each mode;
  the bytes its snapshot dirs take (``du``, as root, whoever owns the files).

Docker's column (``docker.io``, a private dockerd, the same image and Dockerfile) is for
scale. The issue's targets are rootless/root: <= 1.5, <= 1.5, <= 1.1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import pwd
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench.bench_build import make_context  # noqa: E402
from ipydock.testing import busybox_tarball  # noqa: E402

#: The disk build: a new 1 MiB file, deletions and a copied-up small file, a user and a chown.
DISK_STEPS = """\
FROM debian
RUN mkdir /data && head -c 1048576 /dev/urandom > /data/one
RUN rm -rf /usr/share/doc/dpkg /usr/share/man && echo 'alias ll="ls -l"' >> /etc/bash.bashrc
RUN useradd -m -u 1000 app && chown 1000:1000 /data/one
"""


def measure(base: str, n: int, builds: int) -> dict[str, Any]:
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store
    from ipydock.models.containers import RunOptions

    store = os.path.join(base, "store")
    backend = BundledBackend(Store(store))  # warm: the fork-server helper, as in a kernel
    backend.import_image(os.path.join(base, "busybox.tar.gz"), "busybox", changes=['CMD ["sh"]'])
    opts = RunOptions("busybox", ("true",), auto_remove=True)
    backend.run(opts)  # warm-up: helpers, caches
    times = []
    for _ in range(n):
        start = time.perf_counter()
        backend.run(opts)
        times.append(time.perf_counter() - start)
    ref = os.path.join(base, "ref")
    backend.build(ref, tags=["ref"], no_cache=True)  # warm-up
    build_times = []
    for _ in range(builds):
        start = time.perf_counter()
        backend.build(ref, tags=["ref"], no_cache=True)
        build_times.append(time.perf_counter() - start)
    out = {"run_ms": statistics.median(times) * 1000,
           "build_ms": statistics.median(build_times) * 1000,
           "driver": backend.info()["storage_driver"], "mode": backend.info()["mode"],
           "added": []}  # fmt: skip
    debian = os.path.join(base, "..", "debian.tar")
    if os.path.exists(debian):
        layers = os.path.join(store, "layers")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # device nodes, rootless
            backend.import_image(debian, "debian", changes=['CMD ["bash"]'])
        before = set(os.listdir(layers))
        backend.build(os.path.join(base, "disk"), tags=["disk"])
        out["added"] = [os.path.join(layers, n) for n in set(os.listdir(layers)) - before]
    backend.close()
    return out


def _du(paths: list[str]) -> int:
    if not paths:
        return 0
    out = subprocess.run(["du", "-s", "-c", "--block-size=1", *paths], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.splitlines()[-1].split()[0])


def in_child(uid: int | None, base: str, n: int, builds: int) -> dict[str, Any]:
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    path = f"{Path(__file__).resolve().parents[1]}:{sysconfig.get_paths()['purelib']}"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if uid is not None:
                import ipydock.engine

                for info in pkgutil.walk_packages(ipydock.engine.__path__, "ipydock.engine."):
                    if not info.name.endswith("__main__"):
                        importlib.import_module(info.name)
                importlib.import_module("ipydock.backends")
                gid = pwd.getpwuid(uid).pw_gid
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                sys.executable = python  # the helpers': one the user may run
                os.environ["PYTHONPATH"] = path
                os.environ["HOME"] = base
            os.write(w, json.dumps(measure(base, n, builds)).encode())
        except BaseException:  # noqa: BLE001 - sent to the parent
            os.write(w, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, raw = os.waitpid(pid, 0)
    found = json.loads(data) if data else {"error": f"no answer (wait status {raw})"}
    if "error" in found:
        raise SystemExit(f"the {'root' if uid is None else 'user'} run failed: {found['error']}")
    found["disk"] = _du(found.pop("added"))
    return found


def docker_figures(base: str, n: int, builds: int) -> dict[str, Any]:
    from ipydock.testing import Dockerd

    with Dockerd() as dockerd:
        dockerd.run("import", "-c", 'CMD ["sh"]', os.path.join(base, "busybox.tar.gz"), "busybox")
        run = ("run", "--rm", "--network", "none", "busybox", "true")
        dockerd.run(*run)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            dockerd.run(*run)
            times.append(time.perf_counter() - start)
        ref = os.path.join(base, "ref")
        dockerd.run("build", "-q", "--no-cache", "-t", "ref", ref)
        build_times = []
        for _ in range(builds):
            start = time.perf_counter()
            dockerd.run("build", "-q", "--no-cache", "-t", "ref", ref)
            build_times.append(time.perf_counter() - start)
    return {"run_ms": statistics.median(times) * 1000,
            "build_ms": statistics.median(build_times) * 1000}  # fmt: skip


class ThrowawayUser:
    """A user ``ipdu-bench-…`` with a subordinate range of 65536 ids; removed with its ranges."""

    def __enter__(self) -> str:
        self.name = "ipdu-bench-" + os.urandom(3).hex()
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.name], check=True)
        start = 3_000_000_000 + int.from_bytes(os.urandom(2), "big") * 65536 % 900_000_000
        span = f"{start}-{start + 65535}"
        subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, self.name],
                       check=True)  # fmt: skip
        return self.name

    def __exit__(self, *_: object) -> None:
        subprocess.run(["userdel", self.name], check=False, capture_output=True)
        for path in ("/etc/subuid", "/etc/subgid"):  # an older userdel leaves the ranges
            with open(path) as f:
                lines = f.readlines()
            with open(path, "w") as f:
                f.writelines(line for line in lines if line.split(":")[0] != self.name)


def debian_root(work: str) -> bool:
    """A Debian minbase tar at ``work/debian.tar`` (mmdebstrap, this host's suite)."""
    if shutil.which("mmdebstrap") is None:
        return False
    with open("/etc/os-release") as f:
        fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    suite = fields.get("VERSION_CODENAME", "").strip('"')
    tar = os.path.join(work, "debian.tar")
    proc = subprocess.run(["mmdebstrap", "--variant=minbase", "--quiet", suite, tar],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        print(f"mmdebstrap failed, no disk figure: {proc.stderr[-500:]}", file=sys.stderr)
        return False
    os.chmod(tar, 0o644)
    return True


def prepare(work: str, label: str, owner: int | None) -> str:
    base = os.path.join(work, label)
    os.mkdir(base, 0o755)
    busybox_tarball(os.path.join(base, "busybox.tar.gz"))
    make_context(os.path.join(base, "ref"))
    os.mkdir(os.path.join(base, "disk"))
    Path(base, "disk", "Dockerfile").write_text(DISK_STEPS)
    if owner is not None:
        for dirpath, _dirs, files in os.walk(base):
            for name in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                os.chown(name, owner, owner)
    return base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20, help="runs of run --rm true")
    parser.add_argument("--builds", type=int, default=5, help="cold reference builds")
    parser.add_argument("--user", help="an existing user (default: a throwaway one, ranged)")
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ipydock-bench-rootless-")
    os.chmod(work, 0o755)
    user = ThrowawayUser() if args.user is None else None
    try:
        name = user.__enter__() if user is not None else args.user
        uid = pwd.getpwnam(name).pw_uid
        has_disk = debian_root(work)
        results = {}
        for label, who in (("root", None), ("rootless", uid)):
            results[label] = in_child(who, prepare(work, label, who), args.n, args.builds)
        docker = None if args.no_docker else docker_figures(prepare(work, "docker", None),
                                                            args.n, args.builds)  # fmt: skip
    finally:
        if user is not None:
            user.__exit__()
        shutil.rmtree(work, ignore_errors=True)
    root, rootless = results["root"], results["rootless"]
    print(f"{'':22} {'root':>10} {'rootless':>10} {'ratio':>6} {'target':>7}"
          + (f" {'docker':>10} {'rootless/docker':>16}" if docker else ""))  # fmt: skip
    rows = (("run --rm true", "run_ms", "ms", 1.5), ("cold reference build", "build_ms", "ms", 1.5),
            ("disk, 3 steps on Debian", "disk", "MB", 1.1))  # fmt: skip
    for label, key, unit, target in rows:
        if key == "disk" and not has_disk:
            continue
        scale = 1e6 if unit == "MB" else 1
        a, b = root[key] / scale, rootless[key] / scale
        line = f"{label:22} {a:8.2f}{unit} {b:8.2f}{unit} {b / a:6.2f} {'<= ' + str(target):>7}"
        if docker and key in docker:
            line += f" {docker[key]:8.1f}{unit} {rootless[key] / docker[key]:16.2f}"
        print(line)
    print(f"drivers: root {root['driver']} ({root['mode']}), rootless {rootless['driver']} "
          f"({rootless['mode']}, {name}); run: median of {args.n}, build: of "
          f"{args.builds}")  # fmt: skip


if __name__ == "__main__":
    main()
