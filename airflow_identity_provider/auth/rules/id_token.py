"""ID-token checks of OpenID Connect Core 3.1.3.7 as pure functions, each refusal with an admin-readable reason.

The signature is verified in ``auth.idp.oidc`` (it needs keys); everything that only needs the claims is here.
"""

from __future__ import annotations

import hmac
import json
from base64 import urlsafe_b64decode
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.errors import Refusal


class TokenRejected(Refusal):
    """The IdP's answer must not be trusted. ``reason`` is a stable code for logs and tests."""

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class Expected:
    issuer: str
    client_id: str
    nonce: str
    leeway: int


def parse_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("malformed_token", f"The ID token is not a signed JWT (it has {len(parts)} parts, not 3).")
    try:
        header = json.loads(urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("malformed_token", "The ID token header is not base64url JSON.") from None
    if not isinstance(header, dict):
        raise TokenRejected("malformed_token", "The ID token header is not a JSON object.")
    return header


def check_algorithm(header: Mapping[str, Any], allowed: Collection[str]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise TokenRejected(
            "alg_not_allowed",
            f"The ID token is signed with alg={alg!r}; accepted: {', '.join(allowed)}. "
            "If the provider really signs with another asymmetric algorithm, add it to "
            "[identity_auth_manager] id_token_signing_algs.",
        )
    return alg


def check_claims(claims: Mapping[str, Any], expected: Expected, *, now: float) -> None:
    """Issuer, audience, authorized party, subject, time and nonce checks."""
    issuer = claims.get("iss")
    if issuer != expected.issuer:
        raise TokenRejected(
            "invalid_issuer",
            f"The token's issuer is {issuer!r} but [identity_auth_manager] issuer is {expected.issuer!r}. "
            "They must match exactly (including any trailing slash).",
        )

    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("missing_sub", "The ID token has no 'sub' claim, so the user cannot be identified.")

    _check_audience(claims, expected.client_id)
    check_times(claims, now=now, leeway=expected.leeway)

    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), expected.nonce.encode()):
        raise TokenRejected(
            "invalid_nonce",
            "The ID token's nonce does not match the one this sign-in sent; the token was issued for "
            "another sign-in (possible replay). Start again.",
        )


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) for a in audiences):
        raise TokenRejected("missing_aud", "The ID token has no valid 'aud' (audience) claim.")
    if client_id not in audiences:
        raise TokenRejected(
            "invalid_aud",
            f"The token's audience is {', '.join(audiences)}; set [identity_auth_manager] client_id to the "
            "client (application) ID of the app registration that signs users in to Airflow.",
        )
    azp = claims.get("azp")
    # Several audiences: the token may have been requested by another of them (OIDC Core 3.1.3.7 (4)(5)).
    if len(audiences) > 1 and azp is None:
        raise TokenRejected(
            "untrusted_audience",
            f"The token is addressed to several audiences ({', '.join(audiences)}) without an 'azp' claim.",
        )
    if azp is not None and azp != client_id:
        raise TokenRejected(
            "invalid_azp",
            f"The token was issued to client {azp!r} (azp), not to {client_id!r}.",
        )


def check_times(claims: Mapping[str, Any], *, now: float, leeway: int) -> None:
    for name in ("exp", "iat"):
        if not _is_number(claims.get(name)):
            raise TokenRejected(f"missing_{name}", f"The ID token has no numeric '{name}' claim.")
    exp = float(claims["exp"])
    if exp <= now - leeway:
        raise TokenRejected(
            "expired",
            f"The ID token expired {int(now - exp)} s ago (leeway {leeway} s). Check the clock of the "
            "api-server host, or sign in again.",
        )
    if float(claims["iat"]) > now + leeway:
        raise TokenRejected(
            "issued_in_future",
            "The ID token was issued in the future; the clocks of the IdP and the api-server disagree.",
        )
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or float(nbf) > now + leeway):
        raise TokenRejected("not_yet_valid", "The ID token is not valid yet (nbf).")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
