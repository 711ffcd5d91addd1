"""Docker's hardening flags through whole containers, and a killed starter (the "kernel")."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from ipydock.engine.containers import RunOptions

pytestmark = pytest.mark.root

DEFAULT_CAPS = 0xA80425FB  # Docker's default capability set


def cap_eff(engine, **flags) -> int:  # noqa: ANN001
    seen: list[str] = []
    result = engine.run(RunOptions("busybox", ("grep", "CapEff", "/proc/self/status"), **flags),
                        output=lambda s, t: seen.append(t))  # fmt: skip
    assert result.exit_code == 0
    return int("".join(seen).split()[1], 16)


def test_capabilities_default_add_drop_and_privileged(engine) -> None:
    assert cap_eff(engine) == DEFAULT_CAPS
    assert cap_eff(engine, cap_add=("NET_ADMIN",)) == DEFAULT_CAPS | 1 << 12
    assert cap_eff(engine, cap_drop=("CHOWN", "KILL")) == DEFAULT_CAPS & ~(1 << 0 | 1 << 5)
    assert cap_eff(engine, cap_drop=("ALL",), cap_add=("CHOWN",)) == 1 << 0
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert cap_eff(engine, privileged=True) == bounding  # every capability the host has


def test_read_only_root_refuses_writes_but_not_to_volumes(engine) -> None:
    seen: list[str] = []
    script = "touch /x 2>&1; echo rc=$?; touch /data/ok && echo vol-ok"
    result = engine.run(RunOptions("busybox", ("sh", "-c", script), read_only=True,
                                   volumes=("/data",)),
                        output=lambda s, t: seen.append(t))  # fmt: skip
    text = "".join(seen)
    assert result.exit_code == 0
    assert "Read-only file system" in text and "rc=1" in text and "vol-ok" in text
    assert engine.diff(result.id) == []  # nothing reached the writable layer
    assert cap_eff(engine, read_only=True) == DEFAULT_CAPS


KERNEL = textwrap.dedent("""
    import json, sys
    from ipydock.backends import BundledBackend
    from ipydock.engine.containers import RunOptions
    from ipydock.engine.store import Store
    backend = BundledBackend(Store(sys.argv[1]))
    cid = backend.run(RunOptions("busybox", ("sleep", "1000")), detach=True).id
    print(json.dumps({"id": cid, "helper": backend._forkserver._proc.pid}), flush=True)
    backend.run(RunOptions("busybox", ("sh", "-c", "echo up; exec sleep 1000"), name="attached"),
                output=lambda _stream, text: print(text, end="", flush=True))  # blocks
""")


def test_killing_the_kernel_leaves_a_consistent_state(engine, root) -> None:
    """A detached container outlives its kernel; so does an attached one (as with docker, the
    container is not the client's); the kernel's warm helper exits with it."""
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, root], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert kernel.stdout is not None
    started = json.loads(kernel.stdout.readline())
    helper = os.pidfd_open(started["helper"])
    assert kernel.stdout.readline() == "up\n"  # the attached run is under way
    attached = {r.name: r for r in engine.containers()}["attached"]
    kernel.send_signal(signal.SIGKILL)
    kernel.wait()
    kernel.stdout.close()
    # the helper notices its control socket closed and exits
    assert select.select([helper], [], [], 30)[0], "the helper outlived its kernel"
    os.close(helper)
    rows = {r.id: r.status for r in engine.containers()}
    assert rows == {started["id"]: "running", attached.id: "running"}
    assert engine.exec(started["id"], ["true"]) == 0
    engine.stop_container(started["id"], timeout=0)
    assert engine.inspect_container(started["id"]).state["ExitCode"] == 137
    engine.remove_container(attached.id, force=True)
