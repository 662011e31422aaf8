"""The edge of every request: who is calling (client address, user agent) and the request id, bound for the
audit events the request emits. No I/O: a few header reads per request.

Installed twice, harmlessly: on Airflow's whole API through ``get_fastapi_middlewares`` (3.3+, so
authorization denials on /api/v2 and /ui carry the caller too) and on the ``/auth`` sub-app (every version).
The inner one sees the outer one's binding and steps aside, so a request keeps one request id.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.client_ip import IPNetwork, client_ip

__all__ = ["REQUEST_ID_HEADER", "AuditContextMiddleware", "request_context"]

REQUEST_ID_HEADER = "x-request-id"
MAX_USER_AGENT = 512


def request_context(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> audit.RequestContext:
    headers = Headers(scope=scope)
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    return audit.RequestContext(
        client_ip=client_ip(peer, headers.getlist("x-forwarded-for"), trusted_proxies),
        user_agent=headers.get("user-agent", "")[:MAX_USER_AGENT],
        request_id=audit.request_id_from(headers.get(REQUEST_ID_HEADER)),
    )


class AuditContextMiddleware:
    """Pure ASGI (not ``BaseHTTPMiddleware``): the binding is visible to the endpoint, its thread pool and
    every dependency, and is undone when the response is sent. Answers carry ``X-Request-ID`` so a user's
    error report names the events to look for."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or audit.current_request() is not None:
            await self.app(scope, receive, send)
            return
        context = request_context(scope, self.trusted_proxies)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, context.request_id)
            await send(message)

        token = audit.bind_request(context)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            audit.reset_request(token)
