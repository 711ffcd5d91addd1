"""``container diff`` side by side with the real docker (20.10) on the same changes."""

from __future__ import annotations

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.testing import Dockerd

pytestmark = [pytest.mark.root, pytest.mark.docker]

SCRIPT = ("mkdir -p /new/sub && echo a > /new/sub/f && echo x >> /etc/passwd && rm /etc/group "
          "&& echo n > /root/added && mkdir /root/d && rmdir /root/d && ln -s /x /bin/dangling "
          "&& chmod 700 /root")  # fmt: skip


def test_diff_matches_docker(engine, dockerd: Dockerd, busybox_tgz: str) -> None:
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "ipydock-test/diff")
    try:
        dockerd.run("run", "--name", "ipydock-diff", "--network", "none", "ipydock-test/diff",
                    "sh", "-c", SCRIPT)  # fmt: skip
        theirs = dockerd.run("diff", "ipydock-diff").stdout.decode().splitlines()
    finally:
        dockerd.run("rm", "-f", "ipydock-diff", check=False)
        dockerd.run("rmi", "-f", "ipydock-test/diff", check=False)
    result = engine.run(RunOptions("busybox", ("sh", "-c", SCRIPT)))
    assert result.exit_code == 0
    ours = [f"{c.kind} {c.path}" for c in engine.diff(result.id)]
    # docker 20.10 prints siblings in Go map order (random from run to run); we sort by path
    assert ours == sorted(ours, key=lambda line: line[2:])
    assert sorted(ours) == sorted(theirs)
    assert ("A /new/sub/f" in ours) and ("D /etc/group" in ours)
