"""The numbers the reliability suites report, summed over a run and printed at its end
("reliability: crash points: N, fuzz cases: N, leaked objects: 0")."""

from __future__ import annotations

COUNTS: dict[str, int] = {}


def record(kind: str, n: int) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def summary() -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in sorted(COUNTS.items()))
