"""The browser session: the signed-in user in a cookie signed with ``session_secret``, valid
``session_lifetime`` seconds from sign-in. Checked without the IdP, so sessions outlive an IdP outage.

The cookie holds what the Airflow JWT holds (``IdentityUser.to_claims``: id, name, roles, provider, the
groups settings name), signed with itsdangerous as the login-state cookie is; no IdP token is kept in it.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from airflow_identity_provider.auth.rules.user import IdentityUser

SESSION_COOKIE = "luigi_gateway_session"
# The ID token, for RP-initiated logout's id_token_hint; sent only to /auth/ (httponly).
ID_TOKEN_COOKIE = "luigi_gateway_id_token"
MAX_ID_TOKEN_COOKIE = 3000
AUTH_PATH = "/auth/"
_SALT = "airflow-identity-provider.luigi-gateway.session"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def encode_session(user: IdentityUser, secret: str) -> str:
    return _serializer(secret).dumps(user.to_claims())


def decode_session(cookie: str | None, secret: str, *, max_age: int) -> IdentityUser | None:
    """The signed-in user, or None (no cookie, expired, altered, or from another secret: sign in again)."""
    if not cookie:
        return None
    try:
        claims = _serializer(secret).loads(cookie, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(claims, dict):
        return None
    try:
        return IdentityUser.from_claims(claims)
    except (KeyError, ValueError):
        return None


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on the gateway itself, never another site (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in target):
        return "/"
    return target
