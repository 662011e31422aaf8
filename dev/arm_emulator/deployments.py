"""``Microsoft.Resources/deployments`` at any scope (tenant, management group, subscription,
resource group, extension scope): create (Azure-AsyncOperation LRO), get, head, list, delete,
cancel, validate, whatIf (Location LRO), exportTemplate and deployment operations.

Lifecycle: a PUT answers ``Accepted``; each status poll *or* GET of the deployment counts as one
observation; the first ``polls`` observations (``set_deployment_duration``, default 1) report
``Running`` and the next one finishes the deployment (``Succeeded``, or ``Failed`` when the name was
passed to ``fail_deployment``). State lives for the process lifetime, so any client can poll it.
"""

from __future__ import annotations

import datetime
import re
import time
import uuid
from typing import Any

from . import linked, lro, resource_groups, templates, what_if
from .state import Deployment, ResourceGroup, State
from .web import ArmFailure, Request, Response, arm_error

_DEPLOYMENTS = re.compile(
    r"^(?P<scope>.*)/providers/microsoft\.resources/deployments(?:/(?P<name>[^/]+)(?:/(?P<rest>.+))?)?$", re.I
)
# The resource-group deployment-operations paths omit "providers/Microsoft.Resources" (as in the spec).
_RG_OPERATIONS = re.compile(
    r"^(?P<scope>/subscriptions/[^/]+/resourcegroups/[^/]+)/deployments/(?P<name>[^/]+)"
    r"/(?P<rest>operations(?:/[^/]+)?)$",
    re.I,
)
_SUB_SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)$", re.I)
_RG_SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.I)
_MG_SCOPE = re.compile(r"^/providers/microsoft\.management/managementgroups/[^/]+$", re.I)
_ANY_SUB = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.I)

FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)
PATTERNS = (_DEPLOYMENTS, _RG_OPERATIONS)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def route(state: State, req: Request, path: str) -> Response | None:
    m = _RG_OPERATIONS.match(path) or _DEPLOYMENTS.match(path)
    if m is None:
        return None
    scope, name, rest = m.group("scope"), m.group("name"), m.group("rest")
    rg = _check_scope(state, scope)
    if name is None:
        return list_deployments(state, req, scope) if req.method == "GET" else None
    if rest is None:
        return _deployment(state, req, scope, name, rg)
    action = rest.lower()
    if req.method == "POST" and action == "cancel":
        return cancel(state, _require(state, scope, name))
    if req.method == "POST" and action == "validate":
        return validate(state, req, scope, name, rg)
    if req.method == "POST" and action == "whatif":
        body, evaluated = _parse(state, req, scope, name, rg, max_depth=state.what_if_max_depth)
        return what_if.respond(state, req, scope, name, rg, body, evaluated)
    if req.method == "POST" and action == "exporttemplate":
        d = _require(state, scope, name)
        return Response(200, {"template": d.request.get("properties", {}).get("template") or {}})
    if req.method == "GET" and action == "operations":
        d = _require(state, scope, name)
        return Response(200, {"value": d.operations, "nextLink": None})
    if req.method == "GET" and action.startswith("operations/"):
        d = _require(state, scope, name)
        op_id = rest.split("/", 1)[1]
        for op in d.operations:
            if op["operationId"].lower() == op_id.lower():
                return Response(200, op)
        return arm_error(404, "DeploymentOperationNotFound", f"Deployment operation '{op_id}' not found.")
    if req.method == "GET" and action.startswith("operationstatuses/"):
        return operation_status(state, req, rest.split("/", 1)[1])
    return None


# -- scope handling --------------------------------------------------------------------------


def _check_scope(state: State, scope: str) -> ResourceGroup | None:
    if m := _RG_SCOPE.match(scope):
        return resource_groups.require(state, m.group("sub"), m.group("rg"))
    return None


def _needs_location(scope: str) -> bool:
    return scope == "" or bool(_SUB_SCOPE.match(scope) or _MG_SCOPE.match(scope))


def _context(scope: str, name: str, rg: ResourceGroup | None, body: Any) -> templates.Context:
    sub_match = _ANY_SUB.match(scope)
    location = body.get("location") if isinstance(body, dict) else None
    return templates.Context(
        deployment_name=name,
        subscription=sub_match.group("sub") if sub_match else None,
        resource_group=rg.name if rg else None,
        location=str(location or (rg.location if rg else "westeurope")),
    )


