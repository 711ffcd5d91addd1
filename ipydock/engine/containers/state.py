"""A container's lifecycle: the ``Status`` enum, its allowed moves, and the ``state.json`` record.

::

                 start                      exit, no restart
    created ------------> running ---------------------------> exited --start--> running
       |                   |   ^  \\ exit, policy says restart    ^
       |            pause  v   |   '----> restarting ----'--------'  (start again / give up)
       |                  paused          |
       '-------------------+--------------+------------------------> dead  (record unusable)

Docker's statuses, with one deliberate rule: every move goes through :func:`transition`, which
raises :class:`~ipydock.errors.InvalidStateTransition` for anything not in :data:`ALLOWED`.
A failed start (e.g. exit 127, command not found) leaves a created container ``created`` with
the exit code and error recorded, as Docker does.

:class:`State` is plain data; the supervisor and the commands read and write it under the
container's lock (see :mod:`records`), always replacing ``state.json`` atomically.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from ipydock.errors import InvalidStateTransition

__all__ = ["ALLOWED", "State", "Status", "transition"]


class Status(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"


S = Status
#: status -> the statuses it may move to.
ALLOWED: dict[Status, frozenset[Status]] = {
    S.CREATED: frozenset({S.RUNNING, S.EXITED, S.DEAD}),
    S.RUNNING: frozenset({S.PAUSED, S.RESTARTING, S.EXITED, S.DEAD}),
    S.PAUSED: frozenset({S.RUNNING, S.EXITED, S.DEAD}),
    S.RESTARTING: frozenset({S.RUNNING, S.EXITED, S.DEAD}),
    S.EXITED: frozenset({S.RUNNING, S.RESTARTING, S.DEAD}),
    S.DEAD: frozenset(),
}


@dataclass
class State:
    """What ``state.json`` holds; times are ISO-8601 strings ("" when never)."""

    status: Status = Status.CREATED
    pid: int = 0
    #: The supervisor owning pid 1, and its start time (``/proc/PID/stat`` field 22) so that a
    #: recycled pid is never taken for it.
    supervisor_pid: int = 0
    supervisor_start: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0
    #: Set by stop/kill/rm: the exit that follows is wanted, the restart policy must not act.
    stop_requested: bool = False
    cgroup: list[str] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        """Something owns a process for this container (running, paused or about to restart)."""
        return self.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _FIELDS}  # asdict: a deep copy, slower
        data["status"] = self.status.value
        data["cgroup"] = list(self.cgroup)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        values = {k: v for k, v in data.items() if k in _FIELDS}
        values["status"] = Status(values.get("status", "created"))
        return cls(**values)


#: State's field names, in order.
_FIELDS = tuple(f.name for f in dataclasses.fields(State))


def transition(container_id: str, state: State, to: Status) -> None:
    """Move ``state`` to ``to``, or raise InvalidStateTransition(from_, to)."""
    if to not in ALLOWED[state.status]:
        raise InvalidStateTransition(container_id, state.status.value, to.value)
    state.status = to
