"""``Microsoft.Authorization`` reads: permissions, role assignments, role definitions, deny assignments.

Scopes compare case-insensitively. ``set_permissions`` entries apply to their scope and everything
below it (the closest configured scope wins); unconfigured scopes get a Contributor-like default.
Role assignments default to *the caller* holding Contributor at the subscription of the request
(until ``set_role_assignments`` is called). Group membership is not modelled: ``assignedTo('x')`` and
``principalId eq 'x'`` both match assignments whose principalId is ``x``.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from . import resource_groups
from .state import DEFAULT_PERMISSIONS, State
from .web import Request, Response, arm_error

_AUTHZ = re.compile(r"^(?P<scope>.*)/providers/microsoft\.authorization/(?P<rest>.+)$", re.I)
_RG_PREFIX = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)(?:/|$)", re.I)
_SUB = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.I)
_NS = uuid.UUID("0b9f5d3a-7f40-4d57-9a7e-3a5f3c1b2e10")
EVERYONE = "00000000-0000-0000-0000-000000000000"

_CONTRIBUTOR_NOT_ACTIONS = [
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
    "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
    "Microsoft.Subscription/cancel/action",
    "Microsoft.Subscription/enable/action",
]
# (guid, roleName, actions, notActions, description)
_BUILT_IN: list[tuple[str, str, list[str], list[str], str]] = [
    (
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        ["*"],
        [],
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
    ),
    (
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        ["*"],
        _CONTRIBUTOR_NOT_ACTIONS,
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
    ),
    (
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        ["*/read"],
        [],
        "View all resources, but does not allow you to make any changes.",
    ),
    (
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        [],
        "Lets you manage user access to Azure resources.",
    ),
    (
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Role Based Access Control Administrator",
        [
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
        [],
        "Manage access to Azure resources by assigning roles using Azure RBAC.",
    ),
    (
        "17d1049b-9a84-46fb-8f53-869881c3d3ab",
        "Storage Account Contributor",
        [
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Insights/diagnosticSettings/*",
            "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Storage/storageAccounts/*",
            "Microsoft.Support/*",
        ],
        [],
        "Permits management of storage accounts.",
    ),
]
BUILT_IN_ROLES: dict[str, dict[str, Any]] = {
    guid: {
        "name": guid,
        "properties": {
            "roleName": name,
            "type": "BuiltInRole",
            "description": desc,
            "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": not_actions, "dataActions": [], "notDataActions": []}],
        },
    }
    for guid, name, actions, not_actions, desc in _BUILT_IN
}
ROLE_IDS_BY_NAME = {d["properties"]["roleName"].lower(): guid for guid, d in BUILT_IN_ROLES.items()}


# -- scope helpers ---------------------------------------------------------------------------
PATTERNS = (_AUTHZ,)


def norm(scope: str) -> str:
    s = scope.strip().rstrip("/").lower()
    return "/" if s in ("", "*") else s


def at_or_above(candidate: str, scope: str) -> bool:
    """``candidate`` is ``scope`` itself or one of its ancestors."""
    c, s = norm(candidate), norm(scope)
    return c == "/" or s == c or s.startswith(c + "/")


def _subscription_of(scope: str) -> str | None:
    m = _SUB.match(scope)
    return m.group("sub") if m else None


def _role_definition_id(scope: str, guid: str) -> str:
    sub = _subscription_of(scope)
    prefix = f"/subscriptions/{sub}" if sub else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


# -- normalisation of control-plane input ----------------------------------------------------


def normalize_permissions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "actions": list(e.get("actions", [])),
            "notActions": list(e.get("notActions", [])),
            "dataActions": list(e.get("dataActions", [])),
            "notDataActions": list(e.get("notDataActions", [])),
        }
        for e in entries
    ]


def _role_guid(state: State, entry: dict[str, Any]) -> str:
    rd = entry.get("roleDefinitionId")
    if rd:
        return str(rd).rstrip("/").split("/")[-1]
    role_name = str(entry.get("roleName", "")).lower()
    if role_name in ROLE_IDS_BY_NAME:
        return ROLE_IDS_BY_NAME[role_name]
    for guid, d in state.custom_role_definitions.items():
        if d["properties"]["roleName"].lower() == role_name:
            return guid
    raise ValueError(f"unknown role {entry.get('roleName')!r}; give roleDefinitionId or a known roleName")


def normalize_role_assignment(state: State, entry: dict[str, Any]) -> dict[str, Any]:
    """Accept the ARM shape (with ``properties``) or a flat ``{scope, principalId, roleName|roleDefinitionId}``."""
    if "properties" in entry:
        props = dict(entry["properties"])
        flat = {**props, "name": entry.get("name")}
    else:
        flat = dict(entry)
    scope = str(flat.get("scope") or "/")
    principal = str(flat.get("principalId") or "")
    if not principal:
        raise ValueError("a role assignment needs principalId")
    rd = flat.get("roleDefinitionId")
    rd_id = str(rd) if rd and "/" in str(rd) else _role_definition_id(scope, _role_guid(state, flat))
    name = str(flat.get("name") or uuid.uuid5(_NS, f"{norm(scope)}|{principal}|{rd_id.lower()}"))
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": rd_id,
            "principalId": principal,
            "principalType": flat.get("principalType", "ServicePrincipal"),
            "scope": scope,
            "condition": flat.get("condition"),
            "conditionVersion": flat.get("conditionVersion"),
            "description": flat.get("description"),
            "createdOn": "2026-01-01T00:00:00.0000000Z",
            "updatedOn": "2026-01-01T00:00:00.0000000Z",
            "createdBy": None,
            "updatedBy": None,
            "delegatedManagedIdentityResourceId": None,
        },
    }


def normalize_deny_assignment(entry: dict[str, Any]) -> dict[str, Any]:
    """Accept the ARM shape or a flat ``{scope, actions, notActions, principals, excludePrincipals, ...}``."""
    if "properties" in entry:
        props = dict(entry["properties"])
        name = entry.get("name")
    else:
        props = dict(entry)
        name = props.pop("name", None)
    scope = str(props.get("scope") or "/")
    if "permissions" not in props:
        props["permissions"] = normalize_permissions([props])
    for key in ("actions", "notActions", "dataActions", "notDataActions"):
        props.pop(key, None)
    name = str(name or uuid.uuid5(_NS, f"deny|{norm(scope)}|{props.get('denyAssignmentName', '')}"))
    props.setdefault("denyAssignmentName", f"deny-{name[:8]}")
    props.setdefault("description", None)
    props.setdefault("doNotApplyToChildScopes", False)
    props.setdefault("principals", [{"id": EVERYONE, "type": "SystemDefined"}])
    props.setdefault("excludePrincipals", [])
    props.setdefault("isSystemProtected", True)
    props["scope"] = scope
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/denyAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/denyAssignments",
        "properties": props,
    }


def normalize_role_definition(entry: dict[str, Any]) -> dict[str, Any]:
    props = dict(entry.get("properties") or entry)
    props.pop("name", None)
    if not props.get("roleName"):
        raise ValueError("a role definition needs roleName")
    if "permissions" not in props:
        props["permissions"] = normalize_permissions([props])
    for key in ("actions", "notActions", "dataActions", "notDataActions"):
        props.pop(key, None)
    props.setdefault("type", "CustomRole")
    props.setdefault("description", None)
    props.setdefault("assignableScopes", ["/"])
    guid = str(entry.get("name") or uuid.uuid5(_NS, "role|" + props["roleName"].lower()))
    return {"name": guid, "properties": props}


# -- handlers --------------------------------------------------------------------------------


def route(state: State, req: Request, path: str) -> Response | None:
    m = _AUTHZ.match(path)
    if m is None:
        return None
    scope, rest = m.group("scope"), m.group("rest")
    if rg := _RG_PREFIX.match(scope):
        resource_groups.require(state, rg.group("sub"), rg.group("rg"))
    kind, _, item = rest.partition("/")
    kind = kind.lower()
    if req.method != "GET":
        return None
    flt = req.param("$filter") or ""
    if kind == "permissions" and not item:
        return Response(200, {"value": permissions_for(state, scope), "nextLink": None})
    if kind == "roleassignments":
        values = _filter(role_assignments_for(state, req, scope), scope, flt, _ra_principals)
        return _item_or_list(values, item, "RoleAssignmentNotFound", "role assignment")
    if kind == "denyassignments":
        values = _filter(state.deny_assignments, scope, flt, _deny_principals)
        return _item_or_list(values, item, "DenyAssignmentNotFound", "deny assignment")
    if kind == "roledefinitions":
        return role_definitions(state, scope, item, flt)
    return None


def permissions_for(state: State, scope: str) -> list[dict[str, Any]]:
    matches = [s for s in state.permissions if at_or_above(s, scope)]
    if not matches:
        return copy.deepcopy(DEFAULT_PERMISSIONS)
    closest = max(matches, key=len)
    return copy.deepcopy(state.permissions[closest])


def role_assignments_for(state: State, req: Request, scope: str) -> list[dict[str, Any]]:
    if state.role_assignments is not None:
        return state.role_assignments
    oid = (req.identity or {}).get("oid")
    sub = _subscription_of(scope)
    if not oid or not sub:
        return []
    return [
        normalize_role_assignment(
            state, {"scope": f"/subscriptions/{sub}", "principalId": str(oid), "roleName": "Contributor"}
        )
    ]


def _ra_principals(entry: dict[str, Any]) -> set[str]:
    return {str(entry["properties"].get("principalId", "")).lower()}


def _deny_principals(entry: dict[str, Any]) -> set[str]:
    return {str(p.get("id", "")).lower() for p in entry["properties"].get("principals", [])}


def _filter(entries: list[dict[str, Any]], scope: str, flt: str, principals: Any) -> list[dict[str, Any]]:
    at_scope = bool(re.search(r"atScope\(\s*\)", flt, re.I))
    m = re.search(r"assignedTo\(\s*'([^']*)'\s*\)", flt, re.I) or re.search(r"principalId\s+eq\s+'([^']*)'", flt, re.I)
    principal = m.group(1).lower() if m else None
    out = []
    for e in entries:
        e_scope = str(e["properties"].get("scope", "/"))
        above = at_or_above(e_scope, scope)
        below = at_or_above(scope, e_scope)
        if at_scope and not above:
            continue
        if not (above or below):
            continue
        if principal is not None:
            ids = principals(e)
            if principal not in ids and EVERYONE not in ids:
                continue
        out.append(e)
    return out


def _item_or_list(values: list[dict[str, Any]], item: str, code: str, what: str) -> Response:
    if not item:
        return Response(200, {"value": values, "nextLink": None})
    for v in values:
        if v["name"].lower() == item.lower():
            return Response(200, v)
    return arm_error(404, code, f"The {what} '{item}' is not found.")


def role_definitions(state: State, scope: str, item: str, flt: str) -> Response:
    every = {**BUILT_IN_ROLES, **state.custom_role_definitions}

    def render(guid: str, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _role_definition_id(scope, guid),
            "name": guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": copy.deepcopy(d["properties"]),
        }

    if item:
        d = every.get(item.lower())
        if d is None:
            return arm_error(
                404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{item}' does not exist."
            )
        return Response(200, render(item.lower(), d))
    values = [render(guid, d) for guid, d in every.items()]
    if m := re.search(r"roleName\s+eq\s+'([^']*)'", flt, re.I):
        values = [v for v in values if v["properties"]["roleName"].lower() == m.group(1).lower()]
    if m := re.search(r"type\s+eq\s+'([^']*)'", flt, re.I):
        values = [v for v in values if v["properties"]["type"].lower() == m.group(1).lower()]
    return Response(200, {"value": values, "nextLink": None})
