"""The escape suite's tally, one per session (a module of its own: pytest loads a conftest
under a name of its own, so a tally kept there would be another object than the tests')."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tally:
    """Attempts per engine: name -> contained."""

    results: dict[str, dict[str, bool]] = field(default_factory=dict)

    def record(self, engine: str, attempt: str, contained: bool) -> None:
        self.results.setdefault(engine, {})[attempt] = contained


TALLY = Tally()
