"""The Starlette app: sign-in routes, a health check, and every other path through ``handler.handle``.

``create_app`` takes validated settings and builds the providers with the auth wing's ``make_provider`` (the
same relying party as the Airflow auth manager). The audit context (client address behind
``trusted_proxies``, request id) is bound per request by a pure-ASGI middleware, as on Airflow's side.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_identity_provider import audit
from airflow_identity_provider.auth.idp import make_provider
from airflow_identity_provider.auth.idp.oidc import OidcProvider
from airflow_identity_provider.auth.rules.client_ip import IPNetwork, client_ip
from airflow_identity_provider.luigi_gateway import sign_in
from airflow_identity_provider.luigi_gateway.handler import handle
from airflow_identity_provider.luigi_gateway.identity import Authenticator, GatewayContext, make_admission
from airflow_identity_provider.luigi_gateway.proxy import LuigidClient, UpstreamDown
from airflow_identity_provider.luigi_gateway.settings import GatewaySettings
from airflow_identity_provider.luigi_gateway.state import Gateway, gateway_of
from airflow_identity_provider.luigi_gateway.task_ownership import TaskClaims
from airflow_identity_provider.luigi_gateway.worker_identity import WorkerBindings

ALL_HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
REQUEST_ID_HEADER = "x-request-id"


def create_app(
    settings: GatewaySettings,
    *,
    providers: dict[str, OidcProvider] | None = None,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """``providers`` and ``upstream_transport`` replace the real ones in tests (the real ones by default)."""
    built = providers or {name: make_provider(s) for name, s in settings.providers.items()}
    audit.register_secret(settings.session_secret, *(p.settings.client_secret for p in built.values()))
    ctx = GatewayContext(built, state_secret=settings.session_secret)
    gateway = Gateway(
        settings=settings,
        ctx=ctx,
        authenticator=Authenticator(settings, make_admission(ctx)),
        luigid=LuigidClient(settings.upstream, timeout=settings.upstream_timeout, transport=upstream_transport),
        bindings=WorkerBindings(ttl=settings.worker_binding_ttl, clock=time.time),
        claims=TaskClaims(ttl=settings.worker_binding_ttl, clock=time.time),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.luigid.close()

    app = Starlette(
        routes=[
            *sign_in.ROUTES,
            Route("/_gateway/health", health, methods=["GET"]),
            Route("/{path:path}", handle, methods=ALL_HTTP_METHODS),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.add_middleware(AuditContext, trusted_proxies=settings.trusted_proxies)
    return app


async def health(request: Request) -> Response:
    """Unauthenticated, for probes: the gateway answers, and whether luigid does (it says nothing else)."""
    gateway = gateway_of(request)
    try:
        upstream = await gateway.luigid.page("HEAD", "/", b"", {}, request_id="health")
        luigid = "ok" if upstream.status_code < 500 else f"HTTP {upstream.status_code}"
    except UpstreamDown:
        luigid = "unreachable"
    return JSONResponse({"gateway": "ok", "luigid": luigid}, status_code=200 if luigid == "ok" else 503)


class AuditContext:
    """Binds the audit request context (client address, user agent, request id) for the request, and
    answers with ``X-Request-ID`` so a user's report names the events to look for."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        context = audit.RequestContext(
            client_ip=client_ip(
                str(client[0]) if client else "", headers.getlist("x-forwarded-for"), self.trusted_proxies
            ),
            user_agent=headers.get("user-agent", "")[:512],
            request_id=audit.request_id_from(headers.get(REQUEST_ID_HEADER)),
        )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, context.request_id)
            await send(message)

        with audit.request_scope(context):
            await self.app(scope, receive, send_with_id)
