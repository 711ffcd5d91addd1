"""Benchmark: ``ipydock push`` / ``ipydock pull`` beside ``skopeo copy``, same machine, same
local ``docker-registry`` (fresh storage for every push, so nothing is skipped or mounted).

The image: one ~100 MB layer (half incompressible bytes, half text), imported into a store,
pushed once (gzipped) to a seed registry; from there ``skopeo copy`` fills an OCI dir and
``ipydock pull`` a store, so both sides hold the same compressed blob.

* push: ``ipydock push`` from that store (it sends the blob the pull kept) against ``skopeo copy
  oci:DIR docker://…``; and, for scale, ``ipydock push`` of the imported image (its layer is kept
  as a tar here, so it is gzipped while it is sent);
* pull: ``ipydock pull`` into an empty store (download, digest checks, decompress, unpack a
  snapshot) against ``skopeo copy docker://… oci:DIR`` (download and digest checks only).

Then, beside a private dockerd 20.10 (``--no-docker`` skips it): ``pull`` of a real multi-layer
image, Debian minbase (``ipydock image bootstrap``) plus a Python stack apt-installed in two
build steps (~440 MB, made once into ``--cache``), loaded into dockerd and pushed by ``docker
push``; then ``docker pull`` (after ``docker rmi``) against ``ipydock pull`` into an empty
store (after deleting its previous one: each pull comes right after a deletion of the same size).
The registry runs in dockerd's network namespace and ipydock joins it. CPU user/sys is printed
beside the wall times (dockerd's included for docker's pull).

Each side runs through its CLI in a new process, alternating, median of ``--runs``: ipydock
as users run it (the venv's ``ipydock`` command, through its warm command server, as docker's
client goes through dockerd) and, for scale, without its server (a new Python each time:
~0.2 s of start-up and imports before any work). Prints the times and the ratios (targets:
<= 1 against skopeo, <= 0.5 against docker's pull).
Run as root: ``python bench/bench_registry.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from ipydock.testing import CommandServer, LocalRegistry

MB = 1 << 20


def make_rootfs_tar(path: str, size: int) -> None:
    """A tarball with ``size`` bytes of files: half random, half repetitive text."""
    with tarfile.open(path, "w") as tf:
        for i, kind in enumerate(("random", "text")):
            data = os.urandom(size // 2) if kind == "random" else (
                b"".join(b"line %08d of a text file that compresses well\n" % n
                         for n in range(size // 2 // 48)))  # fmt: skip
            info = tarfile.TarInfo(f"data/{kind}-{i}.bin")
            info.size = len(data)
            import io

            tf.addfile(info, io.BytesIO(data))


def ipydock_cmd(*args: str, root: str) -> list[str]:
    return [sys.executable, "-m", "ipydock", "--root", root, *args]


def served_cmd(*args: str, root: str) -> list[str]:
    """The ``ipydock`` command as users run it (the venv's: native after setup) through its
    warm command server (see :func:`main`)."""
    script = os.path.join(os.path.dirname(sys.executable), "ipydock")
    return [script if os.path.exists(script) else sys.executable, "--root", root, *args]


def skopeo_cmd(*args: str) -> list[str]:
    return ["skopeo", "copy", "-q", *args]


#: The environment of the commands :func:`run` runs: no command server unless :func:`main`
#: points a served command at its own.
ENV = {**os.environ, "IPYDOCK_SERVER": "0"}


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Run a command (ipydock without its command server unless ``env`` names one); its wall
    time in seconds."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env or ENV, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--no-docker", action="store_true", help="skip the rows beside dockerd")
    parser.add_argument(
        "--cache",
        default="/var/tmp/ipydock-bench-pystack",
        help="where the Debian + Python stack store is made once and kept",
    )
    opts = parser.parse_args()
    if shutil.which("skopeo") is None or not os.path.exists("/usr/bin/docker-registry"):
        sys.exit("needs skopeo and docker-registry (scripts/setup.sh --test)")
    work = tempfile.mkdtemp(prefix="ipydock-bench-registry-")
    try:
        rootfs = os.path.join(work, "rootfs.tar")
        make_rootfs_tar(rootfs, opts.size_mb * MB)
        store = os.path.join(work, "store")
        run(ipydock_cmd("import", rootfs, "bench/big:1", root=store))
        oci = os.path.join(work, "oci")
        pulled = os.path.join(work, "pulled")  # holds the compressed blob, as the OCI dir does
        seed = LocalRegistry(prefix="ipydock-bench-registry-").start()
        try:
            name = f"{seed.host}/bench/big:1"
            run(ipydock_cmd("tag", "bench/big:1", name, root=store))
            run(ipydock_cmd("push", name, root=store))
            run(ipydock_cmd("rmi", name, root=store))
            run(skopeo_cmd("--src-tls-verify=false", f"docker://{name}", f"oci:{oci}:b"))
            run(ipydock_cmd("pull", name, root=pulled))
            run(ipydock_cmd("tag", name, "bench/big:1", root=pulled))
        finally:
            seed.stop()
        keys = ("ipush", "spush", "ipull", "spull", "itar", "cpush", "cpull")
        times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in keys}
        with CommandServer() as server:  # "c": the ipydock command through its server
            served = {"env": server.env, "daemon": server.proc.pid if server.proc else 0}
            for n in range(opts.runs):
                for who in ("i", "s", "t", "c"):  # a registry of its own for each push
                    reg = LocalRegistry(prefix="ipydock-bench-registry-").start()
                    try:
                        name = f"{reg.host}/bench/big:1"
                        fresh = os.path.join(work, f"pull-{who}-{n}")
                        if who == "i":
                            run(ipydock_cmd("tag", "bench/big:1", name, root=pulled))
                            times["ipush"].append(timed(ipydock_cmd("push", name, root=pulled)))
                            run(ipydock_cmd("rmi", name, root=pulled))
                            times["ipull"].append(timed(ipydock_cmd("pull", name, root=fresh)))
                        elif who == "c":
                            run(served_cmd("tag", "bench/big:1", name, root=pulled), server.env)
                            times["cpush"].append(timed(served_cmd("push", name, root=pulled),
                                                        **served))  # fmt: skip
                            run(served_cmd("rmi", name, root=pulled), server.env)
                            times["cpull"].append(timed(served_cmd("pull", name, root=fresh),
                                                        **served))  # fmt: skip
                        elif who == "t":
                            run(ipydock_cmd("tag", "bench/big:1", name, root=store))
                            times["itar"].append(timed(ipydock_cmd("push", name, root=store)))
                            run(ipydock_cmd("rmi", name, root=store))
                        else:
                            times["spush"].append(
                                timed(
                                    skopeo_cmd(
                                        "--dest-tls-verify=false",
                                        f"oci:{oci}:b",
                                        f"docker://{name}",
                                    )
                                )
                            )
                            times["spull"].append(
                                timed(
                                    skopeo_cmd(
                                        "--src-tls-verify=false",
                                        f"docker://{name}",
                                        f"oci:{fresh}:b",
                                    )
                                )
                            )
                        shutil.rmtree(fresh, ignore_errors=True)
                    finally:
                        reg.stop()
        med = {k: [statistics.median(t[j] for t in v) for j in range(3)] for k, v in times.items()}
        print(f"one {opts.size_mb} MB layer, median of {opts.runs} runs (seconds)")
        print(f"{'':30} {'ipydock':>8} {'skopeo':>8} {'ratio':>6}   CPU user/sys: ipydock, "
              "skopeo")  # fmt: skip
        for op in ("push", "pull"):
            for label, who in (("the ipydock command", "c"), ("no server (a new Python)", "i")):
                (i, iu, isy), (s, su, ssy) = med[who + op], med["s" + op]
                print(f"{op + ', ' + label:30} {i:8.2f} {s:8.2f} {i / s:6.2f}   "
                      f"{iu:.2f}/{isy:.2f}, {su:.2f}/{ssy:.2f}")  # fmt: skip
        print(f"(push of the layer kept as a tar, gzipped while sent: {med['itar'][0]:.2f} s, "
              f"{med['itar'][0] / med['spush'][0]:.2f}x skopeo's push)")  # fmt: skip
        if not opts.no_docker:
            docker_pull_rows(work, opts.runs, opts.cache or os.path.join(work, "pystack"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


PYSTACK = """\
FROM bench/debian:bookworm
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-numpy \\
    && rm -rf /var/lib/apt/lists/*
RUN apt-get update -q && apt-get install -y -q --no-install-recommends python3-pandas \\
    && rm -rf /var/lib/apt/lists/*
"""


def pystack_store(path: str) -> str:
    """A store holding ``bench/pystack``: ``image bootstrap`` of Debian minbase, then a build
    that apt-installs a Python stack in two steps (three layers). Kept in ``path`` (made
    once: it takes minutes and needs the Debian mirror)."""
    if os.path.exists(os.path.join(path, "pystack.done")):
        return path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.join(path, "context"))
    with open(os.path.join(path, "context", "Dockerfile"), "w") as f:
        f.write(PYSTACK)
    store = os.path.join(path, "store")
    run(ipydock_cmd("image", "bootstrap", "-q", "bench/debian:bookworm", root=store))
    run(ipydock_cmd("build", "-q", "-t", "bench/pystack", os.path.join(path, "context"),
                    root=store))  # fmt: skip
    open(os.path.join(path, "pystack.done"), "w").close()
    return path


def docker_pull_rows(work: str, runs: int, cache: str) -> None:
    """``docker pull`` against ``ipydock pull`` of the Debian + Python stack image, which
    docker itself pushed (``docker load`` of ``ipydock save``, then ``docker push``).

    Both sides meet the same conditions: right before each pull its own previous copy of the
    image (~15k files) is deleted (``docker rmi``; the previous store), since on ext4 without
    a journal the kernel skips recently deleted inodes when it allocates new ones, and a pull
    after a big deletion pays for that in every file it creates. The order alternates. CPU
    time is shown beside the wall time: ipydock's process, and the docker client plus dockerd
    and its children (where docker pulls and unpacks)."""
    from ipydock.testing import Dockerd

    base = pystack_store(cache)
    store = os.path.join(base, "store")
    archive = os.path.join(work, "pystack.tar")
    run(ipydock_cmd("save", "-o", archive, "bench/pystack", root=store))
    with Dockerd(own_network=True) as dockerd:
        assert dockerd.proc is not None
        netns = f"/proc/{dockerd.proc.pid}/ns/net"
        subprocess.run(["nsenter", f"--net={netns}", "--", "ip", "link", "set", "lo", "up"],
                       check=True)  # fmt: skip
        reg = LocalRegistry(netns=netns, prefix="ipydock-bench-registry-").start()
        try:
            name = f"{reg.host}/bench/pystack:1"
            inside = ["nsenter", f"--net={netns}", "--"]
            docker = ["docker", "-H", dockerd.host]
            subprocess.run([*docker, "load", "-q", "-i", archive], check=True,
                           capture_output=True)  # fmt: skip
            subprocess.run([*docker, "tag", "bench/pystack", name], check=True)
            subprocess.run([*docker, "push", name], check=True, capture_output=True)
            subprocess.run([*docker, "rmi", "-f", "bench/pystack"], capture_output=True)
            # docker holds the image it loaded: ipydock gets a copy to delete as well
            previous = os.path.join(work, "multi-pull-0")
            run(inside + ipydock_cmd("pull", name, root=previous))
            size = _image_size(previous, name)
            times: dict[str, list[tuple[float, float, float]]] = {"docker": [], "ipydock": []}
            for n in range(runs):
                for who in ("docker", "ipydock") if n % 2 == 0 else ("ipydock", "docker"):
                    if who == "docker":
                        subprocess.run([*docker, "rmi", "-f", name], capture_output=True)
                        times[who].append(timed([*docker, "pull", "-q", name], dockerd.proc.pid))
                    else:
                        shutil.rmtree(previous)
                        previous = os.path.join(work, f"multi-pull-{n + 1}")
                        times[who].append(timed(inside + ipydock_cmd("pull", name, root=previous)))
            subprocess.run([*docker, "rmi", "-f", name], capture_output=True)
        finally:
            reg.stop()
    med = {k: [statistics.median(t[j] for t in v) for j in range(3)] for k, v in times.items()}
    (i, iu, isy), (d, du, dsy) = med["ipydock"], med["docker"]
    print(f"\nDebian + Python stack ({size / 1e6:.0f} MB, 3 layers, pushed by docker), pull, "
          f"median of {runs} runs (seconds; each pull right after deleting its own previous "
          "copy)")  # fmt: skip
    print(f"{'':6} {'ipydock':>8} {'docker':>8} {'ratio':>6}   CPU user/sys: ipydock, docker")
    print(f"{'pull':6} {i:8.2f} {d:8.2f} {i / d:6.2f}   {iu:.2f}/{isy:.2f}, {du:.2f}/{dsy:.2f}")


def timed(
    cmd: list[str], daemon: int = 0, env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """(wall, user CPU, system CPU) of a command run as :func:`run` runs it; the CPU is the
    command's and its children's, plus, with ``daemon``, that process's and its children's
    (dockerd: docker's pull happens there; the command server: its worker)."""
    before, usage = _tree_cpu(daemon), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run(cmd, env)
    after, usage2 = _tree_cpu(daemon), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        wall,
        usage2.ru_utime - usage.ru_utime + after[0] - before[0],
        usage2.ru_stime - usage.ru_stime + after[1] - before[1],
    )


def _tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) seconds of ``pid`` and its direct children (each with its own reaped
    children), from /proc; (0, 0) for pid 0."""
    if not pid:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(c) for c in f.read().split()]
    user = system = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        user += (int(fields[11]) + int(fields[13])) / tick
        system += (int(fields[12]) + int(fields[14])) / tick
    return user, system


def _image_size(root: str, name: str) -> int:
    out = subprocess.run(ipydock_cmd("images", "--format", "json", root=root),
                         capture_output=True, check=True, text=True).stdout  # fmt: skip
    import json

    return sum(json.loads(line)["size"] for line in out.splitlines() if line.strip())


if __name__ == "__main__":
    main()
