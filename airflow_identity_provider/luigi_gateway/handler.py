"""Every request for luigid: who is calling, may they, whose worker is it, then the call (or the refusal).

Order matters: classify the route (no I/O), authenticate (a token check, cached), authorize (pure), read and
check the call's arguments, bind the worker, check the task it reports on (``task_ownership``), and only
then reach luigid (whose ``get_work`` answer records the tasks handed out). Every refusal is answered here,
before luigid sees anything, and audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from airflow_identity_provider.audit import current_request
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.luigi_gateway.access import (
    MAX_DATA_BYTES,
    Denied,
    audit_fields,
    authorize,
    call_data,
)
from airflow_identity_provider.luigi_gateway.audit_events import call_denied, call_forwarded
from airflow_identity_provider.luigi_gateway.credentials import from_our_pages, is_navigation
from airflow_identity_provider.luigi_gateway.identity import Caller
from airflow_identity_provider.luigi_gateway.methods import (
    Level,
    Route,
    RouteKind,
    Rule,
    WorkerField,
    classify,
    level_of,
)
from airflow_identity_provider.luigi_gateway.proxy import UpstreamDown, relay
from airflow_identity_provider.luigi_gateway.responses import refusal, to_sign_in
from airflow_identity_provider.luigi_gateway.state import Gateway, gateway_of
from airflow_identity_provider.luigi_gateway.task_ownership import (
    REPORTING_METHODS,
    decide_add_task,
    decide_report,
    handed_out,
)


@dataclass(frozen=True)
class _Refusal:
    status: int
    reason: str
    message: str
    needed: str | None = None
    worker: str | None = None


async def handle(request: Request) -> Response:
    gateway = gateway_of(request)
    route = classify(request.url.path)
    navigation = (
        is_navigation(request.method, request.headers.get("accept"), request.headers.get("sec-fetch-mode"))
        and route.kind is not RouteKind.API
    )

    caller = await gateway.authenticator.caller(request.headers, request.cookies)
    if isinstance(caller, Refused):  # a token refused (401), or the IdP unreachable with no keys cached (503)
        return _deny(gateway, None, route, _Refusal(caller.status_code, caller.reason, caller.message), navigation)
    if caller is None:
        if navigation and route.kind is RouteKind.PAGE:
            return to_sign_in(gateway.settings.public_url, _path_and_query(request))
        return _deny(
            gateway,
            None,
            route,
            _Refusal(
                401,
                "unauthenticated",
                "Sign in (browser) or send an access token: 'Authorization: Bearer <token>', or the token as the "
                "Basic password of the scheduler URL.",
            ),
            navigation,
        )

    decision = authorize(route, request.method, caller.user.roles, level_of(caller.user.roles))
    if isinstance(decision, Denied):
        needed = decision.needed.role_name if decision.needed else None
        return _deny(
            gateway, caller, route, _Refusal(decision.status, decision.reason, decision.message, needed), navigation
        )
    if route.kind is RouteKind.PAGE:
        return await _page(gateway, request, caller, route)
    return await _api(gateway, request, caller, route, decision.rule)


async def _api(gateway: Gateway, request: Request, caller: Caller, route: Route, rule: Rule) -> Response:
    data = await _data_values(request)
    checked = data if isinstance(data, Denied) else call_data(data)
    if isinstance(checked, Denied):
        return _deny(gateway, caller, route, _Refusal(checked.status, checked.reason, checked.message), False)
    if (
        caller.via == "session"
        and rule.changes_state
        and not from_our_pages(request.headers, gateway.settings.public_url)
    ):
        return _deny(
            gateway,
            caller,
            route,
            _Refusal(
                403,
                "cross_site",
                f"{route.method} changes luigid's state and this request does not come from the gateway's own "
                "pages (Sec-Fetch-Site / Origin); open the visualiser and use its buttons.",
            ),
            False,
        )
    worker = checked.arguments.get("worker")
    if rule.worker is WorkerField.SELF:
        verdict = gateway.bindings.check(worker, caller.principal)
        if not verdict.allowed:
            refused = _Refusal(403, verdict.reason, verdict.message, worker=worker if isinstance(worker, str) else None)
            return _deny(gateway, caller, route, refused, False)
    restricted = (level_of(caller.user.roles) or Level.VIEWER) < Level.OP
    task_refusal, claim = _task_check(gateway, caller.principal, route.method, checked.arguments, restricted)
    if task_refusal is not None:
        return _deny(gateway, caller, route, task_refusal, False)
    try:
        upstream = await gateway.luigid.call(route.method, checked.canonical, request_id=_request_id())
    except UpstreamDown as err:
        return _upstream_down(gateway, caller, route, err, rule, checked.arguments)
    if upstream.status_code == 200:
        handed = handed_out(upstream.content) if route.method == "get_work" else []
        for task_id in [*handed, *([claim] if claim else [])]:
            gateway.claims.claim(caller.principal, task_id)
    if rule.changes_state and _worth_recording(route.method, upstream.content):
        call_forwarded(caller, route.method, audit_fields(checked.arguments), upstream.status_code)
    return relay(upstream)


def _task_check(
    gateway: Gateway, principal: str, method: str, arguments: dict[str, Any], restricted: bool
) -> tuple[_Refusal | None, str | None]:
    """The refusal of a call on a task the caller does not hold (Worker level), else the task id it claims."""
    task_id = arguments.get("task_id")
    mine = isinstance(task_id, str) and gateway.claims.holds(principal, task_id)
    if method == "add_task":
        others = isinstance(task_id, str) and gateway.claims.held_by_others(principal, task_id)
        verdict = decide_add_task(arguments, mine=mine, held_by_others=others, restricted=restricted)
    elif method in REPORTING_METHODS:
        verdict = decide_report(task_id, mine=mine, restricted=restricted)
    elif method == "get_work" and arguments.get("assistant") and restricted:
        # luigid hands an assistant every runnable task, whoever registered it.
        message = "An assistant worker is handed every identity's tasks; it needs the role Op (or higher)."
        return _Refusal(403, "assistant_not_allowed", message, Level.OP.role_name), None
    else:
        return None, None
    if not verdict.allowed:
        return _Refusal(403, verdict.reason, verdict.message), None
    return None, verdict.claim


async def _page(gateway: Gateway, request: Request, caller: Caller, route: Route) -> Response:
    try:
        upstream = await gateway.luigid.page(
            request.method,
            request.url.path,
            request.url.query.encode(),
            request.headers,
            request_id=_request_id(),
        )
    except UpstreamDown as err:
        return _upstream_down(gateway, caller, route, err, None, {}, navigation=True)
    return relay(upstream)


async def _data_values(request: Request) -> list[str] | Denied:
    """Every ``data`` value tornado would read: the query string's and an urlencoded body's."""
    values = request.query_params.getlist("data")
    if request.method != "POST":
        return values
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_DATA_BYTES + 4096:
            return Denied(413, "data_too_large", f"The call's body exceeds {MAX_DATA_BYTES} bytes.")
    if not body:
        return values
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return Denied(
            415,
            "unsupported_body",
            f"The gateway reads form-encoded calls (data=<json>), as luigi's client sends them; got {content_type!r}.",
        )
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return Denied(400, "malformed_data", "The call's body is not UTF-8.")
    return [*values, *form.get("data", [])]


def _worth_recording(method: str, body: bytes) -> bool:
    """Every state-changing call, except get_work that hands out nothing (idle workers ask every second)."""
    if method != "get_work":
        return True
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return True
    response = answer.get("response") if isinstance(answer, dict) else None
    return not isinstance(response, dict) or bool(response.get("task_id"))


def _upstream_down(
    gateway: Gateway,
    caller: Caller,
    route: Route,
    err: UpstreamDown,
    rule: Rule | None,
    arguments: dict[str, Any],
    *,
    navigation: bool = False,
) -> Response:
    if rule is not None and rule.changes_state:
        call_forwarded(caller, route.method, {**audit_fields(arguments), "detail": err.detail}, 502)
    return refusal(
        502,
        "upstream_unreachable",
        f"The Luigi scheduler behind the gateway ({err.upstream}) does not answer: {err.detail}. Nothing was changed.",
        html_page=navigation,
    )


def _deny(gateway: Gateway, caller: Caller | None, route: Route, refused: _Refusal, navigation: bool) -> Response:
    context = current_request()
    call_denied(
        caller,
        route.label,
        reason=refused.reason,
        http_status=refused.status,
        detail=refused.message,
        role_needed=refused.needed,
        worker=refused.worker,
        client=context.client_ip if context else "",
    )
    return refusal(
        refused.status,
        refused.reason,
        refused.message,
        html_page=navigation,
        method=route.method or None,
        role_needed=refused.needed,
    )


def _request_id() -> str:
    context = current_request()
    return context.request_id if context else ""


def _path_and_query(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")
