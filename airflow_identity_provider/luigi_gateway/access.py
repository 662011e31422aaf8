"""May this caller make this call? The route's level against the caller's roles, and the call's arguments. Pure.

The worker-ownership half (``worker_identity``) needs the gateway's bindings and runs after this one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.luigi_gateway.methods import (
    API_HTTP_METHODS,
    PAGE_HTTP_METHODS,
    Level,
    Route,
    RouteKind,
    Rule,
)

MAX_DATA_BYTES = 1_000_000  # luigi's largest calls (add_task with many deps) are a few KB


@dataclass(frozen=True)
class Allowed:
    rule: Rule


@dataclass(frozen=True)
class Denied:
    status: int
    reason: str
    message: str
    needed: Level | None = None  # the level (role) the call needs, when that is the problem


def authorize(route: Route, http_method: str, roles: tuple[str, ...], level: Level | None) -> Allowed | Denied:
    """``level``: what ``roles`` give (``methods.level_of``), passed in so messages can name the roles."""
    if route.kind is RouteKind.UNKNOWN:
        return Denied(404, "unknown_route", "This is not a route of luigid that the gateway serves.")
    allowed_methods = API_HTTP_METHODS if route.kind is RouteKind.API else PAGE_HTTP_METHODS
    if http_method not in allowed_methods:
        return Denied(405, "method_not_allowed", f"{http_method} is not used on {route.label}.")
    if route.rule is None:
        return Denied(
            403,
            "unknown_method",
            f"The gateway does not know the luigid method {route.method!r}, so it refuses it (methods are allowed "
            "one by one; a luigi upgrade's new method stays closed until the gateway classifies it).",
        )
    rule = route.rule
    if level is None or level < rule.level:
        held = ", ".join(roles) or "no role"
        return Denied(
            403,
            "not_permitted",
            f"{_what(route)} needs the role {rule.level.role_name} (or higher); you hold {held}.",
            rule.level,
        )
    return Allowed(rule)


def _what(route: Route) -> str:
    return f"The luigid method {route.method!r}" if route.kind is RouteKind.API else "The luigi visualiser"


@dataclass(frozen=True)
class CallData:
    arguments: dict[str, Any]

    @property
    def canonical(self) -> str:
        """The one ``data`` value luigid receives: the JSON the gateway checked, re-serialized."""
        return json.dumps(self.arguments, separators=(",", ":"))


def call_data(values: list[str]) -> CallData | Denied:
    """The ``data`` argument of an API call from every place tornado reads it (query and form body).

    luigid takes the last of several ``data`` values; the gateway refuses more than one and forwards only the
    JSON it checked, so what it authorizes is what luigid executes.
    """
    if len(values) > 1:
        return Denied(400, "ambiguous_data", "The call carries the 'data' argument more than once.")
    text = values[0] if values else "{}"
    if len(text.encode()) > MAX_DATA_BYTES:
        return Denied(413, "data_too_large", f"The call's data exceeds {MAX_DATA_BYTES} bytes.")
    try:
        arguments = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deep enough to exhaust the parser's stack
        return Denied(400, "malformed_data", "The call's 'data' argument is not JSON.")
    if not isinstance(arguments, dict):
        return Denied(400, "malformed_data", "The call's 'data' argument must be a JSON object of arguments.")
    return CallData(arguments)


_TASK_ID = re.compile(r"(?P<family>[A-Za-z_][A-Za-z0-9_.]*?)_.*_(?P<hash>[0-9a-f]{10})")


def audit_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What an audit event records of a call: the task and worker it names, and the new status if any.

    luigi's task ids are ``<Family>_<params>_<md5[:10]>``; family and hash are recorded apart too, because a
    long id can look random enough for the audit writer to mask it as a secret.
    """
    fields = {key: arguments.get(key) for key in ("task_id", "worker", "status")}
    found = {key: value if isinstance(value, str) else None for key, value in fields.items()}
    match = _TASK_ID.fullmatch(found["task_id"] or "")
    if match:
        found.update(task_family=match["family"], task_hash=match["hash"])
    return found
