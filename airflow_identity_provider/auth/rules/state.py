"""The login state that travels through the IdP round trip in a signed, short-lived cookie.

Keeping state, nonce, PKCE verifier and ``next`` in a cookie signed with ``[api] secret_key`` (rather than
in process memory) lets the callback land on any api-server worker or replica.
"""

from __future__ import annotations

import hashlib
import secrets
from base64 import urlsafe_b64encode
from dataclasses import asdict, dataclass
from typing import Literal, TypedDict

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from airflow_identity_provider.auth.rules.cli_code import CliRequest
from airflow_identity_provider.errors import Refusal

COOKIE_NAME = "_identity_login"
MAX_AGE_SECONDS = 600
_SALT = "airflow-identity-provider.login-state"


class CookieAttributes(TypedDict):
    """``set_cookie`` keywords (Starlette's names) for everything of a cookie but its value."""

    key: str
    max_age: int
    path: str
    httponly: bool
    secure: bool
    samesite: Literal["lax"]


def state_cookie(*, path: str, secure: bool) -> CookieAttributes:
    """The login-state cookie on the redirect to the IdP: out of scripts' reach, sent back on the IdP's top-level
    redirect to the callback (Lax, not Strict), only under the sign-in routes' ``path``, and gone once the state
    it carries has expired. Airflow's routes and the luigi gateway set it alike."""
    return {
        "key": COOKIE_NAME,
        "max_age": MAX_AGE_SECONDS,
        "path": path,
        "httponly": True,
        "secure": secure,
        "samesite": "lax",
    }


class StateError(Refusal, ValueError):
    """The login-state cookie is missing, expired or not ours."""


@dataclass(frozen=True)
class LoginState:
    state: str
    nonce: str
    code_verifier: str
    next_url: str
    idp: str
    # A terminal sign-in (/auth/cli-login): the callback hands a one-time code to the CLI's loopback listener
    # instead of setting the browser's cookie. Flat fields with defaults: cookies without them still decode.
    cli_port: int = 0
    cli_state: str = ""
    cli_challenge: str = ""

    @classmethod
    def new(cls, *, next_url: str, idp: str, cli: CliRequest | None = None) -> LoginState:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # RFC 7636: 43-128 characters from the unreserved set; 64 random bytes -> 86 characters.
            code_verifier=secrets.token_urlsafe(64),
            next_url=next_url,
            idp=idp,
            cli_port=cli.port if cli else 0,
            cli_state=cli.state if cli else "",
            cli_challenge=cli.code_challenge if cli else "",
        )

    @property
    def cli(self) -> CliRequest | None:
        return CliRequest(self.cli_port, self.cli_state, self.cli_challenge) if self.cli_port else None

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


_CLI_FIELDS = ("cli_port", "cli_state", "cli_challenge")


def encode_state(state: LoginState, secret_key: str) -> str:
    data = asdict(state)
    if not state.cli_port:  # a browser sign-in's cookie keeps its shape: a replica of the previous release reads it
        for key in _CLI_FIELDS:
            del data[key]
    return _serializer(secret_key).dumps(data)


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
