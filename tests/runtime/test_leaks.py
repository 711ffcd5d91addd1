"""Many spawn/cleanup cycles leave no mount, process, cgroup or file descriptor behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipydock.engine.runtime import Resources, Spec
from ipydock.errors import CommandNotFound

pytestmark = pytest.mark.root


def test_200_spawn_cleanup_cycles_leak_nothing(runtime, spec: Spec, leaks, probes, tmp_path):
    helper_children, open_fds = probes
    before = _fds(runtime, spec, open_fds)
    limited = replace(spec, resources=Resources(memory=64 * 1024 * 1024, pids_limit=20))
    for i in range(200):
        if i % 50 == 49:
            with pytest.raises(CommandNotFound):
                runtime.run(replace(spec, args=("missing",)))
            continue
        with runtime.run(limited if i % 2 else spec) as running:
            assert running.wait().exit_code == 0
    assert _fds(runtime, spec, open_fds) == before
    assert helper_children(runtime) == []
    assert leaks(str(tmp_path)) == []


def _fds(runtime, spec: Spec, open_fds) -> tuple[int, int]:
    """Open fds of this process and of the helper, taken while one container runs.

    The helper answers a spawn only after it has handled every earlier event, so once this
    container is up, all earlier containers' fds are closed: the count is exact, not racy.
    """
    with runtime.run(replace(spec, args=("sleep", "1000"))):
        helper = runtime.forkserver._proc.pid  # noqa: SLF001
        return open_fds(), open_fds(helper)
