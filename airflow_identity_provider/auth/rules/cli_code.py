"""The terminal sign-in (``/auth/cli-login``, RFC 8252 loopback redirect with PKCE): what the CLI asks for, and
the one-time code Airflow hands back to its loopback listener.

The CLI (``airflow-sso-login``) listens on ``http://127.0.0.1:<port>/callback``, keeps a PKCE verifier and sends
only its S256 challenge. After the normal browser sign-in, Airflow redirects to that loopback address with a
*code*. The code is not the Airflow token: it is the signed-in user, the challenge, an expiry and a ``jti``,
encrypted and authenticated (Fernet) under a key derived from ``[api] secret_key``. So

- any api-server replica can redeem it (no server-side store, like the login-state cookie);
- whoever reads the URL (browser history, a process sniffing loopback) learns nothing, and cannot redeem it
  without the verifier, which never left the terminal;
- it is short-lived (``CODE_MAX_AGE``) and, where Airflow has a ``revoked_token`` table (3.2+), redeemed at most
  once: the exchange records its ``jti`` there (see ``version_compat.claim_once``).

The redirect target is built here from the port alone, never taken from the request: a code can only ever go
to the loopback interface of the machine whose browser signed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.errors import Refusal

# The CLI redeems the code within milliseconds of the redirect; the margin is for replicas' clock skew.
CODE_MAX_AGE = 60
# A loopback listener of an unprivileged user; ports below 1024 belong to system services.
MIN_PORT, MAX_PORT = 1024, 65535
LOOPBACK_HOST = "127.0.0.1"  # RFC 8252 section 7.3: the IP literal, not "localhost" (which may resolve elsewhere)
CALLBACK_PATH = "/callback"
_KDF_INFO = b"airflow-identity-provider.cli-code.v1"
# RFC 7636: BASE64URL(SHA256(verifier)) is 43 characters; the verifier is 43-128 unreserved characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_STATE = re.compile(r"[A-Za-z0-9._~-]{16,256}")
_PORT = re.compile(r"[0-9]{4,5}")  # ASCII digits only: str.isdigit() and int() also take other scripts' digits


class CliLoginError(Refusal, ValueError):
    """A terminal sign-in request or code refused: not loopback, no PKCE, expired, reused, wrong verifier."""


@dataclass(frozen=True)
class CliRequest:
    """What the terminal asked for: where to send the code, its own state, and the PKCE challenge."""

    port: int
    state: str
    code_challenge: str

    @property
    def callback(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{CALLBACK_PATH}"

    def redirect_with(self, code: str) -> str:
        return f"{self.callback}?{urlencode({'code': code, 'state': self.state})}"

    def query(self) -> dict[str, str]:
        """The parameters of ``/auth/cli-login`` that carry this request (the chooser's links keep them)."""
        return {
            "port": str(self.port),
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }


def parse_cli_request(
    *,
    port: str | None,
    state: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    redirect_uri: str | None = None,
) -> CliRequest:
    """Validate the query of ``/auth/cli-login``; raises :class:`CliLoginError` naming what is wrong."""
    if redirect_uri is not None:
        # Only a port is accepted: a full redirect URI is how loopback flows end up sending codes elsewhere.
        raise CliLoginError(
            "cli_redirect_not_loopback",
            f"The terminal sign-in only returns to http://{LOOPBACK_HOST}:<port>{CALLBACK_PATH}; "
            "send the listener's port, not a redirect_uri.",
        )
    if not port or not _PORT.fullmatch(port) or not MIN_PORT <= int(port) <= MAX_PORT:
        raise CliLoginError(
            "cli_bad_port",
            f"The terminal sign-in needs the port ({MIN_PORT}-{MAX_PORT}) the CLI listens on at {LOOPBACK_HOST}; "
            f"got {port!r}.",
        )
    if not state or not _STATE.fullmatch(state):
        raise CliLoginError("cli_bad_state", "The terminal sign-in needs a random state of 16-256 URL-safe characters.")
    if code_challenge_method != "S256":
        raise CliLoginError(
            "cli_pkce_required", "The terminal sign-in needs PKCE with code_challenge_method=S256 (plain is refused)."
        )
    if not code_challenge or not _CHALLENGE.fullmatch(code_challenge):
        raise CliLoginError(
            "cli_pkce_required", "The terminal sign-in needs code_challenge = BASE64URL(SHA256(code_verifier))."
        )
    return CliRequest(int(port), state, code_challenge)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _fernet(secret_key: str) -> Fernet:
    # A key of its own (HKDF, own label): the login-state cookie's signatures and these codes never mix.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@dataclass(frozen=True)
class RedeemedCode:
    user: IdentityUser
    jti: str  # 32 hex characters: fits Airflow's revoked_token.jti (String(32))
    expires_at: float


def issue_code(user: IdentityUser, request: CliRequest, secret_key: str, *, now: float | None = None) -> str:
    payload = {
        "user": user.to_claims(),
        "challenge": request.code_challenge,
        "jti": secrets.token_hex(16),
    }
    issued = int(time.time() if now is None else now)
    return _fernet(secret_key).encrypt_at_time(json.dumps(payload, separators=(",", ":")).encode(), issued).decode()


def redeem_code(
    code: str | None, verifier: str | None, secret_key: str, *, now: float | None = None, max_age: int = CODE_MAX_AGE
) -> RedeemedCode:
    """The user a code was issued for, if ``verifier`` hashes to its challenge and it is recent enough.

    Single use is the caller's business (it needs a store: ``version_compat.claim_once``)."""
    if not code:
        raise CliLoginError("missing_cli_code", "Send the code the terminal sign-in returned as 'code'.")
    if not verifier:
        raise CliLoginError(
            "missing_code_verifier", "Send the PKCE code_verifier of the terminal sign-in that got this code."
        )
    fernet, token = _fernet(secret_key), code.encode()
    current = time.time() if now is None else now
    try:
        issued = fernet.extract_timestamp(token)  # checks the MAC only, not the age
    except InvalidToken:
        raise CliLoginError("bad_cli_code", "The sign-in code was altered or issued by another Airflow.") from None
    try:
        data: Any = json.loads(fernet.decrypt_at_time(token, max_age, int(current)))
    except InvalidToken:  # authentic, so only its age (or a clock skew beyond 60 s) can fail here
        raise CliLoginError(
            "cli_code_expired", f"The sign-in code is older than {max_age} s. Run the terminal sign-in again."
        ) from None
    except ValueError:
        raise CliLoginError("bad_cli_code", "The sign-in code has an unexpected shape.") from None
    if not isinstance(data, dict):
        raise CliLoginError("bad_cli_code", "The sign-in code has an unexpected shape.")
    if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), str(data.get("challenge", ""))):
        raise CliLoginError(
            "code_verifier_mismatch",
            "The code_verifier does not match the code_challenge this sign-in started with: only the terminal "
            "that started it can redeem the code.",
        )
    try:
        user = IdentityUser.from_claims(data["user"])
        jti = str(data["jti"])
    except (KeyError, TypeError, ValueError):
        raise CliLoginError("bad_cli_code", "The sign-in code has an unexpected shape.") from None
    return RedeemedCode(user, jti, issued + max_age)


__all__ = ["CODE_MAX_AGE", "CliLoginError", "CliRequest", "RedeemedCode", "issue_code", "parse_cli_request"]
