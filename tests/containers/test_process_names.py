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
