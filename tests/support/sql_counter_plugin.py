"""An Airflow plugin for tests (copied into a test deployment's plugins folder): counts the SQL statements each
HTTP request runs and answers with the count in the ``x-sql-statements`` header.

Only statements executed within the request's context count: the DAG index's background refresh runs in its own
thread, outside any request, and is left out. ``GET /sql-counter/<tag>`` lists the statements of the last request
sent with ``x-sql-tag: <tag>``, for the failure message when counts differ.
"""

from __future__ import annotations

import contextvars
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine

_current: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("sql_counter_statements", default=None)
_by_tag: dict[str, list[str]] = {}


@event.listens_for(Engine, "before_cursor_execute")
def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    statements = _current.get()
    if statements is not None:
        statements.append(" ".join(statement.split()))


class SqlCounterMiddleware:
    """Pure ASGI: the list lives in a context variable, which FastAPI's threadpool and task groups copy."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        statements: list[str] = []
        tag = dict(scope.get("headers") or []).get(b"x-sql-tag", b"").decode()
        token = _current.set(statements)

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-sql-statements", str(len(statements)).encode())]
                message = {**message, "headers": headers}
                if tag:
                    _by_tag[tag] = list(statements)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            _current.reset(token)


statements_app = FastAPI()


@statements_app.get("/{tag}")
def statements_of(tag: str) -> list[str]:
    return _by_tag.get(tag, [])


class SqlCounterPlugin(AirflowPlugin):
    name = "sql_counter"
    fastapi_apps = [{"app": statements_app, "url_prefix": "/sql-counter", "name": "SQL counter"}]
    fastapi_root_middlewares = [{"middleware": SqlCounterMiddleware, "name": "SQL counter"}]
