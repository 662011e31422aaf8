"""``/auth/logout`` (revoke, clear the cookies, then end the IdP session where supported) and ``/auth/logged-out``."""

from __future__ import annotations

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from airflow_identity_provider.auth.routes.common import ID_TOKEN_COOKIE, auth_context, is_secure
from airflow_identity_provider.auth.routes.pages import signed_out_page
from airflow_identity_provider.auth.services.logout import sign_out

router = APIRouter()


@router.get("/logout", response_model=None)
def logout(request: Request) -> Response:
    """Revoke the Airflow token(s) sent and clear the cookie, then end the IdP session where supported."""
    signed_out = sign_out(auth_context(request), request, id_token_cookie=request.cookies.get(ID_TOKEN_COOKIE))
    end_session = signed_out.end_session_url
    response: Response = RedirectResponse(end_session, status_code=302) if end_session else signed_out_page()
    secure = is_secure(request)
    clear_airflow_cookie(response, secure=secure)
    response.delete_cookie(ID_TOKEN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX, secure=secure, httponly=True)
    return response


@router.get("/logged-out", response_model=None)
def logged_out() -> Response:
    return signed_out_page()


def clear_airflow_cookie(response: Response, *, secure: bool) -> None:
    # Also at "/": a stale cookie at another path would otherwise keep the user signed in (PR #64955).
    for path in {get_cookie_path(), "/"}:
        response.delete_cookie(COOKIE_NAME_JWT_TOKEN, path=path, secure=secure, httponly=True, samesite="lax")
