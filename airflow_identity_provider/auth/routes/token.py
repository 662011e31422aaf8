"""``POST /auth/token`` and ``/auth/token/cli``: exchange an IdP access token for an Airflow API token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from airflow_identity_provider.auth.routes.common import auth_context
from airflow_identity_provider.auth.services.cli_login import password_login_refused
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.token import exchange_token

router = APIRouter()


@router.post("/token", response_model=None)
async def token(request: Request) -> Response:
    return await _machine_token(request, cli=False)


@router.post("/token/cli", response_model=None)
async def token_cli(request: Request) -> Response:
    return await _machine_token(request, cli=True)


async def _machine_token(request: Request, *, cli: bool) -> Response:
    """Exchange an IdP access token (Authorization: Bearer, or a jwt-bearer ``assertion``) for an Airflow token."""
    # Before the Bearer header: airflowctl sends the token it stored earlier along with username and password.
    if await _is_password_login(request):
        refused = password_login_refused(auth_context(request))
        return JSONResponse({"detail": refused.message, "reason": refused.reason}, status_code=refused.status_code)
    result = await exchange_token(auth_context(request), await _assertion(request), cli=cli)
    if isinstance(result, Refused):
        return JSONResponse({"detail": result.message, "reason": result.reason}, status_code=result.status_code)
    return JSONResponse({"access_token": result.access_token}, 201)


async def _is_password_login(request: Request) -> bool:
    """A username/password login (``airflowctl auth login --username``, Airflow's other auth managers' form)."""
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()  # Starlette keeps the body: _assertion reads it again
        except ValueError:
            return False
    else:
        body = await request.form()
    return hasattr(body, "keys") and ("username" in body or "password" in body) and "assertion" not in body


async def _assertion(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    if "json" in request.headers.get("content-type", ""):
        try:
            body = await request.json()
        except ValueError:
            return ""
        value = body.get("assertion") if isinstance(body, dict) else None
    else:
        value = (await request.form()).get("assertion")
    return value.strip() if isinstance(value, str) else ""
