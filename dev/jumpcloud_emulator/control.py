"""Control plane of the JumpCloud emulator (JSON under ``/_control/``, never counted in the stats).

- ``PUT users/{id}`` (create or update) / ``PATCH users/{id}`` (update, 404 if absent) with JumpCloud
  field names: ``username``, ``email``, ``suspended``, ``account_locked``, ``activated``, ``state``
  (``ACTIVATED``/``STAGED``/``SUSPENDED``; kept in step with ``suspended``), … ``DELETE users/{id}``.
- ``PUT groups/{id}`` ``{"name"}`` / ``DELETE groups/{id}``; ``POST groups/{id}/members`` ``{"id"}`` /
  ``DELETE groups/{id}/members/{user}``.
- ``PUT api-keys/{key}`` / ``DELETE api-keys/{key}``: the keys ``x-api-key`` may carry.
- ``GET state``. Shared: ``reset``, ``fail``, ``stats``, ``requests``, ``health``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dev.emulator_kit.web import ControlError, Request, body_object

if TYPE_CHECKING:
    from .app import JumpCloudApp


def register(app: JumpCloudApp) -> None:
    def put_user(req: Request, g: list[str], *, create: bool) -> dict[str, Any]:
        try:
            return app.put_user(g[0], body_object(req), create=create)
        except KeyError:
            raise ControlError(404, f"user {g[0]} does not exist") from None

    def delete_user(req: Request, g: list[str]) -> None:
        if g[0] not in app.state.users:
            raise ControlError(404, f"user {g[0]} does not exist")
        app.delete_user(g[0])

    def delete_group(req: Request, g: list[str]) -> None:
        if app.state.groups.pop(g[0], None) is None:
            raise ControlError(404, f"group {g[0]} does not exist")
        app.state.members.pop(g[0], None)

    def add_member(req: Request, g: list[str]) -> dict[str, Any]:
        user_id = str(body_object(req)["id"])
        if g[0] not in app.state.groups:
            raise ControlError(404, f"group {g[0]} does not exist")
        if user_id not in app.state.users:
            raise ControlError(404, f"user {user_id} does not exist")
        app.state.members[g[0]][user_id] = None
        return {"group": g[0], "id": user_id}

    def remove_member(req: Request, g: list[str]) -> None:
        if app.state.members.get(g[0], {}).pop(g[1], ...) is ...:
            raise ControlError(404, f"{g[1]} is not a member of {g[0]}")

    def state(req: Request, g: list[str]) -> dict[str, Any]:
        return {
            "users": app.state.users,
            "groups": app.state.groups,
            "members": {gid: list(m) for gid, m in app.state.members.items()},
            "api_keys": len(app.api_keys),
        }

    app.route("PUT", r"users/([^/]+)", lambda req, g: put_user(req, g, create=True))
    app.route("PATCH", r"users/([^/]+)", lambda req, g: put_user(req, g, create=False))
    app.route("DELETE", r"users/([^/]+)", delete_user)
    app.route("PUT", r"groups/([^/]+)", lambda req, g: app.put_group(g[0], body_object(req)))
    app.route("DELETE", r"groups/([^/]+)", delete_group)
    app.route("POST", r"groups/([^/]+)/members", add_member)
    app.route("DELETE", r"groups/([^/]+)/members/([^/]+)", remove_member)
    app.route("PUT", r"api-keys/([^/]+)", lambda req, g: app.api_keys.add(g[0]))
    app.route("DELETE", r"api-keys/([^/]+)", lambda req, g: app.api_keys.discard(g[0]))
    app.route("GET", r"state", state)
