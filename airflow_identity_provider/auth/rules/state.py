"""The login state that travels through the IdP round trip in a signed, short-lived cookie.

Keeping state, nonce, PKCE verifier and ``next`` in a cookie signed with ``[api] secret_key`` (rather than
in process memory) lets the callback land on any api-server worker or replica.
"""

from __future__ import annotations

import hashlib
import secrets
from base64 import urlsafe_b64encode
from dataclasses import asdict, dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from airflow_identity_provider.errors import Refusal

COOKIE_NAME = "_identity_login"
MAX_AGE_SECONDS = 600
_SALT = "airflow-identity-provider.login-state"


class StateError(Refusal, ValueError):
    """The login-state cookie is missing, expired or not ours."""


@dataclass(frozen=True)
class LoginState:
    state: str
    nonce: str
    code_verifier: str
    next_url: str
    idp: str

    @classmethod
    def new(cls, *, next_url: str, idp: str) -> LoginState:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # RFC 7636: 43-128 characters from the unreserved set; 64 random bytes -> 86 characters.
            code_verifier=secrets.token_urlsafe(64),
            next_url=next_url,
            idp=idp,
        )

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def encode_state(state: LoginState, secret_key: str) -> str:
    return _serializer(secret_key).dumps(asdict(state))


def decode_state(cookie: str | None, secret_key: str, *, max_age: int = MAX_AGE_SECONDS) -> LoginState:
    if not cookie:
        raise StateError(
            "missing_login_state",
            "This sign-in was not started from this browser, or its cookie was blocked. Start again.",
        )
    try:
        data = _serializer(secret_key).loads(cookie, max_age=max_age)
    except SignatureExpired:
        raise StateError(
            "login_state_expired", f"The sign-in took longer than {max_age // 60} minutes. Start again."
        ) from None
    except BadSignature:
        raise StateError("bad_login_state", "The sign-in cookie was altered or signed by another key.") from None
    try:
        return LoginState(**data)
    except TypeError:
        raise StateError("bad_login_state", "The sign-in cookie has an unexpected shape. Start again.") from None