def _parse(
    state: State, req: Request, scope: str, name: str, rg: ResourceGroup | None, *, max_depth: int | None = None
) -> tuple[Any, templates.Evaluated]:
    try:
        body = req.json()
    except ValueError as exc:
        raise ArmFailure(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
    if _needs_location(scope) and not (isinstance(body, dict) and body.get("location")):
        raise ArmFailure(
            400, "LocationRequired", "The 'location' property must be specified for this deployment scope."
        )
    try:
        evaluated = templates.process(
            body,
            _context(scope, name, rg, body),
            resolve=linked.resolver(state),
            locate=lambda sub, group: group_rg.location if (group_rg := state.get_rg(sub, group)) else None,
            max_depth=max_depth,
        )
        return body, evaluated
    except templates.TemplateError as exc:
        raise ArmFailure(400, exc.code, exc.message) from exc


def _key(scope: str, name: str) -> tuple[str, str]:
    return scope.lower(), name.lower()


def _require(state: State, scope: str, name: str) -> Deployment:
    d = state.deployments.get(_key(scope, name))
    if d is None:
        raise ArmFailure(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
    return d


# -- lifecycle -------------------------------------------------------------------------------


def observe(state: State, d: Deployment) -> None:
    if not d.active:
        return
    d.polls_seen += 1
    if d.polls_seen > d.polls_needed:
        _finish(state, d)
    else:
        d.state = "Running"


def _operation(d: Deployment, resource: dict[str, Any] | None, failed: bool) -> dict[str, Any]:
    op_id = uuid.uuid4().hex[:16].upper()
    props: dict[str, Any] = {
        "provisioningOperation": "Create",
        "provisioningState": "Failed" if failed else "Succeeded",
        "timestamp": _iso(d.finished),
        "duration": "PT0.5S",
        "trackingId": str(uuid.uuid4()),
        "serviceRequestId": str(uuid.uuid4()),
        "statusCode": "BadRequest" if failed else "Created",
        "statusMessage": (
            {"status": "Failed", "error": {"code": d.failure[0], "message": d.failure[1]}}
            if failed and d.failure
            else {"status": "Succeeded"}
        ),
    }
    if resource is not None:
        props["targetResource"] = {
            "id": resource["id"],
            "resourceType": resource["type"],
            "resourceName": resource["name"],
            "apiVersion": resource.get("apiVersion"),
        }
    return {"id": f"{d.id}/operations/{op_id}", "operationId": op_id, "properties": props}


def _finish(state: State, d: Deployment) -> None:
    d.finished = time.time()
    d.failure = state.failing_deployments.get(d.name.lower())
    if d.failure:
        d.state = "Failed"
        d.error = {
            "code": "DeploymentFailed",
            "message": FAILED_MESSAGE,
            "details": [{"code": d.failure[0], "message": d.failure[1]}],
        }
        first: dict[str, Any] | None = d.resources[0] if d.resources else None
        d.operations = [_operation(d, first, True)] + [_operation(d, r, False) for r in d.resources[1:]]
        return
    d.state = "Succeeded"
    d.operations = [_operation(d, r, False) for r in d.resources]
    for r in d.resources:  # subscription-scope deployments can create resource groups
        if str(r.get("type", "")).lower() == "microsoft.resources/resourcegroups":
            sub = r["id"].split("/")[2]
            key = (sub.lower(), r["name"].lower())
            if key not in state.resource_groups:
                state.resource_groups[key] = ResourceGroup(
                    sub, r["name"], str(r.get("location") or "westeurope"), dict(r.get("tags") or {})
                )


def to_json(d: Deployment) -> dict[str, Any]:
    props_in: dict[str, Any] = d.request.get("properties") or {}
    end = d.finished or time.time()
    props: dict[str, Any] = {
        "provisioningState": d.state,
        "mode": props_in.get("mode", "Incremental"),
        "correlationId": d.correlation_id,
        "timestamp": _iso(d.finished or d.started),
        "duration": f"PT{end - d.started:.3f}S",
        "templateHash": d.template_hash,
        "parameters": d.parameters,
        "providers": _providers(d.resources),
        "dependencies": [],
    }
    for key in ("templateLink", "parametersLink", "onErrorDeployment", "validationLevel", "debugSetting"):
        if props_in.get(key) is not None:
            props[key] = props_in[key]
    if d.state == "Succeeded":
        props["outputs"] = d.outputs_on_success
        props["outputResources"] = [{"id": r["id"]} for r in d.resources]
    if d.error:
        props["error"] = d.error
    body: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "type": "Microsoft.Resources/deployments",
        "properties": props,
    }
    if d.request.get("location"):
        body["location"] = d.request["location"]
    if d.request.get("tags"):
        body["tags"] = d.request["tags"]
    return body


def _providers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_ns: dict[str, dict[str, set[str]]] = {}
    for r in resources:
        ns, _, rtype = str(r.get("type", "")).partition("/")
        by_ns.setdefault(ns, {}).setdefault(rtype, set()).add(str(r.get("location") or ""))
    return [
        {
            "namespace": ns,
            "resourceTypes": [
                {"resourceType": t, "locations": sorted(loc for loc in locs if loc)} for t, locs in types.items()
            ],
        }
        for ns, types in by_ns.items()
    ]


# -- handlers --------------------------------------------------------------------------------


def _deployment(state: State, req: Request, scope: str, name: str, rg: ResourceGroup | None) -> Response:
    key = _key(scope, name)
    existing = state.deployments.get(key)
    if req.method == "HEAD":
        return Response(204 if existing else 404)
    if req.method == "GET":
        d = _require(state, scope, name)
        observe(state, d)
        return Response(200, to_json(d))
    if req.method == "PUT":
        return create(state, req, scope, name, rg)
    if req.method == "DELETE":
        if existing is None:
            return Response(204)
        if existing.active:
            return arm_error(409, "DeploymentActive", f"The deployment '{name}' is still active.")
        del state.deployments[key]
        sub = _ANY_SUB.match(scope)
        base = f"/subscriptions/{sub.group('sub')}" if sub else ""
        return lro.start_location_operation(state, req, f"{base}/operationresults", 200, None)
    return arm_error(405, "MethodNotAllowed", f"The method '{req.method}' is not allowed on a deployment.")


def create(state: State, req: Request, scope: str, name: str, rg: ResourceGroup | None) -> Response:
    key = _key(scope, name)
    existing = state.deployments.get(key)
    if existing is not None and existing.active:
        return arm_error(
            409,
            "DeploymentActive",
            f"Unable to edit or replace deployment '{name}': previous deployment from "
            f"'{_iso(existing.started)}' is still active. Please see https://aka.ms/arm-deploy for usage details.",
        )
    body, evaluated = _parse(state, req, scope, name, rg)
    d = Deployment(
        scope=scope,
        name=name,
        request=body,
        correlation_id=req.correlation_id,
        polls_needed=state.deployment_polls,
        template_hash=evaluated.template_hash,
        parameters=evaluated.parameters,
        resources=evaluated.resources,
        outputs_on_success=evaluated.outputs,
    )
    state.deployments[key] = d
    op_id = state.new_id()
    state.deployment_operations[op_id] = d
    headers = {
        "Azure-AsyncOperation": lro.lro_url(state, req, f"{d.id}/operationStatuses/{op_id}"),
        **lro.retry_after(state),
    }
    return Response(200 if existing else 201, to_json(d), headers)


def operation_status(state: State, req: Request, op_id: str) -> Response:
    d = state.deployment_operations.get(op_id)
    if d is None:
        return arm_error(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
    observe(state, d)
    body: dict[str, Any] = {
        "id": req.path,
        "name": op_id,
        "status": d.state,
        "startTime": _iso(d.started),
    }
    if d.finished is not None:
        body["endTime"] = _iso(d.finished)
    if d.error:
        body["error"] = d.error
    headers = lro.retry_after(state) if d.active else {}
    return Response(200, body, headers)


def cancel(state: State, d: Deployment) -> Response:
    if not d.active:
        return arm_error(
            409,
            "DeploymentCannotBeCancelled",
            f"The deployment '{d.name}' cannot be cancelled because it is in '{d.state}' state.",
        )
    d.state = "Canceled"
    d.finished = time.time()
    return Response(204)


def list_deployments(state: State, req: Request, scope: str) -> Response:
    items = [d for (s, _), d in state.deployments.items() if s == scope.lower()]
    flt = req.param("$filter") or ""
    if m := re.search(r"provisioningState\s+eq\s+'([^']*)'", flt, re.I):
        items = [d for d in items if d.state.lower() == m.group(1).lower()]
    top = req.param("$top")
    if top and top.isdigit():
        items = items[: int(top)]
    return Response(200, {"value": [to_json(d) for d in items], "nextLink": None})


def validate(state: State, req: Request, scope: str, name: str, rg: ResourceGroup | None) -> Response:
    body, evaluated = _parse(state, req, scope, name, rg)
    props_in = body.get("properties") or {}
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "mode": props_in.get("mode", "Incremental"),
        "correlationId": req.correlation_id,
        "timestamp": _iso(time.time()),
        "duration": "PT0S",
        "templateHash": evaluated.template_hash,
        "parameters": evaluated.parameters,
        "providers": _providers(evaluated.resources),
        "dependencies": [],
        "validatedResources": [{"id": r["id"]} for r in evaluated.resources],
    }
    if props_in.get("validationLevel"):
        props["validationLevel"] = props_in["validationLevel"]
    return Response(
        200,
        {
            "id": f"{scope}/providers/Microsoft.Resources/deployments/{name}",
            "name": name,
            "type": "Microsoft.Resources/deployments",
            "properties": props,
        },
    )
