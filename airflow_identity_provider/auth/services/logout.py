"""Sign-out: revoke the Airflow token(s) first, then find where the IdP session can be ended (if anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.services.revocation import revoke_request_tokens
from airflow_identity_provider.auth.services.urls import logged_out_url
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from fastapi import Request

    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.services.context import AuthContext


@dataclass(frozen=True)
class SignedOut:
    end_session_url: str | None  # None: show the signed-out page instead of going to the IdP
    revoked: int


def sign_out(ctx: AuthContext, request: Request, *, id_token_cookie: str | None) -> SignedOut:
    """``id_token_cookie`` is ``<provider>.<id token>`` as the sign-in stored it, for ``id_token_hint``."""
    revoked = revoke_request_tokens(ctx, request)  # first: the IdP may be slow or down
    name, _, id_token = (id_token_cookie or "").partition(".")
    provider = ctx.providers.get(name) or ctx.provider
    end_session = end_session_url(provider, id_token)
    audit.emit(
        "logout", outcome="success", idp=provider.settings.name, idp_session_ended=bool(end_session), revoked=revoked
    )
    return SignedOut(end_session, revoked)


def end_session_url(provider: OidcProvider, id_token: str, post_logout_redirect_uri: str | None = None) -> str | None:
    try:
        endpoint = provider.metadata().end_session_endpoint
    except Refusal:
        return None  # signing out of Airflow must not depend on the IdP being up
    if not endpoint:
        return None
    params = {
        "post_logout_redirect_uri": post_logout_redirect_uri or logged_out_url(),
        "client_id": provider.settings.client_id,
    }
    if id_token:
        params["id_token_hint"] = id_token
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"
