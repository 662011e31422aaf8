"""Control plane of the Graph emulator (JSON under ``/_control/``, never counted in the stats).

Objects (``{kind}`` is ``users``, ``groups`` or ``servicePrincipals``; bodies use Graph property names):

- ``PUT {kind}/{id}``: create, or update the given properties. ``PATCH {kind}/{id}``: update (404 if absent).
  Both take ``"deleted"``: ``false`` (restore), ``true``/``"soft"`` (``@removed`` reason ``changed``),
  ``"permanent"`` (reason ``deleted``).
- ``DELETE {kind}/{id}`` (body ``{"permanent": bool}``, default soft); ``POST {kind}/{id}/restore``.
- ``POST groups/{id}/members`` ``{"id", "type"?, "expires_in"?}``: add a member; ``expires_in`` seconds
  makes it time-bound (PIM for Groups): it is removed when it expires. ``DELETE groups/{id}/members/{member}``.
- ``POST servicePrincipals/{resource}/appRoleAssignedTo`` ``{"principalId", "appRoleId", "principalType"?, "id"?}``:
  give an app role of ``resource`` (its ``appRoles`` must define it) to a user, group or service principal;
  ``DELETE servicePrincipals/{resource}/appRoleAssignedTo/{assignment id}``.
- ``POST settings`` ``{"page_size"?, "members_page_size"?, "token_lifetime"?, "filter_limit"?}``.
- ``PUT apps/{client_id}`` ``{"secret"?, "roles"?}`` / ``DELETE apps/{client_id}``: once any app is
  registered, only registered apps get tokens (exact secret; ``roles`` become the token's ``roles``).
- ``POST expire-delta-tokens``: every deltaLink/nextLink is now ``syncStateNotFound``.
- ``GET state``: the whole directory. Shared: ``reset``, ``fail``, ``stats``, ``requests``, ``health``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dev.emulator_kit.web import ControlError, Request, body_object

from .directory import KINDS, Directory, Entry, NotFound

if TYPE_CHECKING:
    from .app import GraphApp

_KIND = "(users|groups|servicePrincipals)"


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {"id": entry.id, **entry.props, "deleted": entry.deleted}


def register(app: GraphApp) -> None:
    def directory() -> Directory:
        return app.state.directory

    def kind(segment: str) -> str:
        for known in KINDS:
            if known.lower() == segment.lower():
                return known
        raise ControlError(404, f"unknown collection {segment}")

    def apply_deleted(k: str, object_id: str, value: Any) -> None:
        if value in (None, False):
            directory().restore(k, object_id)
        elif value in (True, "soft", "changed"):
            directory().delete(k, object_id, permanent=False)
        elif value in ("permanent", "deleted"):
            directory().delete(k, object_id, permanent=True)
        else:
            raise ControlError(400, f"deleted must be false, true, 'soft' or 'permanent', not {value!r}")

    def upsert(req: Request, groups: list[str], *, create: bool) -> dict[str, Any]:
        k, object_id = kind(groups[0]), groups[1]
        body = body_object(req)
        deleted = body.pop("deleted", None) if "deleted" in body else ...
        try:
            entry = (directory().put if create else directory().patch)(k, object_id, body)
            if deleted is not ...:
                apply_deleted(k, object_id, deleted)
        except NotFound:
            raise ControlError(404, f"{k}/{object_id} does not exist") from None
        return _entry_json(entry)

    def delete(req: Request, groups: list[str]) -> dict[str, Any]:
        k, object_id = kind(groups[0]), groups[1]
        permanent = bool(body_object(req).get("permanent", False))
        try:
            return _entry_json(directory().delete(k, object_id, permanent=permanent))
        except NotFound:
            raise ControlError(404, f"{k}/{object_id} does not exist") from None

    def restore(req: Request, groups: list[str]) -> dict[str, Any]:
        k, object_id = kind(groups[0]), groups[1]
        try:
            return _entry_json(directory().restore(k, object_id))
        except NotFound:
            raise ControlError(404, f"{k}/{object_id} does not exist") from None

    def add_member(req: Request, groups: list[str]) -> dict[str, Any]:
        body = body_object(req)
        member_kind = kind(str(body["type"])) if body.get("type") else None
        expires_in = body.get("expires_in")
        try:
            membership = directory().add_member(
                groups[0], str(body["id"]), expires_in=None if expires_in is None else float(expires_in),
                member_kind=member_kind,
            )  # fmt: skip
        except NotFound:
            raise ControlError(404, f"groups/{groups[0]} does not exist") from None
        return {
            "group": groups[0],
            "id": body["id"],
            "type": membership.member_kind,
            "expires_at": membership.expires_at,
        }

    def remove_member(req: Request, groups: list[str]) -> None:
        try:
            directory().remove_member(groups[0], groups[1])
        except NotFound:
            raise ControlError(404, f"{groups[1]} is not a member of {groups[0]}") from None

    def assign(req: Request, groups: list[str]) -> dict[str, Any]:
        body = body_object(req)
        principal_kind = kind(str(body["principalType"])) if body.get("principalType") else None
        try:
            found = directory().assign(
                groups[0], str(body["principalId"]), str(body["appRoleId"]), principal_kind=principal_kind,
                assignment_id=str(body["id"]) if body.get("id") else None,
            )  # fmt: skip
        except NotFound as exc:
            raise ControlError(404, f"{exc.args[0]} does not exist") from None
        return vars(found).copy()

    def unassign(req: Request, groups: list[str]) -> None:
        try:
            directory().unassign(groups[0], groups[1])
        except NotFound:
            raise ControlError(404, f"no assignment {groups[1]} on servicePrincipals/{groups[0]}") from None

    def settings(req: Request, groups: list[str]) -> dict[str, Any]:
        body, current = body_object(req), app.state.settings
        for name in ("page_size", "members_page_size", "token_lifetime", "filter_limit"):
            if body.get(name) is not None:
                value = int(body[name])
                if value < 1:
                    raise ControlError(400, f"{name} must be >= 1")
                setattr(current, name, value)
        return vars(current).copy()

    def put_app(req: Request, groups: list[str]) -> dict[str, Any]:
        from .app import DEFAULT_ROLES, App

        body = body_object(req)
        roles = body.get("roles")
        app.state.apps[groups[0]] = App(body.get("secret"), list(DEFAULT_ROLES if roles is None else roles))
        return {"client_id": groups[0], "roles": app.state.apps[groups[0]].roles}

    def delete_app(req: Request, groups: list[str]) -> None:
        app.state.apps.pop(groups[0], None)

    app.route("PUT", rf"{_KIND}/([^/]+)", lambda req, g: upsert(req, g, create=True))
    app.route("PATCH", rf"{_KIND}/([^/]+)", lambda req, g: upsert(req, g, create=False))
    app.route("DELETE", rf"{_KIND}/([^/]+)", delete)
    app.route("POST", rf"{_KIND}/([^/]+)/restore", restore)
    app.route("POST", r"groups/([^/]+)/members", add_member)
    app.route("DELETE", r"groups/([^/]+)/members/([^/]+)", remove_member)
    app.route("POST", r"servicePrincipals/([^/]+)/appRoleAssignedTo", assign)
    app.route("DELETE", r"servicePrincipals/([^/]+)/appRoleAssignedTo/([^/]+)", unassign)
    app.route("POST", r"settings", settings)
    app.route("PUT", r"apps/([^/]+)", put_app)
    app.route("DELETE", r"apps/([^/]+)", delete_app)
    app.route("POST", r"expire-delta-tokens", lambda req, g: app.state.tokens.expire())
    app.route("GET", r"state", lambda req, g: directory().snapshot())
