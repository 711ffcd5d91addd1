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


def test_runtime_mode_says_which_and_why() -> None:
    from ipydock.engine.runtime.rootless import choose_mode

    assert choose_mode(0, True, None)[0] == "root"
    ok = RootlessReport(
        uid=1000,
        userns=True,
        mount_in_userns=True,
        overlay_in_userns=True,
        max_user_namespaces=10,
        newuidmap=True,
        subuid_ranges=True,
        cgroup_delegated=False,
        missing=("no delegated cgroup v2 subtree: limits would be ignored",),
    )
    mode, why = choose_mode(1000, False, ok)
    assert mode == "rootless" and "uid 1000" in why and "limits would be ignored" in why
    broken = RootlessReport(
        **{
            **ok.__dict__,
            "userns": False,
            "missing": ("unshare(CLONE_NEWUSER) fails for uid 1000: EPERM",),
        }
    )
    mode, why = choose_mode(1000, False, broken)
    assert mode == "none" and "EPERM" in why
    assert choose_mode(0, False, broken)[1].startswith("root without CAP_SYS_ADMIN")
