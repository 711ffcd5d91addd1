"""docker's event stream for the bundled engine: what changed, as docker's events.

::

    this service's handlers --note()--------------------.
    (create, start, the run's exit, rm)                  +--> known state per container --> the
    store changes (inotify, any front door) --snapshot--'     transitions as docker events
                                                              (create/start/die/destroy; image
                                                              tag/untag/delete; volume and
                                                              network create/destroy)

A container the service runs is told by its handlers, as it happens (a ``--rm`` container
lives and dies between two looks at the store); one made by ``%container`` or the CLI is seen
in the store. Both go through one table of known states, so nothing is told twice. Past
events are not kept: a stream starts at its request. Nothing is watched until a client asks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["Events"]

#: The events a container's move from one state to another tells (None: not known yet).
_MOVES: dict[tuple[str | None, str], tuple[str, ...]] = {
    (None, "created"): ("create",),
    (None, "running"): ("create", "start"),
    (None, "exited"): ("create", "start", "die"),
    ("created", "running"): ("start",),
    ("created", "exited"): ("start", "die"),
    ("running", "exited"): ("die",),
    ("exited", "running"): ("start",),
    ("created", "removed"): ("destroy",),
    ("running", "removed"): ("die", "destroy"),
    ("exited", "removed"): ("destroy",),
}


def _event(kind: str, action: str, actor: str, attrs: dict[str, str]) -> dict[str, Any]:
    now = time.time_ns()
    event: dict[str, Any] = {"Type": kind, "Action": action,
                             "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local",
                             "time": now // 1_000_000_000, "timeNano": now}  # fmt: skip
    if kind == "container":
        event.update(status=action, id=actor, **{"from": attrs.get("image", "")})
    return event


class Events:
    """The service's event hub (see the module docstring)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.watch: Any = None
        self.snapshot: dict[str, Any] | None = None
        # container id -> (status, attributes, monotonic time of the last note)
        self.known: dict[str, tuple[str, dict[str, str], float]] = {}
        self._busy = False
        self._again = False

    @property
    def active(self) -> bool:
        return self.watch is not None

    def note(self, cid: str, status: str, attrs: dict[str, str] | None = None,
             exit_code: int = 0) -> None:  # fmt: skip
        """A container is now ``status`` (created, running, exited, removed): tell the moves."""
        if not self.active:
            return
        self._move(cid, status, attrs, exit_code, time.monotonic())

    def _move(self, cid: str, status: str, attrs: dict[str, str] | None, exit_code: int,
              when: float) -> None:  # fmt: skip
        before, known_attrs, _ = self.known.get(cid, (None, {}, 0.0))
        attrs = attrs or known_attrs
        if status == "removed":
            self.known.pop(cid, None)
            if before is None:
                return
        else:
            self.known[cid] = (status, attrs, when)
        for action in _MOVES.get((before, status), ()):
            extra = {"exitCode": str(exit_code)} if action == "die" else {}
            self._tell(_event("container", action, cid, {**attrs, **extra}))

    def _tell(self, event: dict[str, Any]) -> None:
        for q in self.listeners:
            q.put_nowait(event)

    # -- the store -----------------------------------------------------------------------------

    def _take(self) -> dict[str, Any]:
        b = self.backend
        images: dict[str, set[str]] = {}
        for r in b.images(all=True):
            images.setdefault(r.id, set())
            if r.tag != "<none>":
                images[r.id].add(f"{r.repository}:{r.tag}")
        return {
            "container": {c.id: c for c in b.containers(all=True)},
            "image": images,
            "volume": {v.name: v for v in b.volumes()},
            "network": {n.id: n for n in b.networks()},
        }

    async def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        if self.watch is None:
            from ipydock.server.watch import StoreWatch

            taken = time.monotonic()
            self.snapshot = await asyncio.get_running_loop().run_in_executor(None, self._take)
            for cid, c in self.snapshot["container"].items():
                self.known.setdefault(cid, (_status(c), _attrs(c), taken))
            self.watch = StoreWatch(self.backend.store.root, self._changed)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(queue)

    def _changed(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        asyncio.ensure_future(self._compare())

    async def _compare(self) -> None:
        try:
            while True:
                self._again = False
                taken = time.monotonic()
                new = await asyncio.get_running_loop().run_in_executor(None, self._take)
                old, self.snapshot = self.snapshot or new, new
                self._containers(new["container"], taken)
                self._others(old, new)
                if not self._again:
                    return
        finally:
            self._busy = False

    def _containers(self, seen: dict[str, Any], taken: float) -> None:
        """The store's containers against the known states; a note newer than the look wins."""
        for cid, c in seen.items():
            if self.known.get(cid, (None, {}, 0.0))[2] <= taken:
                self._move(cid, _status(c), _attrs(c), c.exit_code, taken)
        for cid, (_s, _a, when) in list(self.known.items()):
            if cid not in seen and when <= taken:
                self._move(cid, "removed", None, 0, taken)

    def _others(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for iid, tags in new["image"].items():
            for tag in sorted(tags - old["image"].get(iid, set())):
                self._tell(_event("image", "tag", iid, {"name": tag}))
        for iid, tags in old["image"].items():
            for tag in sorted(tags - new["image"].get(iid, set())):
                self._tell(_event("image", "untag", iid, {"name": tag}))
            if iid not in new["image"]:
                self._tell(_event("image", "delete", iid, {"name": iid}))
        for kind in ("volume", "network"):
            for key in sorted(new[kind].keys() - old[kind].keys()):
                self._tell(_event(kind, "create", key, _other_attrs(kind, new[kind][key])))
            for key in sorted(old[kind].keys() - new[kind].keys()):
                self._tell(_event(kind, "destroy", key, _other_attrs(kind, old[kind][key])))

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None


def _status(c: Any) -> str:
    return {"restarting": "running", "paused": "running", "dead": "exited"}.get(c.status, c.status)


def _attrs(c: Any) -> dict[str, str]:
    return {"image": c.image, "name": c.name, **c.labels}


def container_attrs(detail: Any) -> dict[str, str]:
    """The attributes of a container's events, from its inspect detail."""
    cfg = detail.config
    return {"image": cfg.get("Image", ""), "name": detail.name.lstrip("/"),
            **(cfg.get("Labels") or {})}  # fmt: skip


def _other_attrs(kind: str, item: Any) -> dict[str, str]:
    if kind == "volume":
        return {"driver": item.driver}
    return {"name": item.name, "type": item.driver}
