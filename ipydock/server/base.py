"""What every route's handler shares: the session, the JSON body, and the one place where an
ipydock error becomes an HTTP answer (:func:`~ipydock.server.session.http_status` and
``{"message": one line, "error": class name}``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler

from ipydock.api import Backend
from ipydock.errors import IPyDockError, UsageError
from ipydock.models import to_record
from ipydock.server.session import IPyDockServer, http_status

__all__ = ["Base", "flag"]


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return to_record(value)
    return value


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class Base(APIHandler):
    """A route of ``/ipydock/api``: its method parses the request, :meth:`answer` does the rest."""

    @property
    def session(self) -> IPyDockServer:
        return self.settings["ipydock"]  # type: ignore[no-any-return]

    def body(self) -> dict[str, Any]:
        """The JSON object sent (``{}`` for none); safe to call from the pool's threads."""
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise UsageError(f"the request body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError("the request body must be a JSON object")
        return data

    async def answer(self, fn: Callable[[Backend], Any]) -> None:
        """Run ``fn(backend)`` in the pool; its model as JSON, or the error as status + line."""
        try:
            result = await self.session.run(fn)
        except IPyDockError as exc:
            self.fail(exc)
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(_json(result)))

    def fail(self, exc: IPyDockError) -> None:
        self.set_status(http_status(exc))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": str(exc), "error": type(exc).__name__}))
