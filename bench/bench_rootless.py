"""Rootless beside root mode on the same machine: ``run --rm true``, a cold build, its disk.

Run as root: ``python bench/bench_rootless.py [-n 20] [--user nobody]``. Each mode works in a
forked process: root as it is, the user after ``setresuid`` for good (as the rootless tests do;
the helpers it starts use the distribution's Python of this version, which any user may run).
Both use the bundled backend from a warm process, a fresh store of their own, the busybox test
image and the default driver (overlay for both where the kernel allows it). Printed: the median
``run --rm true`` in ms, the cold build of a 3-step Dockerfile in ms, the bytes its layers add
on disk, and the rootless/root ratios (the issue's targets: <= 1.5, <= 1.5, <= 1.1).
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
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))

from ipydock.testing import busybox_tarball  # noqa: E402

DOCKERFILE = """\
FROM busybox
RUN mkdir /data && head -c 1048576 /dev/zero > /data/one
RUN head -c 524288 /dev/zero > /data/two && rm /data/one
RUN echo done > /data/done
"""


def measure(base: str, n: int) -> dict[str, Any]:
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store
    from ipydock.models.containers import RunOptions

    store = os.path.join(base, "store")
    backend = BundledBackend(Store(store), warm=False)
    backend.import_image(os.path.join(base, "busybox.tar.gz"), "busybox", changes=['CMD ["sh"]'])
    opts = RunOptions("busybox", ("true",), auto_remove=True)
    backend.run(opts)  # warm-up: helpers, caches
    times = []
    for _ in range(n):
        start = time.perf_counter()
        backend.run(opts)
        times.append(time.perf_counter() - start)
    layers = os.path.join(store, "layers")
    before = _du(layers)
    start = time.perf_counter()
    backend.build(os.path.join(base, "ctx"), tags=["bench"], no_cache=True)
    build = time.perf_counter() - start
    return {"run_ms": statistics.median(times) * 1000, "build_ms": build * 1000,
            "disk": _du(layers) - before, "driver": backend.info()["storage_driver"],
            "mode": backend.info()["mode"]}  # fmt: skip


def _du(path: str) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def in_child(uid: int | None, base: str, n: int) -> dict[str, Any]:
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
            os.write(w, json.dumps(measure(base, n)).encode())
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
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--user", default="nobody")
    args = parser.parse_args()
    uid = pwd.getpwnam(args.user).pw_uid
    results = {}
    for label, who in (("root", None), ("rootless", uid)):
        base = tempfile.mkdtemp(prefix="ipydock-bench-rootless-")
        try:
            os.chmod(base, 0o755)
            busybox_tarball(os.path.join(base, "busybox.tar.gz"))
            os.mkdir(os.path.join(base, "ctx"))
            Path(base, "ctx", "Dockerfile").write_text(DOCKERFILE)
            if who is not None:
                for dirpath, _dirs, files in os.walk(base):
                    for name in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                        os.chown(name, who, who)
            results[label] = in_child(who, base, args.n)
        finally:
            shutil.rmtree(base)
    root, user = results["root"], results["rootless"]
    print(f"{'':10} {'root':>12} {'rootless':>12} {'ratio':>7}")
    for key, unit in (("run_ms", "ms"), ("build_ms", "ms"), ("disk", "B")):
        print(f"{key:10} {root[key]:>10.1f}{unit:>2} {user[key]:>10.1f}{unit:>2} "
              f"{user[key] / root[key]:>7.2f}")  # fmt: skip
    print(
        f"drivers: root {root['driver']} ({root['mode']}), rootless {user['driver']} "
        f"({user['mode']}, {args.user})"
    )


if __name__ == "__main__":
    main()
