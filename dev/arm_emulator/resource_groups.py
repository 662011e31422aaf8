"""Resource groups, the resources in a group (as left by succeeded deployments) and
``Microsoft.Resources/tags`` at any scope."""

from __future__ import annotations

import re
from typing import Any

from . import lro
from .state import Deployment, ResourceGroup, State
from .web import ArmFailure, Request, Response, arm_error

_RG_LIST = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups$", re.I)
_RG = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.I)
_RG_RESOURCES = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/resources$", re.I)
_TAGS = re.compile(r"^(?P<scope>.*)/providers/microsoft\.resources/tags/default$", re.I)
_RG_SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.I)
PATTERNS = (_RG_LIST, _RG, _RG_RESOURCES, _TAGS)


def route(state: State, req: Request, path: str) -> Response | None:
    if m := _TAGS.match(path):
        return tags(state, req, m.group("scope"))
    if m := _RG_LIST.match(path):
        if req.method != "GET":
            return None
        sub = m.group("sub").lower()
        groups = [rg.to_json() for (s, _), rg in state.resource_groups.items() if s == sub]
        return Response(200, {"value": groups, "nextLink": None})
    if m := _RG.match(path):
        return resource_group(state, req, m.group("sub"), m.group("rg"))
    if m := _RG_RESOURCES.match(path):
        return list_resources(state, req, m.group("sub"), m.group("rg")) if req.method == "GET" else None
    return None


def not_found(name: str) -> ArmFailure:
    return ArmFailure(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def require(state: State, sub: str, name: str) -> ResourceGroup:
    rg = state.get_rg(sub, name)
    if rg is None:
        raise not_found(name)
    return rg


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError as exc:
        raise ArmFailure(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
    if not isinstance(body, dict):
        raise ArmFailure(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def resource_group(state: State, req: Request, sub: str, name: str) -> Response:
    key = (sub.lower(), name.lower())
    rg = state.resource_groups.get(key)
    if req.method == "HEAD":
        return Response(204 if rg else 404)
    if req.method == "GET":
        return Response(200, require(state, sub, name).to_json())
    if req.method == "PUT":
        body = _body(req)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            return arm_error(400, "LocationRequired", "The location property is required for this definition.")
        if rg is not None and rg.location.lower() != location.lower():
            return arm_error(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{location}'. The Resource group already exists in "
                f"location '{rg.location}'.",
            )
        created = rg is None
        if rg is None:
            rg = ResourceGroup(sub, name, location, {})
            state.resource_groups[key] = rg
        rg.tags = dict(body.get("tags") or {})
        rg.managed_by = body.get("managedBy")
        return Response(201 if created else 200, rg.to_json())
    if req.method == "PATCH":
        rg = require(state, sub, name)
        body = _body(req)
        if "tags" in body:
            rg.tags = dict(body.get("tags") or {})
        if "managedBy" in body:
            rg.managed_by = body["managedBy"]
        return Response(200, rg.to_json())
    if req.method == "DELETE":
        rg = require(state, sub, name)
        del state.resource_groups[key]
        prefix = rg.id.lower() + "/"
        for dkey in [k for k in state.deployments if (k[0] + "/").startswith(prefix)]:
            del state.deployments[dkey]
        state.scope_tags.pop(rg.id.lower(), None)
        return lro.start_location_operation(state, req, f"/subscriptions/{sub}/operationresults", 200, None)
    return arm_error(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on a resource group.")


def _finish_order(d: Deployment) -> float:
    return d.finished or 0.0


def _generic_resource(resource: dict[str, Any], rg: ResourceGroup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": resource["id"],
        "name": resource["name"],
        "type": resource["type"],
        "location": str(resource.get("location") or rg.location),
    }
    for key in ("kind", "sku", "tags"):
        if resource.get(key):
            body[key] = resource[key]
    return body


def list_resources(state: State, req: Request, sub: str, name: str) -> Response:
    """``GET .../resourceGroups/{rg}/resources``: the top-level resources that succeeded deployments
    declared in the group (a later deployment of the same id wins). ``$filter=resourceType eq '…'`` and
    ``$top`` are honoured; nested (``a/b``) and extension resources are not listed, as in ARM.
    """
    rg = require(state, sub, name)
    prefix = rg.id.lower() + "/providers/"
    found: dict[str, dict[str, Any]] = {}
    for d in sorted(state.deployments.values(), key=_finish_order):
        if d.state != "Succeeded":
            continue
        for resource in d.resources:
            rid = str(resource.get("id", ""))
            if rid.lower().startswith(prefix) and rid[len(prefix) :].count("/") == 2:  # namespace/type/name
                found[rid.lower()] = _generic_resource(resource, rg)
    items = list(found.values())
    if m := re.search(r"resourceType\s+eq\s+'([^']*)'", req.param("$filter") or "", re.I):
        items = [r for r in items if str(r["type"]).lower() == m.group(1).lower()]
    top = req.param("$top")
    if top and top.isdigit():
        items = items[: int(top)]
    return Response(200, {"value": items, "nextLink": None})


def _tags_body(scope: str, tag_values: dict[str, str]) -> dict[str, Any]:
    return {
        "id": f"{scope}/providers/Microsoft.Resources/tags/default",
        "name": "default",
        "type": "Microsoft.Resources/tags",
        "properties": {"tags": dict(tag_values)},
    }


def tags(state: State, req: Request, scope: str) -> Response:
    """GET/PUT/PATCH/DELETE ``{scope}/providers/Microsoft.Resources/tags/default``.

    For a resource-group scope the tags are the group's own tags (404 if it does not exist).
    """
    rg: ResourceGroup | None = None
    if m := _RG_SCOPE.match(scope):
        rg = require(state, m.group("sub"), m.group("rg"))
        current = rg.tags
    else:
        current = state.scope_tags.setdefault(scope.lower(), {})
    if req.method == "GET":
        return Response(200, _tags_body(scope, current))
    if req.method == "DELETE":
        current.clear()
        return Response(200)
    if req.method not in ("PUT", "PATCH"):
        return arm_error(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on tags.")
    body = _body(req)
    new = (body.get("properties") or {}).get("tags")
    if not isinstance(new, dict):
        return arm_error(400, "InvalidRequestContent", "The request content was invalid: 'properties.tags'.")
    operation = str(body.get("operation", "Replace")) if req.method == "PATCH" else "Replace"
    if operation.lower() == "merge":
        current.update(new)
    elif operation.lower() == "delete":
        for k, v in new.items():
            if current.get(k) == v:
                current.pop(k)
    elif operation.lower() == "replace":
        current.clear()
        current.update(new)
    else:
        return arm_error(400, "InvalidTagOperation", f"The tag operation '{operation}' is not supported.")
    return Response(200, _tags_body(scope, current))
