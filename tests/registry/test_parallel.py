"""Bounded parallel transfers: the first failure stops the others and is the one raised."""

from __future__ import annotations

import threading

import pytest

from ipydock.engine.registry.parallel import Aborted, run_all


def test_first_failure_aborts_the_running_jobs_and_cancels_the_queued() -> None:
    abort = threading.Event()
    started: list[str] = []
    failing = threading.Event()

    def slow() -> str:
        started.append("slow")
        failing.wait(10)
        if abort.wait(10):  # a real transfer checks between chunks
            raise Aborted
        return "finished"

    def bad() -> str:
        started.append("bad")
        failing.set()
        raise ValueError("digest mismatch")

    def queued() -> str:
        started.append("queued")
        return "ran"

    with pytest.raises(ValueError, match="digest mismatch"):
        run_all([slow, bad, queued, queued], 2, abort)
    assert abort.is_set()
    assert started[:2] in (["slow", "bad"], ["bad", "slow"])
    assert started.count("queued") <= 1  # what was still queued was cancelled


def test_results_keep_the_order_of_the_jobs() -> None:
    assert run_all([lambda i=i: i * i for i in range(7)], 3, threading.Event()) == [
        0, 1, 4, 9, 16, 25, 36,
    ]  # fmt: skip
    assert run_all([], 3, threading.Event()) == []
