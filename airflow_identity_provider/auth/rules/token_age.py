"""``api_token_max_age``: how long after the holder last proved themselves at the IdP an Airflow API token is
still accepted, whatever its own ``exp``. Pure.

Every Airflow JWT of this auth manager carries ``auth_time``: the browser sign-in's time for session cookies
and for tokens minted from a session (the UI's "Generate token" copies the session's user), the IdP access
token's own ``iat`` for ``/auth/token`` and ``/auth/token/cli`` (that is when the IdP last vouched for the
principal), the callback's time for the CLI's browser sign-in.

The browser session itself is told apart by a claim only our sign-in callback sets (``SESSION_CLAIM``): every
other token is minted by ``generate_jwt`` without it, including the core's ``POST /ui/auth/token``, because
``serialize_user`` adds the claim only while ``generate_session_jwt`` runs. Sessions are bounded by
``revalidate_interval`` instead (which sends them through the IdP, silently while its session lasts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_identity_provider.errors import Refusal

__all__ = ["SESSION_CLAIM", "TokenTooOld", "is_session", "token_age_refusal"]

SESSION_CLAIM = "sess"


class TokenTooOld(Refusal):
    """An API token whose holder proved themselves at the IdP longer than ``api_token_max_age`` ago."""


def is_session(claims: Mapping[str, Any]) -> bool:
    return claims.get(SESSION_CLAIM) is True


def token_age_refusal(
    claims: Mapping[str, Any], *, max_age: int, now: float, session_max_age: int = 0
) -> TokenTooOld | None:
    """The refusal of an API token past ``max_age``, or of a browser session past ``session_max_age`` (0: no
    cap); None for younger tokens.

    The session cap matters when the ``_token`` cookie's value is sent as ``Authorization: Bearer``: the core
    then never calls ``refresh_user`` (only the cookie goes through ``JWTRefreshMiddleware``), so
    ``revalidate_interval`` alone would not bound it."""
    if is_session(claims):
        max_age = session_max_age
    if not max_age:
        return None
    auth_time = claims.get("auth_time")
    proved = float(auth_time) if isinstance(auth_time, (int, float)) and not isinstance(auth_time, bool) else 0.0
    age = now - proved
    if age <= max_age:
        return None
    session = is_session(claims)
    what, setting = ("session", "revalidate_interval, plus a grace") if session else ("API token", "api_token_max_age")
    return TokenTooOld(
        "token_too_old",
        f"This Airflow {what}'s holder last signed in at the identity provider {int(age)} s ago, more than "
        f"{max_age} s ([identity_auth_manager] {setting}) allows. Get a new token (sign in again, or exchange a "
        "fresh IdP token).",
    )
