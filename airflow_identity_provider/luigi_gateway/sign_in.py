"""The browser routes: ``/auth/login`` (to the provider, or a chooser with several), ``/auth/callback[/<name>]``,
``/auth/logout`` and ``/auth/logged-out``.

The sign-in is the auth wing's (``services.login``: authorization code + PKCE, the login-state cookie, the ID
token checks, the role mapping, the ``login`` audit event); only the redirect URIs are the gateway's, from
``public_url``. The provider's calls are blocking (httpx.Client), so they run in the thread pool.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from airflow_identity_provider.audit import emit
from airflow_identity_provider.auth.rules.settings import DEFAULT_NAME
from airflow_identity_provider.auth.rules.state import COOKIE_NAME as LOGIN_COOKIE
from airflow_identity_provider.auth.rules.state import state_cookie
from airflow_identity_provider.auth.services.login import CallbackAnswer, NoRole, finish_login, start_login
from airflow_identity_provider.auth.services.logout import end_session_url
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.luigi_gateway.audit_events import SERVICE
from airflow_identity_provider.luigi_gateway.credentials import from_our_pages
from airflow_identity_provider.luigi_gateway.methods import level_of
from airflow_identity_provider.luigi_gateway.responses import page, refusal, sign_out_page, signed_out_page
from airflow_identity_provider.luigi_gateway.session import (
    AUTH_PATH,
    ID_TOKEN_COOKIE,
    MAX_ID_TOKEN_COOKIE,
    SESSION_COOKIE,
    encode_session,
    safe_next,
)
from airflow_identity_provider.luigi_gateway.state import gateway_of


async def login(request: Request) -> Response:
    gateway = gateway_of(request)
    target = safe_next(request.query_params.get("next"))
    name = request.path_params.get("name")
    providers = gateway.ctx.providers
    if name is None and len(providers) > 1:
        links = "".join(
            f'<li><a href="{html.escape(gateway.settings.public_url)}auth/login/{html.escape(n)}?'
            f'{html.escape(urlencode({"next": target}))}">{html.escape(p.settings.display_name)}</a></li>'
            for n, p in providers.items()
        )
        return page("Sign in", "Choose how to sign in to the Luigi visualiser.", extra=f"<ul>{links}</ul>")
    provider = providers.get(name) if name is not None else gateway.ctx.provider
    if provider is None:
        return refusal(404, "unknown_provider", f"No identity provider is named {name!r}.", html_page=True)
    started = await run_in_threadpool(
        start_login,
        provider,
        target=target,
        secret=gateway.ctx.state_secret,
        redirect_uri=gateway.settings.callback_url(provider.settings.name),
    )
    if isinstance(started, Refused):
        return _refused_sign_in(started)
    response = RedirectResponse(started.authorize_url, status_code=302)
    response.set_cookie(
        value=started.state_cookie, **state_cookie(path=AUTH_PATH, secure=gateway.settings.secure_cookies)
    )
    return response


async def callback(request: Request) -> Response:
    gateway = gateway_of(request)
    name = request.path_params.get("name", DEFAULT_NAME)
    query = request.query_params
    answer = CallbackAnswer(
        code=query.get("code"),
        state=query.get("state"),
        iss=query.get("iss"),
        error=query.get("error"),
        error_description=query.get("error_description"),
    )
    result = await run_in_threadpool(
        finish_login,
        gateway.ctx,
        name,
        request.cookies.get(LOGIN_COOKIE),
        answer,
        redirect_uri=gateway.settings.callback_url(name),
    )
    if isinstance(result, Refused):
        return _refused_sign_in(result)
    if isinstance(result, NoRole):
        return _no_role(result.identity.user_id, result.identity.name, result.identity.groups)
    if level_of(result.user.roles) is None:  # only custom roles other than Worker: nothing in luigi
        return _no_role(result.user.user_id, result.user.name, result.user.groups)
    secure = gateway.settings.secure_cookies
    next_url = gateway.settings.public_url + safe_next(result.next_url).lstrip("/")
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(result.user, gateway.settings.session_secret),
        max_age=gateway.settings.session_lifetime,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path=AUTH_PATH)
    if len(result.id_token) <= MAX_ID_TOKEN_COOKIE:
        hint = f"{result.user.idp}.{result.id_token}"
        response.set_cookie(ID_TOKEN_COOKIE, hint, path=AUTH_PATH, httponly=True, secure=secure, samesite="lax")
    return response


def _no_role(user_id: str, name: str, groups: tuple[str, ...]) -> Response:
    emit(
        "login",
        outcome="failure",
        reason="no_mapped_role",
        service=SERVICE,
        user_id=user_id,
        user_name=name,
        groups=list(groups),
    )
    return page(
        "No Luigi role",
        f"You signed in as {name}, but none of your groups maps to a role of the Luigi gateway (Viewer, Op, "
        "Admin). Ask an administrator to add one of your groups to role_mapping.",
        status_code=403,
    )


def _refused_sign_in(refused: Refused) -> Response:
    emit("login", outcome="failure", reason=refused.reason, service=SERVICE, detail=refused.message)
    return refusal(refused.status_code, refused.reason, refused.message, html_page=True)


async def logout(request: Request) -> Response:
    """GET: the confirmation page. POST from that page: forget the session, then end the IdP session too when the
    provider can (RP-initiated logout). A POST from anywhere else is refused and changes nothing."""
    gateway = gateway_of(request)
    if request.method != "POST":
        return sign_out_page(gateway.settings.public_url)
    if not from_our_pages(request.headers, gateway.settings.public_url):
        message = (
            "Signing out takes the Sign out button of the gateway's own page (Sec-Fetch-Site / Origin); open "
            f"{gateway.settings.public_url}auth/logout and press it."
        )
        emit("logout", outcome="failure", reason="cross_site", service=SERVICE)
        return refusal(403, "cross_site", message, html_page=True)
    name, _, id_token = (request.cookies.get(ID_TOKEN_COOKIE) or "").partition(".")
    provider = gateway.ctx.providers.get(name) or gateway.ctx.provider
    end_session = await run_in_threadpool(end_session_url, provider, id_token, gateway.settings.logged_out_url)
    emit("logout", outcome="success", service=SERVICE, idp=provider.settings.name, idp_session_ended=bool(end_session))
    response: Response = (
        RedirectResponse(end_session, status_code=302) if end_session else signed_out_page(gateway.settings.public_url)
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(ID_TOKEN_COOKIE, path=AUTH_PATH)
    return response


async def logged_out(request: Request) -> Response:
    return signed_out_page(gateway_of(request).settings.public_url)


ROUTES = [
    Route("/auth/login", login, methods=["GET"]),
    Route("/auth/login/{name}", login, methods=["GET"]),
    Route("/auth/callback", callback, methods=["GET"]),
    Route("/auth/callback/{name}", callback, methods=["GET"]),
    # GET: the visualiser has no logout button, so people open the URL and get a page with one.
    Route("/auth/logout", logout, methods=["GET", "POST"]),
    Route("/auth/logged-out", logged_out, methods=["GET"]),
]
