"""``/auth/login`` (straight to the provider, or a chooser when there are several) and ``/auth/callback``.

With one provider its redirect URI is ``/auth/callback``; with several (``providers = staff,contractors``)
each has its own ``/auth/callback/<name>``, and the login state is bound to the provider that started it
(mix-up defence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from airflow_identity_provider.auth.routes.common import (
    ID_TOKEN_COOKIE,
    MAX_ID_TOKEN_COOKIE,
    auth_context,
    is_safe_next,
    is_secure,
)
from airflow_identity_provider.auth.routes.pages import chooser_page, no_role_page, page, refused_page, unsafe_next_page
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.cli_code import CliRequest
from airflow_identity_provider.auth.rules.settings import DEFAULT_NAME
from airflow_identity_provider.auth.rules.state import COOKIE_NAME as LOGIN_COOKIE
from airflow_identity_provider.auth.rules.state import state_cookie
from airflow_identity_provider.auth.services.cli_login import code_redirect
from airflow_identity_provider.auth.services.login import CallbackAnswer, NoRole, SignedIn, finish_login, start_login
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.urls import base_url

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider

router = APIRouter()


@router.get("/login", response_model=None)
def login(request: Request, next: str | None = None) -> Response:
    target = next or base_url()
    if not is_safe_next(target, request):
        return unsafe_next_page(target)
    providers = auth_context(request).providers
    if len(providers) > 1:
        query = urlencode({"next": target})
        choices = {
            p.settings.display_name: f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login/{n}?{query}"
            for n, p in providers.items()
        }
        return chooser_page(choices)
    return start_sign_in(auth_context(request).provider, request, target)


@router.get("/login/{name}", response_model=None)
def login_with(name: str, request: Request, next: str | None = None) -> Response:
    target = next or base_url()
    if not is_safe_next(target, request):
        return unsafe_next_page(target)
    provider = auth_context(request).providers.get(name)
    if provider is None:
        return refused_page(Refused("unknown_provider", f"No identity provider is named {name!r}.", 404))
    return start_sign_in(provider, request, target)


def start_sign_in(provider: OidcProvider, request: Request, target: str, cli: CliRequest | None = None) -> Response:
    """Redirect to the provider with the login-state cookie; ``cli``: a terminal sign-in (/auth/cli-login)."""
    started = start_login(provider, target=target, secret=auth_context(request).state_secret, cli=cli)
    if isinstance(started, Refused):
        return refused_page(started)
    response = RedirectResponse(started.authorize_url, status_code=302)
    response.set_cookie(
        value=started.state_cookie, **state_cookie(path=AUTH_MANAGER_FASTAPI_APP_PREFIX, secure=is_secure(request))
    )
    return response


@router.get("/callback", response_model=None)
def callback(request: Request, answer: Annotated[CallbackAnswer, Depends()]) -> Response:
    return _finish(request, DEFAULT_NAME, answer)


@router.get("/callback/{name}", response_model=None)
def callback_with(name: str, request: Request, answer: Annotated[CallbackAnswer, Depends()]) -> Response:
    return _finish(request, name, answer)


def _finish(request: Request, name: str, answer: CallbackAnswer) -> Response:
    ctx = auth_context(request)
    result = finish_login(ctx, name, request.cookies.get(LOGIN_COOKIE), answer)
    if isinstance(result, Refused):
        return refused_page(result)
    if isinstance(result, NoRole):
        return no_role_page(result)
    if result.cli is not None:  # a terminal sign-in: a one-time code to its loopback listener, no browser cookie
        response = RedirectResponse(code_redirect(ctx, result), status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
        return response
    airflow_token = ctx.generate_session_jwt(result.user)  # the session: not capped by api_token_max_age
    if len(COOKIE_NAME_JWT_TOKEN) + len(airflow_token) > MAX_COOKIE_BYTES:
        return _too_big(airflow_token, result)
    audit.emit(
        "token",
        outcome="success",
        kind="browser",
        # generate_jwt's default lifetime: the session cookie lasts this long unless refreshed or revoked.
        lifetime=conf.getint("api_auth", "jwt_expiration_time"),
        **audit.user_fields(result.user),
    )
    return _signed_in_response(request, airflow_token, result)


# Browsers drop a cookie over 4096 bytes (name + value) silently and keep the old one: the browser would
# carry on as whoever signed in before, or loop through the IdP. Refuse instead, and say what to change.
MAX_COOKIE_BYTES = 4000


def _too_big(airflow_token: str, signed_in: SignedIn) -> Response:
    user = signed_in.user
    audit.emit(
        "login",
        outcome="failure",
        reason="token_too_large",
        **audit.user_fields(user),
        size=len(airflow_token),
        groups_total=len(user.groups),
    )
    response = page(
        "Your Airflow session would not fit in a cookie",
        f"You signed in as {user.name}, but the session (roles {', '.join(user.roles) or 'none'}, "
        f"{len(user.groups)} groups that settings name, {len(user.teams)} teams) needs {len(airflow_token)} "
        "bytes, more than a browser keeps in one cookie.",
        detail="Ask an Airflow administrator to name fewer of your groups in role_mapping, dag_grants, "
        "team_mapping or DAGs' access_control (e.g. one group per role instead of many).",
        status_code=403,
    )
    response.delete_cookie(COOKIE_NAME_JWT_TOKEN, path=get_cookie_path())  # never keep an earlier session
    return response


def _signed_in_response(request: Request, airflow_token: str, signed_in: SignedIn) -> Response:
    next_url = signed_in.next_url if is_safe_next(signed_in.next_url, request) else base_url()
    response = RedirectResponse(next_url, status_code=303)
    secure = is_secure(request)
    response.set_cookie(
        COOKIE_NAME_JWT_TOKEN,
        airflow_token,
        path=get_cookie_path(),
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
    if len(signed_in.id_token) <= MAX_ID_TOKEN_COOKIE:
        response.set_cookie(
            ID_TOKEN_COOKIE,
            f"{signed_in.user.idp}.{signed_in.id_token}",
            path=AUTH_MANAGER_FASTAPI_APP_PREFIX,
            httponly=True,
            secure=secure,
            samesite="lax",
        )
    else:  # never leave an earlier sign-in's token (maybe another user's) as the logout hint
        response.delete_cookie(ID_TOKEN_COOKIE, path=AUTH_MANAGER_FASTAPI_APP_PREFIX)
    return response
