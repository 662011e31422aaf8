"""What every route needs from the request: the auth manager it serves, and whether cookies must be Secure."""

from __future__ import annotations

from typing import cast

from airflow.configuration import conf
from fastapi import HTTPException, Request

from airflow_identity_provider.auth.services.context import AuthContext
from airflow_identity_provider.auth.services.urls import base_url
from airflow_identity_provider.errors import Refusal

# The ID token is kept (httponly, only sent to /auth) for RP-initiated logout's id_token_hint; a token too
# large for a cookie is skipped and logout falls back to client_id.
ID_TOKEN_COOKIE = "_identity_id_token"
MAX_ID_TOKEN_COOKIE = 3000


def auth_context(request: Request) -> AuthContext:
    """The auth manager this app was built for (``create_auth_app`` stores it on the app's state)."""
    return cast(AuthContext, request.app.state.auth_manager)


def is_secure(request: Request) -> bool:
    # Also from base_url: behind a TLS-terminating proxy without --proxy-headers the request looks like http.
    return (
        request.url.scheme == "https"
        or base_url().startswith("https://")
        or bool(conf.get("api", "ssl_cert", fallback=""))
    )


def is_safe_next(url: str, request: Request) -> bool:
    from airflow_identity_provider.version_compat import is_safe_url

    return is_safe_url(url, request=request)


def unauthorized(refusal: Refusal) -> HTTPException:
    """401 with the reason: the UI sends the user to sign in again, a client knows to get a new token."""
    return HTTPException(
        status_code=401,
        detail=refusal.message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{refusal.reason}"'},
    )
