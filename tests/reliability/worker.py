"""One of the concurrency suite's workers: random store operations on one shared root.

Run as ``python -m tests.reliability.worker ROOT N SECONDS OUT TMP`` (a process of its own, as
a kernel is); writes a JSON summary to OUT: operations done, documented conflicts met, and
failures (anything else, with its traceback). Each worker names its images ``wN:…`` and picks
the ones to run, tag, save or remove among its own, or one time in three among everyone's.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.errors import (
    ContainerNotFound,
    ImageHasChildren,
    ImageInUse,
    ImageMultiplyReferenced,
    ImageNotFound,
)
from ipydock.models import RunOptions

# The documented conflicts of concurrent work: another process removed the image this one
# named (its prune took a dangling image, its rm an image this one had just listed), or uses
# the image this one wants to remove. BlobNotFound/LayerNotFound are not among them: those
# would mean a damaged store.
CONFLICTS = (ImageNotFound, ImageInUse, ImageHasChildren, ImageMultiplyReferenced,
             ContainerNotFound)  # fmt: skip


def main(root: str, n: int, seconds: float, out: str, tmp: str) -> None:
    rnd = random.Random(n)
    backend = BundledBackend(Store(root))
    done: dict[str, int] = {}
    conflicts: dict[str, int] = {}
    failures: list[str] = []
    deadline = time.monotonic() + seconds
    i = 0
    ops = [build, build, run, tag, remove, prune, save_load, commit]
    while time.monotonic() < deadline:
        i += 1
        op = rnd.choice(ops)
        try:
            op(backend, rnd, n, i, tmp)
            done[op.__name__] = done.get(op.__name__, 0) + 1
        except CONFLICTS as exc:
            conflicts[type(exc).__name__] = conflicts.get(type(exc).__name__, 0) + 1
        except Exception as exc:  # noqa: BLE001 - the suite's whole point: report it
            failures.append(f"{op.__name__}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    backend.close()
    with open(out, "w") as f:
        json.dump({"done": done, "conflicts": conflicts, "failures": failures}, f)


def _names(backend: BundledBackend, n: int, rnd: random.Random) -> list[str]:
    """This worker's image names, or (one time in three) every worker's: races on one name."""
    mine = rnd.random() > 0.33
    return [f"{r.repository}:{r.tag}" for r in backend.images()
            if r.repository == f"w{n}" or (not mine and r.repository.startswith("w"))]  # fmt: skip


def build(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    ctx = os.path.join(tmp, f"ctx{n}")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "f"), "w") as f:
        f.write(str(rnd.randrange(4)))  # a few variants: cache hits and misses both
    steps = ["FROM busybox", "COPY f /f", f"ENV N={rnd.randrange(3)}"]
    if rnd.random() < 0.3:
        steps.append("RUN echo $N >> /f")
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("\n".join(steps) + "\n")
    backend.build(ctx, tags=[f"w{n}:{i}"])


def run(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    image = rnd.choice(_names(backend, n, rnd) or ["busybox"])
    result = backend.run(RunOptions(image=image, command=("true",), auto_remove=True,
                                    network="none"))  # fmt: skip
    if result.exit_code != 0:
        raise AssertionError(f"run {image} true: exit code {result.exit_code}")


def tag(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    names = _names(backend, n, rnd)
    if names:
        backend.tag(rnd.choice(names), f"w{n}:t{i}")


def remove(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    names = _names(backend, n, rnd)
    if names:
        backend.remove_image(rnd.choice(names))


def prune(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    backend.prune_images()


def save_load(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    names = _names(backend, n, rnd)
    if not names:
        return
    path = os.path.join(tmp, f"save{n}.tar")
    backend.save([rnd.choice(names)], path)
    backend.load(path)


def commit(backend: BundledBackend, rnd: random.Random, n: int, i: int, tmp: str) -> None:
    image = rnd.choice(_names(backend, n, rnd) or ["busybox"])
    cid = backend.create_container(RunOptions(image=image, command=("true",), network="none"))
    try:
        backend.commit(cid, f"w{n}:c{i}")
    finally:
        backend.remove_container(cid, force=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5])
