"""The rootless probe reports what works for an unprivileged user and what is missing."""

from __future__ import annotations

import os

import pytest

from ipydock.engine.runtime.rootless import RootlessReport, probe


@pytest.mark.root
def test_probe_as_nobody_reports_a_consistent_answer() -> None:
    before = set(os.listdir("/tmp"))
    report = probe(65534)
    assert isinstance(report, RootlessReport)
    assert report.uid == 65534
    if report.max_user_namespaces == 0:
        assert not report.userns
    if report.userns and report.mount_in_userns:
        assert report.usable
    assert all(isinstance(m, str) and m for m in report.missing)
    assert report.usable or report.missing
    assert set(os.listdir("/tmp")) == before  # the probe leaves no directory behind
