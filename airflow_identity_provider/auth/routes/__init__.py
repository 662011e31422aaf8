"""The FastAPI sub-app Airflow mounts at ``/auth``: the browser sign-in round trip, machine tokens, sign-out,
and the signed-in user's "My access" page.

The routes are thin: each parses the request, calls a function of ``auth.services`` and renders its
result. Every failure ends on a page that says what happened and what to change, with a link to start
again (never an automatic redirect, which is how auth managers end up in redirect loops).
"""

from __future__ import annotations

from fastapi import FastAPI

from airflow_identity_provider.auth.routes import login, logout, my_access, token
from airflow_identity_provider.auth.services.context import AuthContext

__all__ = ["create_auth_app"]


def create_auth_app(auth_manager: AuthContext) -> FastAPI:
    app = FastAPI(
        title="Identity auth manager",
        description="Sign-in through the configured OpenID provider (Entra ID, JumpCloud or generic OIDC).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.auth_manager = auth_manager
    for module in (login, token, logout, my_access):
        app.include_router(module.router)
    return app
