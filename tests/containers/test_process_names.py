"""ps says what each ipydock process is: a detached container's supervisor is
``ipydock-supervisor <id>``, not one more ``python3 -m …``."""

from __future__ import annotations

import os

import pytest

from ipydock.engine.containers import RunOptions

pytestmark = pytest.mark.root


def cmdlines() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            continue  # gone meanwhile
    return found


def test_a_detached_containers_supervisor_is_named_by_its_id(engine) -> None:
    cid = engine.run(RunOptions("busybox", ("sleep", "60")), detach=True).id
    assert f"ipydock-supervisor {cid[:12]}" in cmdlines()
    assert "ipydock-forkserver" in cmdlines()  # the backend's warm helper


def test_a_threaded_caller_without_a_helper_starts_a_named_supervisor(backend, busybox) -> None:
    """A threaded process must not fork: it starts ``python -m …supervisor``, which detaches
    the same way the helper's spares do."""
    import threading

    from ipydock.backends import BundledBackend

    cold = BundledBackend(backend.store, warm=False)
    release = threading.Event()
    waiter = threading.Thread(target=release.wait)
    waiter.start()
    try:
        cid = cold.run(RunOptions("busybox", ("sleep", "60"), network="none"), detach=True).id
    finally:
        release.set()
        waiter.join()
    assert cold.inspect_container(cid).state["Status"] == "running"
    assert f"ipydock-supervisor {cid[:12]}" in cmdlines()
    cold.remove_container(cid, force=True)
