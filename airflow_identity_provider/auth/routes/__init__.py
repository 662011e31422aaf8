"""The FastAPI sub-app Airflow mounts at ``/auth``: the browser sign-in round trip, machine tokens, sign-out,
and the signed-in user's "My access" page.

The routes are thin: each parses the request, calls a function of ``auth.services`` and renders its
result. Every failure ends on a page that says what happened and what to change, with a link to start
again (never an automatic redirect, which is how auth managers end up in redirect loops).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.routes import cli_login, login, logout, my_access, token
from airflow_identity_provider.auth.routes.bearer import bearer_middlewares
from airflow_identity_provider.auth.routes.request_context import AuditContextMiddleware
from airflow_identity_provider.auth.services.context import AuthContext

__all__ = ["api_middlewares", "create_auth_app"]


def create_auth_app(auth_manager: AuthContext) -> FastAPI:
    app = FastAPI(
        title="Identity auth manager",
        description="Sign-in through the configured OpenID provider (Entra ID, JumpCloud or generic OIDC).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.auth_manager = auth_manager
    # Binds client address, user agent and request id for the audit events of every /auth request.
    app.add_middleware(AuditContextMiddleware, trusted_proxies=getattr(auth_manager, "trusted_proxies", ()))
    for module in (login, cli_login, token, logout, my_access):
        app.include_router(module.router)
    return app


def api_middlewares(auth_manager: AuthContext, trusted_marker: object | None) -> list[tuple[Any, dict[str, Any]]]:
    """What ``get_fastapi_middlewares`` gives Airflow 3.3+: the IdP Bearer middleware (when ``api_audiences`` is
    set) and the audit request context. The context comes last, so outermost (Airflow add_middleware()s in
    order): every other middleware's audit events, the Bearer refusals included, carry the caller and request id."""
    audit_context = (AuditContextMiddleware, {"trusted_proxies": getattr(auth_manager, "trusted_proxies", ())})
    if trusted_marker is None:  # a version with the hook but without the marker: get_user would ignore our user
        version_compat.warn_missing("idp_bearer")
        return [audit_context]
    return [*bearer_middlewares(auth_manager, trusted_marker), audit_context]
