"""Store writes in the user's namespace: how a rootless store keeps other ids than the user's.

With subordinate id ranges (see :mod:`ipydock.engine.runtime.idranges`) a layer holds files of
many owners (``_apt``, uid 1000, ...), on the host ``range start + id - 1``. Only a process in a
user namespace with that mapping may give files those owners, so layer extraction, layer tars
(files of mode 0600 of another owner), the vfs driver's copies and the removal of such trees
run in a worker started for the purpose, as Podman runs its storage code
in its rootless namespace::

    kernel (threads, the user's ids)          worker: python -m ipydock.engine.store.userns
    apply_tar(stream) --stdin: the tar------>  enter_user_namespace() (0 = user, 1.. = range)
    write_tar, export <-stdout: the tar-----   apply | write_tar | vfs_export | copy | remove
                      <-answer pipe: JSON---  (result, warnings, or the error: class and data)

Without a range nothing is delegated: the user's own process writes as before (every file the
user's, read as 0 inside). Errors come back as the same :mod:`ipydock.errors` classes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import IO, Any, BinaryIO

from ipydock.engine.store.layerfmt import CHUNK, ApplyResult

__all__ = [
    "apply_tar",
    "call",
    "copy_tree",
    "delegates",
    "remove_tree",
    "vfs_export",
    "write_tar",
]

_PACKAGE_ROOT = str(Path(__file__).absolute().parents[3])
#: Set in the worker: it is the namespace, nothing more to delegate.
_INSIDE = False


def delegates() -> bool:
    """True when store writes must go through the worker: not root, not already inside, and
    the user has usable subordinate ranges."""
    if _INSIDE or os.geteuid() == 0:
        return False
    from ipydock.engine.runtime.idranges import find

    return find().usable


def apply_tar(stream: BinaryIO, target: str, *, source: str, whiteouts: str) -> ApplyResult:
    """``untar.apply_tar`` in the worker; the stream is read to its end here."""
    request = {"op": "apply", "target": target, "source": source, "whiteouts": whiteouts}
    found = _call(request, stdin=stream)
    return ApplyResult(size=found["size"], entries=found["entries"])


def write_tar(src: str, out: BinaryIO, *, whiteouts: str, mtime_clamp: int | None) -> ApplyResult:
    """``mktar.write_tar`` in the worker (it reads every file, whoever owns it)."""
    request = {"op": "write_tar", "src": src, "whiteouts": whiteouts, "clamp": mtime_clamp}
    found = _call(request, stdout=out)
    return ApplyResult(size=found["size"], entries=found["entries"])


def vfs_export(
    dest: str, parent: str | None, out: BinaryIO, mtime_clamp: int | None
) -> ApplyResult:
    """``VfsDriver.export`` in the worker."""
    request = {"op": "vfs_export", "dest": dest, "parent": parent, "clamp": mtime_clamp}
    found = _call(request, stdout=out)
    return ApplyResult(size=found["size"], entries=found["entries"])


def call(function: str, *args: Any) -> Any:
    """``module:function(*args)`` of ``ipydock.engine`` in the worker, for reads of trees the
    user cannot read itself (a container's ``diff``, ``system df``); JSON in and out."""
    return _call({"op": "call", "function": function, "args": list(args)})["result"]


def copy_tree(src: str, dest: str) -> None:
    """``snapshots.copy_tree`` in the worker (``cp -a`` keeps the range's owners there)."""
    _call({"op": "copy", "src": src, "dest": dest})


def remove_tree(path: str) -> None:
    """``fsutil.remove_tree`` in the worker: directories of the range's owners."""
    _call({"op": "remove", "path": path})


def _call(
    request: dict[str, Any], *, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> dict[str, Any]:
    """One worker for one request: feed ``stdin`` or drain into ``stdout`` (never both, so no
    deadlock), then read its answer from a pipe of its own."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    answer_r, answer_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ipydock.engine.store.userns", str(answer_w),
             json.dumps(request)],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is not None else subprocess.DEVNULL,
            pass_fds=[answer_w],
            env=env,
            cwd="/",
        )  # fmt: skip
    finally:
        os.close(answer_w)
    with os.fdopen(answer_r, "rb") as answers:
        if stdin is not None:
            assert proc.stdin is not None
            _feed(stdin, proc.stdin)
        if stdout is not None:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(CHUNK):
                stdout.write(chunk)
            proc.stdout.close()
        answer = answers.read()
    code = proc.wait()
    try:
        found: dict[str, Any] = json.loads(answer)
    except ValueError:
        raise OSError(f"the store's user-namespace worker failed (exit code {code})") from None
    for text in found.get("warnings", ()):
        from ipydock.errors import IPyDockWarning

        warnings.warn(IPyDockWarning(text), stacklevel=4)
    if "error" in found:
        raise _error(found["error"])
    return found


def _feed(stream: BinaryIO, pipe: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):  # the worker stopped early: it says why
        try:
            while chunk := stream.read(CHUNK):
                pipe.write(chunk)
        finally:
            with contextlib.suppress(BrokenPipeError):
                pipe.close()


def _error(data: dict[str, Any]) -> BaseException:
    """The worker's exception as the class it had (``ipydock.errors`` or OSError)."""
    from ipydock import errors

    cls = getattr(errors, data["type"], None)
    if isinstance(cls, type) and issubclass(cls, errors.IPyDockError):
        exc = cls.__new__(cls)
        exc.args = tuple(data["args"])
        exc.__dict__.update(data["attrs"])
        return exc
    return OSError(data.get("errno") or 0, data["message"])


# --------------------------------------------------------------------------- the worker


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    from ipydock.engine.store import fsutil, mktar, untar
    from ipydock.engine.store.snapshots import VfsDriver
    from ipydock.engine.store.snapshots import copy_tree as copy

    op = request["op"]
    if op == "call":
        import importlib

        module, _, name = request["function"].partition(":")
        if not module.startswith("ipydock.engine."):
            raise ValueError(f"not an engine function: {request['function']!r}")
        return {"result": getattr(importlib.import_module(module), name)(*request["args"])}
    if op == "copy":
        copy(request["src"], request["dest"])
        return {}
    if op == "remove":
        fsutil.remove_tree(request["path"])
        return {}
    if op == "apply":
        result = untar.apply_tar(sys.stdin.buffer, request["target"], source=request["source"],
                                 whiteouts=request["whiteouts"], rootless=True)  # fmt: skip
    elif op == "write_tar":
        with open(1, "wb", closefd=False) as out:
            result = mktar.write_tar(request["src"], out, whiteouts=request["whiteouts"],
                                     mtime_clamp=request["clamp"])  # fmt: skip
    elif op == "vfs_export":
        with open(1, "wb", closefd=False) as out:
            result = VfsDriver().export(request["dest"], request["parent"], out,
                                        mtime_clamp=request["clamp"])  # fmt: skip
    else:
        raise ValueError(f"unknown operation {op!r}")
    return {"size": result.size, "entries": result.entries}


def main(argv: list[str] | None = None) -> int:
    global _INSIDE
    argv = sys.argv[1:] if argv is None else argv
    out: dict[str, Any]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from ipydock.engine.runtime.spawn import enter_user_namespace

            enter_user_namespace()
            _INSIDE = True
            out = _serve(json.loads(argv[1]))
        except Exception as exc:  # noqa: BLE001 - sent back as data
            attrs = {k: v for k, v in vars(exc).items() if _jsonable(v)}
            out = {"error": {"type": type(exc).__name__, "message": str(exc), "attrs": attrs,
                             "args": [a for a in exc.args if _jsonable(a)],
                             "errno": getattr(exc, "errno", 0)}}  # fmt: skip
    out["warnings"] = [str(w.message) for w in caught]
    sys.stdout.flush()
    os.close(1)  # the tar ends here, before the answer: the caller reads them in that order
    with open(int(argv[0]), "w") as answer:
        answer.write(json.dumps(out))
    return 0


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
