"""Sign-out of Airflow itself: revoke the Airflow JWT(s) the request carries (the route then clears the cookie).

Airflow's core ``/api/v2/auth/logout`` cannot be relied on for this: 3.1 has no revocation at all, and
3.2 (revocation added by apache/airflow#61339) returned the redirect to ``get_url_logout()`` (our
``/auth/logout``) before revoking anything, until apache/airflow#67289. Links such as the no-role page's
"Sign in as someone else" also come here directly, skipping the core route. So ``/auth/logout`` revokes
what it is sent; after the core route did, revoking again is harmless (the jti row is merged).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import jwt as pyjwt
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.configuration import conf

from airflow_identity_provider import version_compat

if TYPE_CHECKING:
    from fastapi import Request

log = logging.getLogger(__name__)


def request_tokens(request: Request) -> list[str]:
    """Every distinct Airflow JWT presented (``Authorization: Bearer`` and the ``_token`` cookie): a logout
    must end each of them, whichever one Airflow would have authenticated the request with."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    candidates = [credentials.strip() if scheme.lower() == "bearer" else "", request.cookies.get(COOKIE_NAME_JWT_TOKEN)]
    return list(dict.fromkeys(c for c in candidates if c))


def _revocable_jti(token: str, *, now: float) -> str | None:
    """The jti of a token Airflow may still accept; None for what it refuses anyway (not a JWT, no jti, or
    expired beyond its leeway): nothing to revoke there, and revoke_token would log a traceback for each.
    Unverified on purpose: revoke_token verifies the signature before it writes anything."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        return None
    jti, exp = claims.get("jti"), claims.get("exp")
    leeway = conf.getint("api_auth", "jwt_leeway", fallback=10)
    fresh = isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp + leeway >= now
    return jti if fresh and isinstance(jti, str) and jti else None


def revoke_request_tokens(manager: object, request: Request) -> int:
    """Revoke every still-acceptable Airflow token of the request; returns how many are now revoked.

    Never raises: signing out must work with no token, an expired or a forged one, or the database down.
    """
    # None before Airflow 3.2 (no BaseAuthManager.revoke_token, no revoked_token table).
    revoke = version_compat.token_revoker(manager)
    now = time.time()
    tokens = {jti: token for token in request_tokens(request) if (jti := _revocable_jti(token, now=now))}
    if revoke is None:
        if tokens:
            version_compat.warn_missing("revoke_token")
        return 0
    revoked = 0
    for jti, token in tokens.items():
        try:
            revoke(token)  # verifies signature, issuer and audience; swallows (and logs) its own failures
            # Asked, not assumed: a forged token or a database error leaves nothing revoked.
            revoked += version_compat.is_token_revoked(jti)
        except Exception:
            log.warning("Could not revoke an Airflow token at logout", exc_info=True)
    return revoked
