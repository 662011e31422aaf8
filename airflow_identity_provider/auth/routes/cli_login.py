"""``/auth/cli-login`` (the browser half of the terminal sign-in) and ``POST /auth/token/cli-exchange``.

``airflow-sso-login`` opens ``/auth/cli-login?port=..&state=..&code_challenge=..&code_challenge_method=S256``;
this runs the normal sign-in (same provider, redirect URI, login-state cookie and role mapping as the web
UI), and the callback (``routes.login``) then sends the browser to ``http://127.0.0.1:<port>/callback`` with a
one-time code, which the CLI exchanges here with its PKCE verifier. See ``auth.rules.cli_code``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from airflow_identity_provider.auth.routes.common import auth_context
from airflow_identity_provider.auth.routes.login import start_sign_in
from airflow_identity_provider.auth.routes.pages import chooser_page, refused_page
from airflow_identity_provider.auth.rules.cli_code import CliLoginError, CliRequest, parse_cli_request
from airflow_identity_provider.auth.services.cli_login import exchange_cli_code
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.urls import base_url

router = APIRouter()


def _cli_request(request: Request) -> CliRequest | Refused:
    query = request.query_params
    try:
        return parse_cli_request(
            port=query.get("port"),
            state=query.get("state"),
            code_challenge=query.get("code_challenge"),
            code_challenge_method=query.get("code_challenge_method"),
            redirect_uri=query.get("redirect_uri"),
        )
    except CliLoginError as err:
        return Refused.of(err, 400)


@router.get("/cli-login", response_model=None)
def cli_login(request: Request) -> Response:
    cli = _cli_request(request)
    if isinstance(cli, Refused):
        return refused_page(cli)
    providers = auth_context(request).providers
    if len(providers) > 1:
        query = urlencode(cli.query())
        return chooser_page(
            {
                p.settings.display_name: f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/cli-login/{n}?{query}"
                for n, p in providers.items()
            }
        )
    return start_sign_in(auth_context(request).provider, request, base_url(), cli)


@router.get("/cli-login/{name}", response_model=None)
def cli_login_with(name: str, request: Request) -> Response:
    cli = _cli_request(request)
    if isinstance(cli, Refused):
        return refused_page(cli)
    provider = auth_context(request).providers.get(name)
    if provider is None:
        return refused_page(Refused("unknown_provider", f"No identity provider is named {name!r}.", 404))
    return start_sign_in(provider, request, base_url(), cli)


@router.post("/token/cli-exchange", response_model=None)
async def cli_exchange(request: Request) -> Response:
    """Form (as an OAuth token request) or JSON: ``code`` and ``code_verifier``."""
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except ValueError:
            body = {}
    else:
        body = dict(await request.form())
    fields = body if isinstance(body, dict) else {}
    code, verifier = (v if isinstance(v := fields.get(k), str) else None for k in ("code", "code_verifier"))
    # Claiming the code writes a row (revoked_token): off the event loop, as FastAPI runs sync routes.
    result = await run_in_threadpool(exchange_cli_code, auth_context(request), code, verifier)
    if isinstance(result, Refused):
        return JSONResponse(
            {"detail": result.message, "reason": result.reason},
            status_code=result.status_code,
            headers={"Cache-Control": "no-store"},
        )
    return JSONResponse({"access_token": result.access_token}, 201, headers={"Cache-Control": "no-store"})
