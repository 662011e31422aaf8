"""IdP access tokens straight on ``/api/v2`` (``Authorization: Bearer <IdP token>``), no ``POST /auth/token``
first: a pure ASGI middleware that the auth manager registers through ``get_fastapi_middlewares`` (Airflow 3.3+).

Airflow's ``get_user`` reads the ``Authorization`` header first and validates it as an Airflow JWT; only without
one does it take ``request.state.user``, and only when ``request.state.user_authenticated_via`` is the core's
``USER_INJECTED_BY_TRUSTED_MIDDLEWARE`` marker. So for an IdP token this middleware validates it (as
``/auth/token`` does, ``services.bearer``), sets the user and the marker, and removes the header from the
request the core sees. Refusals are answered here with a 401 JSON ``{"detail", "reason"}`` (403 when the token
is valid but maps to no role, 503 when the IdP is unreachable): a bad token never reaches the core, so it can
neither become a 500 nor fall back to the session cookie.

Airflow adds auth-manager middlewares after ``JWTRefreshMiddleware``, so this one runs outside it, first. That
middleware replaces ``request.state.user`` with the ``_token`` cookie's user; the cookie is therefore removed
too when a Bearer token was admitted: an explicit credential wins over the ambient cookie, as in ``get_user``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf

from airflow_identity_provider.auth.rules.bearer import is_airflow_token, unverified_jwt
from airflow_identity_provider.auth.services.bearer import BearerAdmission
from airflow_identity_provider.auth.services.results import Refused

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from airflow_identity_provider.auth.services.context import AuthContext

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2/"


class IdpBearerMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        auth_manager: AuthContext,
        trusted_marker: object,
        airflow_issuers: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.admission = BearerAdmission(auth_manager)
        self.trusted_marker = trusted_marker
        # As Airflow's JWTValidator reads it: a comma-separated list, empty when unset.
        self.airflow_issuers = frozenset(
            (conf.getlist("api_auth", "jwt_issuer", fallback=None) or ())
            if airflow_issuers is None
            else airflow_issuers
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _idp_bearer(scope, self.airflow_issuers) if scope["type"] == "http" else None
        if token is None:
            await self.app(scope, receive, send)
            return
        try:
            result = await self.admission.admit(token)
        except Exception:  # a bug here must not turn every API call into a 500 page without a reason
            log.exception("airflow-identity-provider: could not validate an IdP Bearer token")
            result = Refused(
                "validation_failed", "The token could not be validated; the api-server log has the error.", 401
            )
        if isinstance(result, Refused):
            await _refuse(result, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["user"] = result
        state["user_authenticated_via"] = self.trusted_marker
        await self.app({**scope, "headers": _without_credentials(scope["headers"])}, receive, send)


def _idp_bearer(scope: Scope, airflow_issuers: Collection[str]) -> str | None:
    """The Bearer token of an ``/api/v2`` request when it is not one of Airflow's JWTs, else None."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):  # as Starlette's routing does: the path below a sub-path deployment
        path = path[len(root) :]
    if not path.startswith(API_PREFIX):
        return None
    value: bytes | None = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if value is None:
        return None
    scheme, _, credentials = value.decode("latin-1").partition(" ")
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token:
        return None  # not ours to judge: the core answers as it always has
    parts = unverified_jwt(token)
    if parts is not None and is_airflow_token(*parts, airflow_issuers=airflow_issuers):
        return None
    return token  # an IdP token, or no JWT at all (refused with the reason, not as an Airflow JWT)


def _without_credentials(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers without Authorization and without the ``_token`` cookie (other cookies stay)."""
    kept: list[tuple[bytes, bytes]] = []
    prefix = COOKIE_NAME_JWT_TOKEN.encode() + b"="
    for name, value in headers:
        if name == b"authorization":
            continue
        if name == b"cookie":
            pairs = [p for p in (p.strip() for p in value.split(b";")) if p and not p.startswith(prefix)]
            if not pairs:
                continue
            value = b"; ".join(pairs)
        kept.append((name, value))
    return kept


async def _refuse(refused: Refused, send: Send) -> None:
    body = json.dumps({"detail": refused.message, "reason": refused.reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refused.status_code == 401:
        # RFC 6750 3: tell the client which scheme failed and why (the reason code, not the long message).
        headers.append(
            (b"www-authenticate", f'Bearer error="invalid_token", error_description="{refused.reason}"'.encode())
        )
    start: Message = {"type": "http.response.start", "status": refused.status_code, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


def bearer_middlewares(auth_manager: AuthContext, trusted_marker: object) -> list[tuple[type, dict[str, Any]]]:
    """What ``get_fastapi_middlewares`` returns: this middleware when some provider has ``api_audiences``."""
    if not any(p.settings.api_audiences for p in auth_manager.providers.values()):
        return []
    return [(IdpBearerMiddleware, {"auth_manager": auth_manager, "trusted_marker": trusted_marker})]
