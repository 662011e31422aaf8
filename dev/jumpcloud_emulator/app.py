"""Routes of the JumpCloud emulator: v1 ``/api/systemusers`` and v2 ``/api/v2/usergroups`` (+ members).

As JumpCloud's public API: ``x-api-key`` authentication (401 otherwise), ``limit`` (default 10,
at most 100) / ``skip`` paging; v1 lists are ``{"totalCount", "results"}``, v2 lists are JSON arrays
with an ``x-total-count`` header. v1 ``fields`` (space- or comma-separated) narrows a user to those
fields plus ``_id``; ``filter=field:$eq:value`` (or ``$ne``, repeatable: AND) and ``sort=[-]field`` work.
A deleted user disappears from every list and from its groups; a suspended one stays a member.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from dev.emulator_kit.web import EmulatorApp, Request, Response

from . import control

DEFAULT_API_KEY = "jc-emulator-api-key"
MAX_LIMIT = 100
USER_FIELDS = (
    "_id", "id", "username", "email", "firstname", "lastname", "displayname", "suspended", "account_locked",
    "activated", "state", "created", "employeeIdentifier", "department", "jobTitle", "mfa", "totp_enabled",
    "password_expired", "externally_managed", "attributes",
)  # fmt: skip
STATES = ("ACTIVATED", "STAGED", "SUSPENDED")
USERS_PATH = re.compile(r"^/api/systemusers/?$")
USER_PATH = re.compile(r"^/api/systemusers/(?P<id>[^/]+)/?$")
GROUPS_PATH = re.compile(r"^/api/v2/usergroups/?$")
GROUP_PATH = re.compile(r"^/api/v2/usergroups/(?P<id>[^/]+)/?$")
MEMBERS_PATH = re.compile(r"^/api/v2/usergroups/(?P<id>[^/]+)/members/?$")
MEMBER_OF_PATH = re.compile(r"^/api/v2/users/(?P<id>[^/]+)/memberof/?$")


def new_id() -> str:
    """A JumpCloud-like object id (24 hex digits, as MongoDB ObjectIds)."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


@dataclass
class JumpCloudState:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, dict[str, None]] = field(default_factory=dict)  # group -> ordered set of user ids


