"""Control plane under ``/_emulator/…`` (JSON in, JSON out; never recorded)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from . import authorization, linked, template_specs, what_if
from .state import Drop, InjectedError, State, Throttle
from .web import Request, Response

PREFIX = "/_emulator/"

Handler = Callable[[State, dict[str, Any]], Any]


def _reset(state: State, body: dict[str, Any]) -> None:
    state.reset()


def _throttle(state: State, body: dict[str, Any]) -> None:
    share = float(body.get("share", 1.0))
    if not 0.0 < share <= 1.0:
        raise ValueError("share must be > 0 and <= 1")
    pattern, method, times = _fault_target(body)
    state.throttles.append(
        Throttle(
            pattern=pattern,
            remaining=times,
            retry_after=int(body.get("retry_after", 1)),
            share=share,
            rng=random.Random(int(body.get("seed", 0))),
            method=method,
        )
    )


def _fault_target(body: dict[str, Any]) -> tuple[re.Pattern[str], str | None, int]:
    """Which requests a fault hits (path regex, method or any) and how many times: as every fault reads them."""
    method = body.get("method")
    return re.compile(str(body["path_regex"]), re.I), str(method).upper() if method else None, int(body.get("times", 1))


def _fail_request(state: State, body: dict[str, Any]) -> None:
    pattern, method, times = _fault_target(body)
    state.injected_errors.append(
        InjectedError(
            pattern=pattern,
            method=method,
            remaining=times,
            status=int(body.get("status", 403)),
            code=str(body.get("code", "AuthorizationFailed")),
            message=str(body.get("message", "Injected failure.")),
        )
    )


def _drop_request(state: State, body: dict[str, Any]) -> None:
    pattern, method, times = _fault_target(body)
    state.drops.append(Drop(pattern=pattern, method=method, remaining=times))


def _fail_deployment(state: State, body: dict[str, Any]) -> None:
    state.failing_deployments[str(body["name"]).lower()] = (
        str(body.get("code", "ResourceDeploymentFailure")),
        str(body.get("message", "The resource operation completed with terminal provisioning state 'Failed'.")),
    )


def _deployment_duration(state: State, body: dict[str, Any]) -> None:
    polls = int(body["polls"])
    if polls < 0:
        raise ValueError("polls must be >= 0")
    state.deployment_polls = polls


def _permissions(state: State, body: dict[str, Any]) -> None:
    state.permissions[authorization.norm(str(body["scope"]))] = authorization.normalize_permissions(
        list(body["entries"])
    )


def _role_assignments(state: State, body: dict[str, Any]) -> list[dict[str, Any]]:
    entries = [authorization.normalize_role_assignment(state, e) for e in body["entries"]]
    state.role_assignments = entries
    return entries


def _deny_assignments(state: State, body: dict[str, Any]) -> list[dict[str, Any]]:
    entries = [authorization.normalize_deny_assignment(e) for e in body["entries"]]
    state.deny_assignments = entries
    return entries


def _role_definition(state: State, body: dict[str, Any]) -> dict[str, Any]:
    definition = authorization.normalize_role_definition(dict(body["definition"]))
    state.custom_role_definitions[definition["name"].lower()] = definition
    return definition


def _what_if_changes(state: State, body: dict[str, Any]) -> None:
    what_if.configure(state, str(body["name"]), {"changes": list(body["changes"])})


def _what_if_result(state: State, body: dict[str, Any]) -> None:
    what_if.configure(state, str(body["name"]), {part: body.get(part) for part in what_if.PARTS})


def _what_if_limits(state: State, body: dict[str, Any]) -> None:
    depth = body.get("max_nesting_depth")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise ValueError("max_nesting_depth must be an int >= 0 or null")
    state.what_if_max_depth = depth


def _linked_template(state: State, body: dict[str, Any]) -> str:
    versions = body["versions"]
    if not isinstance(versions, list):
        raise TypeError("versions must be a list")
    return linked.set_versions(state, str(body["name"]), versions)


def _template_spec_versions(state: State, body: dict[str, Any]) -> str:
    contents = body["contents"]
    if not isinstance(contents, list):
        raise TypeError("contents must be a list")
    return template_specs.set_sequence(state, str(body["version_id"]), contents)


def _async_base(state: State, body: dict[str, Any]) -> None:
    base = body.get("base_url")
    state.async_base = str(base).rstrip("/") if base else None


def _ratelimit(state: State, body: dict[str, Any]) -> None:
    state.ratelimit_remaining = int(body["n"])


def _requests(state: State, body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state.requests)


HANDLERS: dict[str, Handler] = {
    "reset": _reset,
    "throttle": _throttle,
    "fail-request": _fail_request,
    "drop-request": _drop_request,
    "fail-deployment": _fail_deployment,
    "deployment-duration": _deployment_duration,
    "permissions": _permissions,
    "role-assignments": _role_assignments,
    "deny-assignments": _deny_assignments,
    "role-definitions": _role_definition,
    "what-if-changes": _what_if_changes,
    "what-if-result": _what_if_result,
    "what-if-limits": _what_if_limits,
    "linked-template": _linked_template,
    "template-spec-versions": _template_spec_versions,
    "async-base": _async_base,
    "ratelimit-remaining": _ratelimit,
}


def handle(state: State, req: Request) -> Response:
    name = req.path[len(PREFIX) :].strip("/").lower()
    if req.method == "GET" and name == "health":
        return Response(200, {"ok": True})
    if req.method == "GET" and name == "requests":
        return Response(200, {"requests": _requests(state, {})})
    handler = HANDLERS.get(name)
    if handler is None or req.method not in ("POST", "PUT"):
        return Response(
            404,
            {
                "error": {
                    "code": "UnknownControlEndpoint",
                    "message": f"{req.method} {req.path} is not a control endpoint. "
                    f"Known: {sorted(HANDLERS)} (POST), health, requests (GET).",
                }
            },
        )
    try:
        body = req.json() or {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        result = handler(state, body)
    except (KeyError, ValueError, TypeError, re.error) as exc:
        return Response(400, {"error": {"code": "BadControlRequest", "message": f"{type(exc).__name__}: {exc}"}})
    return Response(200, {"ok": True, "result": result})