class Problem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class JumpCloudApp(EmulatorApp):
    name = "JumpCloudEmulator"
    default_fault_path = r"^/api/"

    def __init__(self, api_keys: list[str] | None = None) -> None:
        super().__init__()
        self.initial_keys = list(api_keys or [DEFAULT_API_KEY])
        self.api_keys: set[str] = set(self.initial_keys)
        self.state = JumpCloudState()
        control.register(self)

    def reset_state(self) -> None:
        self.state = JumpCloudState()
        self.api_keys = set(self.initial_keys)

    def fault_response(self, status: int, retry_after: int) -> Response:
        message = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Internal Server Error")
        return Response(status, {"message": message})

    # -- users and groups (also used by the control plane) ---------------------------------

    def put_user(self, user_id: str, fields: dict[str, Any], *, create: bool) -> dict[str, Any]:
        unknown = set(fields) - set(USER_FIELDS)
        if unknown:
            raise ValueError(f"unknown user fields {sorted(unknown)}; known: {USER_FIELDS}")
        user = self.state.users.get(user_id)
        if user is None:
            if not create:
                raise KeyError(user_id)
            n = len(self.state.users) + 1
            username = str(fields.get("username") or f"user{n}")
            user = {
                "_id": user_id, "id": user_id, "username": username, "email": f"{username}@example.test",
                "firstname": "", "lastname": "", "displayname": "", "activated": True, "suspended": False,
                "account_locked": False, "state": "ACTIVATED", "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                time.gmtime()), "totp_enabled": False, "password_expired": False, "externally_managed": False,
                "attributes": [],
            }  # fmt: skip
            self.state.users[user_id] = user
        fields = {k: v for k, v in fields.items() if k not in ("_id", "id")}
        user.update(fields)
        # JumpCloud keeps suspended and state in step: state SUSPENDED <=> suspended.
        if "state" in fields:
            if fields["state"] not in STATES:
                raise ValueError(f"state must be one of {STATES}")
            user["suspended"] = fields["state"] == "SUSPENDED"
        elif "suspended" in fields or "activated" in fields:
            user["state"] = "SUSPENDED" if user["suspended"] else ("ACTIVATED" if user["activated"] else "STAGED")
        return dict(user)

    def delete_user(self, user_id: str) -> None:
        del self.state.users[user_id]
        for members in self.state.members.values():
            members.pop(user_id, None)

    def put_group(self, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        group = self.state.groups.setdefault(
            group_id,
            {"id": group_id, "name": f"group-{group_id[-6:]}", "type": "user_group", "attributes": {},
             "description": "", "email": "", "membershipMethod": "STATIC"},
        )  # fmt: skip
        group.update({k: v for k, v in fields.items() if k not in ("id", "type")})
        self.state.members.setdefault(group_id, {})
        return dict(group)

    # -- API -------------------------------------------------------------------------------

    def serve(self, req: Request) -> tuple[Response, str, dict[str, Any]]:
        route = self._route(req.path)
        extra = {"org_id": req.headers.get("x-org-id", "")}
        if not route:
            return Response(404, {"message": "Not Found"}), "", extra
        if req.headers.get("x-api-key", "") not in self.api_keys:
            return Response(401, {"message": "Unauthorized"}), route, extra
        if req.method != "GET":
            return Response(405, {"message": "Method Not Allowed (the emulator serves GET only)"}), route, extra
        try:
            return self._answer(req, route), route, extra
        except Problem as exc:
            return Response(exc.status, {"message": exc.message}), route, extra

    @staticmethod
    def _route(path: str) -> str:
        for pattern, template in (
            (USERS_PATH, "/api/systemusers"), (USER_PATH, "/api/systemusers/{id}"),
            (GROUPS_PATH, "/api/v2/usergroups"), (MEMBERS_PATH, "/api/v2/usergroups/{id}/members"),
            (GROUP_PATH, "/api/v2/usergroups/{id}"), (MEMBER_OF_PATH, "/api/v2/users/{id}/memberof"),
        ):  # fmt: skip
            if pattern.match(path):
                return template
        return ""

    def _answer(self, req: Request, route: str) -> Response:
        state = self.state
        object_id = m.group("id") if (m := re.match(r"^/api/(?:v2/)?\w+/(?P<id>[^/]+)", req.path)) else ""
        if route == "/api/systemusers":
            users = self._filtered(req, list(state.users.values()))
            limit, skip = _paging(req)
            fields = _fields(req.param("fields"))
            return Response(
                200, {"totalCount": len(users), "results": [_pick(u, fields) for u in users[skip : skip + limit]]}
            )
        if route == "/api/systemusers/{id}":
            user = state.users.get(object_id)
            if user is None:
                raise Problem(404, "Not Found")
            return Response(200, _pick(user, _fields(req.param("fields"))))
        if route == "/api/v2/usergroups":
            return _array(req, [dict(g) for g in state.groups.values()])
        group = state.groups.get(object_id)
        if route == "/api/v2/users/{id}/memberof":
            if object_id not in state.users:
                raise Problem(404, "Not Found")
            refs = [
                {"id": gid, "type": "user_group", "compiledAttributes": {},
                 "paths": [[{"attributes": {}, "to": {"attributes": {}, "id": gid, "type": "user_group"}}]]}
                for gid, members in state.members.items() if object_id in members and gid in state.groups
            ]  # fmt: skip
            return _array(req, refs)
        if group is None:
            raise Problem(404, "Not Found")
        if route == "/api/v2/usergroups/{id}":
            return Response(200, dict(group))
        members = [
            {"attributes": {}, "to": {"attributes": {}, "id": uid, "type": "user"}}
            for uid in state.members.get(object_id, {})
        ]
        return _array(req, members)

    @staticmethod
    def _filtered(req: Request, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for key, values in req.query.items():
            if not key.startswith("filter"):
                continue
            for expression in values:
                parts = expression.split(":", 2)
                if len(parts) != 3 or parts[1] not in ("$eq", "$ne"):
                    raise Problem(400, f"unsupported filter {expression!r} (the emulator knows field:$eq|$ne:value)")
                name, op, value = parts
                users = [u for u in users if (_text(u.get(name)) == value) == (op == "$eq")]
        sort = req.param("sort")
        for name in reversed(re.split(r"[ ,]+", sort.strip())) if sort else []:
            key = name.lstrip("-")
            users.sort(key=lambda u: _text(u.get(key)), reverse=name.startswith("-"))
        return users


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _paging(req: Request) -> tuple[int, int]:
    try:
        limit, skip = int(req.param("limit") or 10), int(req.param("skip") or 0)
    except ValueError:
        raise Problem(400, "limit and skip must be integers") from None
    if not 0 <= limit <= MAX_LIMIT or skip < 0:
        raise Problem(400, f"limit must be between 0 and {MAX_LIMIT}, skip >= 0")
    return limit or 10, skip


def _fields(raw: str | None) -> list[str] | None:
    return [f for f in re.split(r"[ ,]+", raw.strip()) if f] if raw and raw.strip() else None


def _pick(user: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return dict(user)
    return {k: user[k] for k in ["_id", *fields] if k in user}


def _array(req: Request, items: list[dict[str, Any]]) -> Response:
    limit, skip = _paging(req)
    return Response(200, items[skip : skip + limit], {"x-total-count": str(len(items))})
